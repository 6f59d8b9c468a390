//! How many connections the agent serves at once, in all and per peer (the connecting
//! process: one `ssh` forwards a whole host), in two stages: reading a request (a silent
//! client holds its slot for at most the request deadline) and working on it (the
//! broker, a sign-in, a `--confirm` question, a wait for a login). One peer can fill
//! neither stage, and a request waiting for its person holds no reading slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Who a slot is counted against: the peer's uid and, where the OS says, its pid.
pub(super) type Peer = (u32, Option<i32>);

/// One stage's limits and counts.
pub(super) struct Limit {
    total: usize,
    per_peer: usize,
    taken: Mutex<HashMap<Peer, usize>>,
}

/// A slot taken; given back when dropped.
pub(super) struct Slot {
    limit: Arc<Limit>,
    peer: Peer,
}

impl Limit {
    pub(super) fn new(total: usize, per_peer: usize) -> Arc<Limit> {
        Arc::new(Limit { total, per_peer, taken: Mutex::new(HashMap::new()) })
    }

    /// A slot for `peer`, or None when the stage is full or `peer` has its share.
    pub(super) fn take(self: &Arc<Self>, peer: Peer) -> Option<Slot> {
        let mut t = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let all: usize = t.values().sum();
        let mine = t.get(&peer).copied().unwrap_or(0);
        if all >= self.total || mine >= self.per_peer {
            return None;
        }
        t.insert(peer, mine + 1);
        Some(Slot { limit: Arc::clone(self), peer })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.limit.taken.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = t.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peer_gets_its_share_and_others_still_get_theirs() {
        let l = Limit::new(3, 2);
        let (a, b) = ((1000, Some(1)), (1000, Some(2)));
        let a1 = l.take(a).unwrap();
        let _a2 = l.take(a).unwrap();
        assert!(l.take(a).is_none(), "a third slot for the same peer");
        let _b1 = l.take(b).unwrap();
        assert!(l.take(b).is_none(), "more than the total");
        drop(a1);
        assert!(l.take(b).is_some());
    }
}
