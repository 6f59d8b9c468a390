#!/usr/bin/env bash
# Builds entra-token.exe for x86_64-pc-windows-gnu on this Linux machine and runs the
# Windows test suite under Wine, from a Debian sid chroot kept outside the repository.
#
# Why a chroot: rustup cannot fetch a Windows std here, but sid ships rustc/cargo with
# rust-src (std is built from source with -Zbuild-std), a mingw-w64 linker and Wine 10,
# all as Debian packages. The chroot is built once (about 5-6 minutes, 3 GB) and reused.
#
#   scripts/windows.sh            build the chroot if missing, then `cargo test` under Wine
#   scripts/windows.sh build      only build the debug entra-token.exe
#   scripts/windows.sh release    build the release entra-token.exe
#   scripts/windows.sh toolchain  only build/refresh the chroot
#   scripts/windows.sh macos      `cargo check` for aarch64- and x86_64-apple-darwin (type-check
#                                 only: no Apple SDK here; ring's C build is overridden away)
#   scripts/windows.sh run CMD    run a shell command in the chroot at the repository root
#   (extra args after `test` go to `cargo test`, e.g. `scripts/windows.sh test --test it fs::`)
#
# Environment: ENTRA_WIN_ROOT (chroot, default /var/cache/entra-token-win), MIRROR.
# Needs root (debootstrap, chroot, mounts). Exit status is cargo's.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${ENTRA_WIN_ROOT:-/var/cache/entra-token-win}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
TARGET=x86_64-pc-windows-gnu
PKGS="rustc cargo rust-src gcc-mingw-w64-x86-64-posix wine wine64 ca-certificates"
# In the chroot the checkout is bind-mounted here; the target dir stays in the chroot so
# Linux and Windows builds never share one and reruns reuse the Windows build.
SRC=/src
T0=$(date +%s)
say() { echo "windows.sh [+$(( $(date +%s) - T0 ))s]: $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "windows.sh: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }

mode=${1:-test}; [ $# -gt 0 ] && shift
mkdir -p "$ROOT"
# One run at a time per chroot: the mounts and the target dir are shared.
exec 9>"$ROOT.lock"
flock 9

inchroot() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=/root/target CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0 \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine \
    WINEPREFIX=/root/wpfx WINEDEBUG=-all XDG_RUNTIME_DIR=/tmp/xdg-root \
    RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}" \
    ENTRA_TOKEN_COMMIT="${ENTRA_TOKEN_COMMIT:-$(git -C "$REPO" rev-parse HEAD 2>/dev/null)}" \
    /bin/bash -c "mkdir -p -m700 /tmp/xdg-root; cd $SRC 2>/dev/null || true; $1"
}
# Debian's wine keeps wineserver off PATH.
WS='$(ls /usr/lib/x86_64-linux-gnu/wine/wineserver /usr/lib/wine/wineserver64 2>/dev/null | head -1)'

cleanup() {
  set +e
  if mountpoint -q "$ROOT/proc"; then
    inchroot "W=$WS; [ -n \"\$W\" ] && { \$W -k; \$W -w; }" 2>/dev/null
  fi
  for m in src dev sys proc; do
    for _ in 1 2 3 4 5; do
      mountpoint -q "$ROOT/$m" || break
      umount -R "$ROOT/$m" 2>/dev/null || sleep 1
    done
  done
}
trap cleanup EXIT

# ---------------------------------------------------------------- the chroot
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap) >/dev/null
fi
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  say "debootstrap sid -> $ROOT"
  debootstrap --variant=minbase sid "$ROOT" "$MIRROR" > "$ROOT.debootstrap.log" 2>&1 \
    || { tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
fi
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/sys"  || mount -t sysfs sys "$ROOT/sys"
if ! mountpoint -q "$ROOT/dev"; then mount --rbind /dev "$ROOT/dev"; mount --make-rslave "$ROOT/dev"; fi
mkdir -p "$ROOT$SRC"
mountpoint -q "$ROOT$SRC" || mount --bind "$REPO" "$ROOT$SRC"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Without /etc/hosts, `localhost` does not resolve under Wine (error 11001).
grep -q localhost "$ROOT/etc/hosts" 2>/dev/null || printf '127.0.0.1 localhost\n::1 localhost\n' > "$ROOT/etc/hosts"
# Mirrors can serve a sid Release past its Valid-Until.
echo 'Acquire::Check-Valid-Until "false";' > "$ROOT/etc/apt/apt.conf.d/99no-check-valid-until"
# Extra CAs the host trusts (a proxy in front of crates.io) are trusted in the chroot too.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
fi
if ! inchroot "dpkg -s $PKGS >/dev/null 2>&1"; then
  say "apt-get install $PKGS"
  inchroot "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKGS" \
    > "$ROOT.apt.log" 2>&1 || { tail -30 "$ROOT.apt.log" >&2; exit 1; }
  inchroot 'update-ca-certificates >/dev/null 2>&1 || true'
fi
if [ ! -f "$ROOT/root/wpfx/system.reg" ]; then
  say "wineboot (new WINEPREFIX)"
  inchroot "wineboot -i >/dev/null 2>&1; W=$WS; \$W -w"
fi
say "toolchain: $(inchroot 'rustc -V; wine --version' | tr '\n' ' ')"
[ "$mode" = toolchain ] && exit 0

# ---------------------------------------------------------------- build and test
# Each group of suites runs through scripts/windows-suite.sh, which judges it by its output as
# well as its status (see there: `script` and Wine can end a killed run with status 0) and
# appends one line naming the suites to $WINDOWS_VERDICTS when it fails; any such line fails
# the step, after all groups ran. ARGS: [--console TRANSCRIPT] NAME SECONDS 'FILTERS' CMD...
group() { printf '%q ' scripts/windows-suite.sh "$@"; echo '|| s=1;'; }
VERDICTS=/tmp/windows-verdicts.txt

# The suites driving the .exe against the stand-in authority, beside sign_in and serve.
STANDIN="identity:: tenants:: token_safety:: hostile_replies:: hostile_authority:: url_scope::
 protocol_examples:: profile_cli:: verbose:: first_contact:: faults:: kubectl:: bazel:: docker:: cargo::
 machine_sources:: service_fabric:: azure_pipelines:: azure_cli:: azure_cli_auto:: setup:: mock_authority:: doctor::
 exec:: nuget:: cross_tenant_mi:: emulator::"
STANDIN=$(echo $STANDIN)

# Debug builds and tests share one std (-Zbuild-std: unwinding, as the test harness needs);
# the release profile aborts on panic, so it builds std with panic_abort.
BUILD="cargo build --locked --target $TARGET"
case "$mode" in
  build)   say "$BUILD -Zbuild-std"; inchroot "$BUILD -Zbuild-std --bins" ;;
  release) say "$BUILD --release"; inchroot "$BUILD -Zbuild-std=std,panic_abort --release --bins"
           say "built $ROOT/root/target/$TARGET/release/entra-token.exe" ;;
  run)     inchroot "$*" ;;
  macos)   # ring's build script compiles C for the target; `check` links nothing, so its
           # `links` key (named after ring's version) is overridden with no libraries.
           ring=$(awk '/^name = "ring"$/{getline; gsub(/[^0-9.]/,""); print; exit}' "$REPO/Cargo.lock" | tr . _)
           for t in aarch64-apple-darwin x86_64-apple-darwin; do
             say "cargo check --target $t"
             inchroot "cargo check --locked --all-targets -Zbuild-std=std,panic_abort --target $t --config 'target.$t.ring_core_${ring}_.rustc-link-lib=[]'"
           done ;;
  test)    # The suites that run under Wine: the unit tests, the Windows suite, and every
           # suite driving the .exe against the in-process stand-in authority (client
           # credentials, device code, refresh with rotation, 20-50 concurrent cold processes,
           # killed writers, identities, tenants, hostile replies, faults, the front ends'
           # protocols). Inside them, each test needing a Linux-only tool or API (real git,
           # kubectl, docker, cargo, az, Python, sh scripts, tar, util-linux `script`, POSIX modes,
           # symlinks, wait4, /proc, uids) is cfg(unix) with a comment saying why.
           # Left out whole, each for its reason:
           #   git: every test drives the real git;
           #   setup_tools: checks links by resolving symlinks (Windows' NAME.exe links have
           #   their own tests in tests/it/windows.rs); secret_store: gnome-keyring on D-Bus;
           #   filesystem: POSIX modes, symlinks, unshare/tmpfs, stranger uids (Windows'
           #   ACLs have their own tests in fs and tests/it/windows.rs); sign_in_terminal: util-linux `script` for a pty;
           #   readme, completions_man: bash/zsh/fish, man; packages: the .deb in a Debian
           #   root; agent, agent_confirm, docker_agent: the agent's Unix socket, peer uids
           #   and OpenSSH; npm, maven, pyfeeds, emulator_clients: the real npm/pnpm/yarn,
           #   mvn, pip/uv/twine/poetry, MSAL/azure-identity/Node (Linux programs here); ssh,
           #   kubectl_pop: OpenSSH and kubectl (not in Wine). exec runs cmd.exe
           #   and this test binary as its command (whole 32-bit exit codes; Ctrl+C in the
           #   console group, which has a console); emulator runs the .exe's own emulator (its
           #   key from Windows' CNG: no ssh-keygen) and `demo`. Not yet ported: no_prompt;
           #   not yet tried under Wine: pop, cae, cache_trust, test_env.
           # Green under Wine: the unit tests, core, concurrency, process_death and windows;
           # then, in a run of their own (process_death's killed writers race a reader and
           # stay apart from the many processes these start): sign_in (device code, the
           # browser through a stand-in .exe, password, refresh with rotation, login/logout/
           # status/inspect), serve and the other stand-in suites; last, alone under a
           # pseudo-terminal, the console prompts.
           # Chosen suites only: WINDOWS_TESTS="suite:: other::".
           suites=${WINDOWS_TESTS:-core:: concurrency:: process_death:: windows::}
           people=${WINDOWS_TESTS:+none}
           people=${people:-sign_in:: serve:: $STANDIN}
           say "cargo test under Wine: ${*:---lib, then --test it -- $suites}"
           # -Zbuild-std (std and its unwinding): the test harness catches panics.
           # The unit tests, then the suites: module filters of the one test crate (tests/it),
           # in a run of their own since a filter would narrow --lib too. Extra args replace both.
           c="cargo test --locked --no-fail-fast -Zbuild-std --target $TARGET"
           if [ $# -gt 0 ]; then run="$(group "cargo test $*" 3600 '' $c "$@")"
           else
             # Built first, with no limit (a cold build under load takes many minutes), so
             # each group's limit is about running it: about 5-10 times its time on an idle
             # machine (the stand-in suites took 893 s with load 13 on two cores), so only a
             # hang reaches it.
             run="scripts/windows-suite.sh --self-test || exit 1; $c --no-run --lib --test it || { echo 'windows.sh: FAILED: the Windows test build' >&2; exit 1; }; $(group lib 600 '' $c --lib)"
             run+="$(group suites 900 "$suites" $c --test it -- $suites)"
             if [ "$people" != none ]; then
               run+="$(group stand-in 1800 "$people" $c --test it -- $people)"
               # The console tests, alone (one at a time) under a pseudo-terminal: the test
               # and the entra-token it starts share a console it types into (CONIN$).
               run+="$(group --console /tmp/console.txt console 600 windows::console_ $c --test it -- --ignored --test-threads=1 windows::console_)"
             fi
           fi
           inchroot "rm -f $VERDICTS; export WINDOWS_VERDICTS=$VERDICTS ENTRA_TEST_CONSOLE_TRANSCRIPT='Z:\\tmp\\console.txt'; s=0; $run
             [ \$s = 0 ] && exit 0; echo 'windows.sh: the Windows tests FAILED:' >&2; cat $VERDICTS >&2; exit 1" ;;
  *) echo "windows.sh: unknown mode $mode (test|build|release|macos|toolchain|run)" >&2; exit 1 ;;
esac
say "done"
