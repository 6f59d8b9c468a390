#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time each and prints, per
# target, how many inputs it executed and what it found. Crashes land in
# fuzz/artifacts/<target>/; the committed seeds in fuzz/seeds/<target>/ start each corpus.
#   fuzz/run.sh [seconds-per-target] [target...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1   # cargo-fuzz's -Z flags on the stable toolchain
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# Safe Rust decoders: no sanitizer needed to see panics, hangs and runaway memory.
sanitizer=${FUZZ_SANITIZER:-none}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -s "$sanitizer" -O >/dev/null
mkdir -p logs
printf '%-18s %12s %8s %s\n' target executions secs findings
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  before=$(ls "artifacts/$t" | wc -l)
  if cargo fuzz run -s "$sanitizer" -O "$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=512 -max_len=65536 -print_final_stats=1 \
      >"logs/$t.log" 2>&1; then
    verdict=none
  else
    verdict="CRASH (see fuzz/logs/$t.log, fuzz/artifacts/$t/)"
    status=1
  fi
  after=$(ls "artifacts/$t" | wc -l)
  [ "$after" -gt "$before" ] && verdict="$((after - before)) new artifact(s): fuzz/artifacts/$t/" && status=1
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*$' || echo '?')
  printf '%-18s %12s %8s %s\n' "$t" "$execs" "$secs" "$verdict"
done
exit $status
