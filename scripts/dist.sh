#!/usr/bin/env bash
# Builds every release artifact into dist/ with one command:
#   dist/entra-token_<version>_<arch>.deb   Debian package (binary, helper names, man pages,
#                                            completions, docs), Depends from dpkg-shlibdeps
#   dist/entra-token-<version>.crate        `cargo package --locked`, verified by building it
#   dist/entra-token-<version>-x86_64-pc-windows-gnu.zip
#                                            when scripts/windows.sh can build the .exe
#                                            (skip with ENTRA_TOKEN_DIST_WINDOWS=0)
#   dist/SHA256SUMS                          for all of the above
# Needs: cargo, dpkg-deb and dpkg-shlibdeps (Debian's dpkg-dev), gzip, zip.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'dist: %s\n' "$*" >&2; }

version=$(cargo pkgid | sed 's/.*[#@]//')
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export ENTRA_TOKEN_COMMIT=$commit
out=dist
rm -rf "$out"
mkdir -p "$out"

for tool in dpkg-deb dpkg-shlibdeps gzip zip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "installing the packaging tools (dpkg-dev, gzip, zip)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev gzip zip) >/dev/null
    break
  fi
done

log "building the release binary ($version, commit ${commit:0:12})"
cargo build --locked --release
bin=target/release/entra-token

# --- Debian package -------------------------------------------------------------------
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/doc/entra-token"
install -m 0755 "$bin" "$root/usr/bin/entra-token"
# The helper names tools look up on PATH. Never az/azd: they would shadow the real tools.
for name in git-credential-entra-token docker-credential-entra-token entra-token-bazel; do
  ln -s entra-token "$root/usr/bin/$name"
done
"$bin" man --dir "$stage/man" 2>/dev/null
for page in "$stage"/man/*.1; do
  gzip -9n -c "$page" > "$root/usr/share/man/man1/$(basename "$page").gz"
done
"$bin" completions bash > "$root/usr/share/bash-completion/completions/entra-token"
"$bin" completions zsh > "$root/usr/share/zsh/vendor-completions/_entra-token"
"$bin" completions fish > "$root/usr/share/fish/vendor_completions.d/entra-token.fish"
doc=$root/usr/share/doc/entra-token
install -m 0644 README.md "$doc/README.md"
[ -d docs ] && cp -r docs "$doc/docs"
cp -r protocol "$doc/protocol"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: entra-token"
  echo
  echo "Files: *"
  echo "Copyright: 2026 The entra-token developers"
  echo "License: MIT or Apache-2.0"
  echo
  echo "License: MIT"
  sed 's/^$/./; s/^/ /' LICENSE-MIT
  echo
  echo "License: Apache-2.0"
  echo " On Debian systems, the full text of the Apache License 2.0 is in"
  echo " /usr/share/common-licenses/Apache-2.0."
} > "$doc/copyright"
find "$root/usr/share" -type f -exec chmod 0644 {} +
find "$root" -type d -exec chmod 0755 {} +

# Depends, computed from the binary's own ELF dependencies, as Debian's tooling does.
mkdir -p "$stage/debian"
printf 'Source: entra-token\n\nPackage: entra-token\nArchitecture: any\n' > "$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O -e"$root/usr/bin/entra-token" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { log "dpkg-shlibdeps computed no Depends"; exit 1; }
size_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: entra-token
Version: $version
Architecture: $arch
Maintainer: The entra-token developers <entra-token@users.noreply.github.com>
Installed-Size: $size_kb
Depends: $depends
Suggests: git, kubectl
Section: utils
Priority: optional
Description: cached Microsoft Entra ID credential helper
 One binary that signs in to Microsoft Entra ID (Azure AD) and hands out cached
 access tokens to the tools that need them: a JSON request on stdin gets a JSON
 credential on stdout, and the same binary speaks the credential protocols of
 kubectl, git, cargo, Bazel and Docker, stands in for "az account get-access-token"
 and "azd auth token", and serves SDKs as a local managed-identity endpoint.
CONTROL
deb=$out/entra-token_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
log "built $deb ($(du -h "$deb" | cut -f1))"

# --- Crate ----------------------------------------------------------------------------
log "packaging the crate (cargo package --locked builds it from the packaged sources)"
cargo package --locked --quiet
cp "target/package/entra-token-$version.crate" "$out/"

# --- Windows zip ----------------------------------------------------------------------
if [ "${ENTRA_TOKEN_DIST_WINDOWS:-1}" != 0 ] && [ -x scripts/windows.sh ]; then
  log "building the Windows executable"
  scripts/windows.sh release
  exe=${ENTRA_WIN_ROOT:-/var/cache/entra-token-win}/root/target/x86_64-pc-windows-gnu/release/entra-token.exe
  [ -f "$exe" ] || { log "scripts/windows.sh release made no $exe"; exit 1; }
  zipdir=$stage/entra-token-$version-x86_64-pc-windows-gnu
  mkdir -p "$zipdir"
  cp "$exe" "$zipdir/entra-token.exe"
  # Helper names are copies (Windows runs links only with privileges); az/azd are .cmd
  # shims that pass every argument through, for `cmd /c az …` in the Azure SDKs.
  for name in git-credential-entra-token docker-credential-entra-token entra-token-bazel; do
    cp "$exe" "$zipdir/$name.exe"
  done
  for name in az azd; do
    printf '@"%%~dp0entra-token.exe" %s %%*\r\n' "$name" > "$zipdir/$name.cmd"
  done
  cp README.md LICENSE-MIT LICENSE-APACHE "$zipdir/"
  cat > "$zipdir/INSTALL.txt" <<'TXT'
Unpack this folder, then put it on your PATH for this user (PowerShell):

  [Environment]::SetEnvironmentVariable('Path', "$env:LOCALAPPDATA\entra-token;" + [Environment]::GetEnvironmentVariable('Path','User'), 'User')

after moving the folder to %LOCALAPPDATA%\entra-token. az.cmd and azd.cmd answer for the
Azure CLI and azd only when this folder comes before the real tools on PATH: delete them
if you use the real az.
TXT
  sed -i 's/$/\r/' "$zipdir/INSTALL.txt"
  (cd "$stage" && zip -qr -X "$OLDPWD/$out/$(basename "$zipdir").zip" "$(basename "$zipdir")")
fi

(cd "$out" && shopt -s nullglob && artifacts=(*.deb *.crate *.zip) && sha256sum -- "${artifacts[@]}" > SHA256SUMS)
log "artifacts in $out/:"
(cd "$out" && ls -l) >&2
