//! "Did you mean …?" for names a person types (subcommands, resource aliases, profile names,
//! config keys): the closest known name by edit distance, when it is close enough to be a typo.

/// Levenshtein distance with adjacent transpositions counted as one edit (optimal string
/// alignment), case-insensitive: `grahp` is one edit from `graph`.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1).min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = best;
        }
    }
    d[a.len() * w + b.len()]
}

/// The known name closest to `typed`, if it is within a typo's reach: at most one edit for
/// names of up to four characters, two up to eight, three beyond (never the name itself;
/// the same name in another case first of all).
pub(crate) fn closest<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.trim();
    if typed.is_empty() {
        return None;
    }
    let reach = match typed.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    known
        .into_iter()
        // The same name in another case is a suggestion too (`-p CI` for the profile `ci`).
        .filter(|k| *k != typed)
        .map(|k| (distance(typed, k), k))
        .filter(|(d, _)| *d <= reach)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// ` (did you mean 'x'?)`, or nothing.
pub(crate) fn did_you_mean<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(typed, known).map(|k| format!(" (did you mean '{k}'?)")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_name_and_strangers_find_none() {
        assert_eq!(distance("grahp", "graph"), 1);
        assert_eq!(distance("tennant", "tenant"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(closest("grahp", ["graph", "arm", "storage"]), Some("graph"));
        assert_eq!(closest("tennant", ["tenant", "client_id"]), Some("tenant"));
        assert_eq!(closest("Client_ID", ["tenant", "client_id"]), Some("client_id"), "the same name, other case");
        assert_eq!(closest("CI", ["ci", "default"]), Some("ci"));
        assert_eq!(closest("ci", ["ci", "default"]), None, "never the name itself");
        assert_eq!(closest("get-tokn", ["get-token", "login"]), Some("get-token"));
        assert_eq!(closest("xyz", ["graph", "arm"]), None);
        assert_eq!(closest("https://example.com", ["graph", "arm"]), None);
        assert_eq!(did_you_mean("arn", ["arm"]), " (did you mean 'arm'?)");
        assert_eq!(did_you_mean("zzzz", ["arm"]), "");
    }
}
