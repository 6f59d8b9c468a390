#!/usr/bin/env bash
# Proves the Debian package in a clean system: a fresh minimal Debian bookworm root
# (debootstrap), the .deb installed there with apt (only its declared dependencies may come
# along), then inside it `entra-token --version`, `man entra-token`, bash completion
# loading, and `git credential fill` finding git-credential-entra-token through git's own
# lookup against the stand-in authority (tests/deb_package.rs); then the package is
# removed and nothing of it may be left but the user's own config and cache.
# Usage: scripts/test-packages.sh [DEB]   (default: the .deb in dist/, built if missing)
# The base root is kept as a tarball in $ENTRA_TOKEN_DEB_CACHE (default
# /var/cache/entra-token-deb) and unpacked fresh for every run. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'test-packages: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

deb=${1:-}
if [ -z "$deb" ]; then
  deb=$(ls dist/entra-token_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    ENTRA_TOKEN_DIST_WINDOWS=0 scripts/dist.sh
    deb=$(ls dist/entra-token_*.deb | head -n1)
  fi
fi
deb=$(readlink -f "$deb")
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot)"

cache=${ENTRA_TOKEN_DEB_CACHE:-/var/cache/entra-token-deb}
suite=bookworm
mirror=${ENTRA_TOKEN_DEB_MIRROR:-http://deb.debian.org/debian}
base=$cache/$suite-minbase.tar
mkdir -p "$cache"
if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap) >/dev/null
fi
if [ ! -s "$base" ]; then
  log "debootstrap $suite (minbase) from $mirror"
  tmp=$(mktemp -d /var/tmp/entra-token-debootstrap.XXXXXX)
  debootstrap --variant=minbase "$suite" "$tmp" "$mirror" > "$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; rm -rf "$tmp"; fail "debootstrap"; }
  rm -rf "$tmp"/var/cache/apt/archives/*.deb
  tar -C "$tmp" -cf "$base.part" . && mv "$base.part" "$base"
  rm -rf "$tmp"
fi

root=$(mktemp -d /var/tmp/entra-token-root.XXXXXX)
cleanup() {
  for m in dev/pts dev proc; do mountpoint -q "$root/$m" && umount -l "$root/$m"; done
  rm -rf "$root"
}
trap cleanup EXIT
tar -C "$root" -xf "$base"
chmod 0755 "$root"   # mktemp's 0700 would shut out apt's and man's own users
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

in_root apt-get update -qq >/dev/null
in_root dpkg-query -W -f '${Package}\n' | sort > "$root/tmp/before"
cp "$deb" "$root/tmp/entra-token.deb"
log "installing $(basename "$deb") with apt"
in_root apt-get install -y -qq --no-install-recommends /tmp/entra-token.deb >/dev/null
in_root dpkg-query -W -f '${Package}\n' | sort > "$root/tmp/after"
declared=$(in_root dpkg-query -W -f '${Depends}' entra-token | tr ',|' '\n\n' | sed 's/(.*//; s/:.*//; s/ //g' | sort -u)
for pkg in $(comm -13 "$root/tmp/before" "$root/tmp/after"); do
  [ "$pkg" = entra-token ] && continue
  grep -qx "$pkg" <<<"$declared" || fail "installing the package brought $pkg, which it does not declare"
done
in_root dpkg -L entra-token > "$root/tmp/owned"

version=$(in_root entra-token --version)
log "installed: $version"
grep -q "^entra-token $(dpkg-deb -f "$deb" Version) (commit [0-9a-f]\{12\}, " <<<"$version" || fail "--version says '$version'"
for name in git-credential-entra-token docker-credential-entra-token entra-token-bazel; do
  [ -x "$root/usr/bin/$name" ] || fail "/usr/bin/$name missing"
done
for name in az azd; do
  [ ! -e "$root/usr/bin/$name" ] || fail "/usr/bin/$name would shadow the real tool"
done

log "installing man-db, bash-completion and git in the root"
in_root apt-get install -y -qq --no-install-recommends man-db bash-completion git >/dev/null
in_root sh -c 'MANPAGER=cat MANWIDTH=80 man entra-token' > "$root/tmp/man.txt" 2>&1 || fail "man entra-token: $(head -3 "$root/tmp/man.txt")"
grep -q 'get-token' "$root/tmp/man.txt" || fail "man entra-token does not show the get-token command"
completion=$(in_root bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader entra-token; complete -p entra-token' 2>&1) \
  || fail "bash completion did not load: $completion"
grep -q 'entra-token$' <<<"$completion" || fail "bash completion: $completion"
[ -s "$root/usr/share/zsh/vendor-completions/_entra-token" ] || fail "zsh completion missing"
[ -s "$root/usr/share/fish/vendor_completions.d/entra-token.fish" ] || fail "fish completion missing"

log "git credential fill in the root, against the stand-in authority"
ENTRA_TOKEN_DEB_ROOT=$root cargo test --locked --test it packages::git_in_a_clean_debian_root -- --ignored --nocapture

log "removing the package"
in_root apt-get remove -y -qq entra-token >/dev/null
while read -r path; do
  case "$path" in ""|/.) continue ;; esac
  if [ -L "$root$path" ] || [ -f "$root$path" ]; then fail "$path is left after removal"; fi
  if [ -d "$root$path" ] && ! in_root dpkg -S "$path" >/dev/null 2>&1 && [ -n "$(ls -A "$root$path")" ]; then
    fail "$path is left after removal, not empty"
  fi
done < "$root/tmp/owned"
[ -d "$root/root/.config/entra-token" ] || fail "removal took the user's own config"
log "ok: installed, used and removed cleanly ($(du -h "$deb" | cut -f1))"

# --- the Windows zip, in a fresh Wine prefix of the Windows chroot ----------------------
zip=$(ls dist/entra-token-*-x86_64-pc-windows-gnu.zip 2>/dev/null | head -n1 || true)
if [ -z "$zip" ]; then
  log "no Windows zip in dist/ (scripts/dist.sh builds it with scripts/windows.sh); not tested"
  exit 0
fi
winroot=${ENTRA_WIN_ROOT:-/var/cache/entra-token-win}
inside=/tmp/entra-token-zip-prefix
rm -rf "$winroot$inside"
log "a fresh Wine prefix for $(basename "$zip")"
scripts/windows.sh run "WINEPREFIX=$inside wineboot -i >/dev/null 2>&1" >/dev/null
unzip -q "$zip" -d "$winroot$inside/drive_c"
mv "$winroot$inside/drive_c/$(basename "$zip" .zip)" "$winroot$inside/drive_c/entra-token"
ENTRA_TOKEN_ZIP_PREFIX=$winroot$inside ENTRA_TOKEN_ZIP_PREFIX_INSIDE=$inside \
  cargo test --locked --test it packages::windows_zip -- --ignored --nocapture
rm -rf "$winroot$inside"
log "ok: the Windows zip answers cmd /c from a fresh Wine prefix ($(du -h "$zip" | cut -f1))"
