#!/usr/bin/env bash
# One group of test suites run under Wine (scripts/windows.sh starts this in its chroot), and
# the verdict on it. An exit status alone is not trusted there: util-linux `script` can exit
# 0 when a signal ends it (a console run whose `timeout` was killed by hand passed, seen
# with Debian 12's and with the chroot's), a harness can print FAILED and still exit 0, and
# a filter naming a suite that is not built for Windows runs no test and passes.
# So a group passes only when its command exited 0 within its time, every harness it ran
# reported "test result: ok", no test failed, and each named suite ran at least one test.
# Otherwise one line (on stderr, and appended to $WINDOWS_VERDICTS) names the suites and
# says why, and the exit status is 1. Either line says how long the group took.
#
#   windows-suite.sh [--console TRANSCRIPT] NAME SECONDS 'FILTERS' CMD [ARGS...]
#     NAME      the group, as the verdict names it when no failed test names a suite
#     SECONDS   its time limit (then TERM, and KILL 10 s later)
#     FILTERS   the suites (libtest module filters such as `core::`) that must each run a
#               test; '' asks only that some test ran
#     --console CMD runs under util-linux `script`, a pseudo-terminal Wine makes a console
#               of, its stdin a FIFO held open (an EOF would reach the console as the end of
#               input); the transcript is the screen the console tests check; the
#               harness's own output is judged
#   windows-suite.sh --self-test   checks the verdicts above on stand-in commands (no Wine)
set -uo pipefail

verdicts=${WINDOWS_VERDICTS:-/dev/null}

# The verdict on LOG (the group's output) given the command's status R.
judge() {
  local name=$1 secs=$2 filters=$3 r=$4 log=$5 took=${6:-?} why=() failed suites f t
  case $r in
    0) ;;
    124) why+=("timed out after ${secs} s") ;;
    137) why+=("killed by signal 9 (or timed out after ${secs} s and would not stop)") ;;
    *) if [ "$r" -gt 128 ]; then why+=("killed by signal $((r - 128))"); else why+=("exit status $r"); fi ;;
  esac
  # Failed tests: from their own lines, and from the `failures:` list (a child's stderr can
  # break a test's line in two).
  failed=$( { grep -a -E '^test \S+ \.\.\. FAILED$' "$log" | sed -E 's/^test (\S+) .*/\1/'
             awk '/^failures:$/ {f = 1; next} f && /^    [^ ]+$/ {print $1; next} f && !/^    / {f = 0}' "$log"; } | sort -u)
  [ -n "$failed" ] && why+=("failed: $(echo $failed | sed 's/ /, /g')")
  if ! grep -a -q -E '^test result: ' "$log"; then
    why+=("no test harness reported a result")
  elif grep -a -q -E '^test result: FAILED' "$log" && [ -z "$failed" ]; then
    why+=("a harness reported FAILED")
  fi
  # Still running when it ended: libtest's 60-second notes, or (one test at a time) the last
  # test it started.
  t=$(grep -a -oE '^test \S+ has been running for over' "$log" | awk '{print $2}' | sort -u)
  [ -z "$t" ] && t=$(grep -a -E '^test \S+ \.\.\. ?$' "$log" | tail -1 | awk '{print $2}')
  if [ -n "$t" ] && { [ "$r" != 0 ] || ! grep -a -q -E '^test result: ' "$log"; }; then
    why+=("still running: $(echo $t | sed 's/ /, /g')")
  fi
  if [ -z "$filters" ]; then
    grep -a -q -E '^test result: ok\. [1-9]' "$log" || grep -a -q -E '^test result: FAILED' "$log" || why+=("ran no test")
  fi
  local none=
  for f in $filters; do
    grep -a -q -E "^test ${f}\S* \.\.\." "$log" || { why+=("ran no test of ${f} (not built for Windows, or misspelled?)"); none+=" $f"; }
  done
  [ ${#why[@]} = 0 ] && { echo "windows-suite: passed: $name ($took s)" >&2; return 0; }
  # Name the suites of the failed tests and those that ran nothing, else the group's.
  suites=$( { for t in $failed; do echo "${t%%::*}::"; done; for f in $none; do echo "$f"; done; } | sort -u | tr '\n' ' ')
  suites=${suites:-${filters:-$name}}
  local line="windows.sh: FAILED ${suites% } ($name, $took s): $(IFS=';'; echo "${why[*]}" | sed 's/;/; /g')"
  echo "$line" >&2
  echo "$line" >> "$verdicts"
  return 1
}

run_group() {
  local console=
  if [ "$1" = --console ]; then console=$2; shift 2; fi
  local name=$1 secs=$2 filters=$3 r log start=$SECONDS
  shift 3
  log=$(mktemp /tmp/windows-suite.XXXXXX)
  if [ -n "$console" ]; then
    rm -f "$console" /tmp/console.in
    mkfifo /tmp/console.in
    sleep $((secs + 60)) > /tmp/console.in &
    local holder=$!
    # The transcript is the screen Wine's console paints (cursor moves, lines wrapped at its
    # width): no line can be read from it, and the harness must write to that screen for
    # the tests to see their prompts there. So the harness lists the tests first, and in the
    # console writes each result to a --logfile ("ok NAME", "failed NAME", "ignored NAME"),
    # turned here into its usual lines; the summary only when every listed test has one.
    local list=$log.list results=$log.results
    "$@" --list 2>/dev/null | sed -n -E 's/^(\S+): test$/\1/p' > "$list"
    timeout -k 10 "$secs" script -qfec "$* --logfile 'Z:${results//\//\\}'" "$console" < /tmp/console.in > /dev/null
    r=$?
    kill $holder 2>/dev/null
    rm -f /tmp/console.in
    # "RESULT[: message] NAME": the name is the last word.
    awk '{r = $1; sub(/:$/, "", r); t = "test " $NF " ... "}
         r == "ok" {print t "ok"} r == "failed" {print t "FAILED"} r == "ignored" {print t "ignored"}' "$results" > "$log" 2>/dev/null
    local n f
    n=$(grep -c . "$list")
    f=$(grep -c 'FAILED$' "$log")
    if [ "$n" -gt 0 ] && [ "$(grep -c . "$log")" = "$n" ]; then
      [ "$f" = 0 ] && echo "test result: ok. $n passed" >> "$log" || echo "test result: FAILED. $f failed" >> "$log"
    else
      # Not all finished: the first listed test without a result was the one running.
      while read -r t; do grep -q -F "test $t ..." "$log" || { echo "test $t ... " >> "$log"; break; }; done < "$list"
    fi
    rm -f "$list" "$results"
    cat "$log"
  else
    # Into the log, shown as it grows until the command ends: a pipe to tee would wait for
    # every process holding its end, and a Windows child left running holds it.
    timeout -k 10 "$secs" "$@" > "$log" 2>&1 &
    local pid=$!
    tail -n +1 -f --pid=$pid "$log"
    wait $pid
    r=$?
    # What it left running (timeout made the group): stopped, so no later group meets it.
    local left
    left=$(for p in /proc/[0-9]*; do
             read -r st 2>/dev/null < $p/stat || continue
             st=(${st##*) })  # state, ppid, process group, ...
             [ "${st[2]}" = "$pid" ] && tr '\0' ' ' < $p/cmdline && echo
           done)
    if [ -n "$left" ]; then
      echo "windows-suite: $name left processes running; stopping them:" >&2
      echo "$left" | sed 's/^/  /' >&2
      kill -KILL -- -$pid 2>/dev/null
    fi
  fi
  judge "$name" "$secs" "$filters" "$r" "$log" "$((SECONDS - start))"
  r=$?
  [ $r != 0 ] && [ -n "$console" ] && tail -c 3000 "$console"
  rm -f "$log"
  return $r
}

self_test() {
  local bad=0 out want
  verdicts=/dev/null
  # NAME WANT(pass|text the verdict holds) FILTERS SECONDS COMMAND
  check() {
    out=$(run_group "$1" "$4" "$3" bash -c "$5" 2>&1 >/dev/null | grep -E '^(windows-suite: passed|windows\.sh: FAILED)')
    case $2 in
      pass) [[ $out == "windows-suite: passed: $1 ("*" s)" ]] ;;
      *) [[ $out == "windows.sh: FAILED "*$2* ]] ;;
    esac || { echo "self-test $1: wanted ${2}, got: $out" >&2; bad=1; }
  }
  local ok='echo "test a::x ... ok"; echo "test b::y ... ok"; echo "test result: ok. 2 passed; 0 failed"'
  check passes pass 'a:: b::' 20 "$ok"
  check any-test pass '' 20 "$ok"
  check exit-status 'exit status 101' 'a::' 20 "$ok; exit 101"
  check failed-named 'a:: (failed-named, * s): failed: a::x' 'a::' 20 'echo "test a::x ... FAILED"; echo "test result: FAILED. 0 passed; 1 failed"; exit 0'
  check failures-list 'failed: a::x' 'a::' 20 'echo "test a::x ... entra-token: noise"; printf "failures:\n    a::x\n\ntest result: FAILED. 0 passed; 1 failed\n"'
  check said-failed 'a harness reported FAILED' 'a::' 20 'echo "test a::x ... ok"; echo "test result: FAILED. 1 passed; 0 failed"'
  check no-result 'no test harness reported a result' 'a::' 20 'echo "test a::x ... ok"'
  check no-suite 'b:: (no-suite, * s): ran no test of b::' 'a:: b::' 20 'echo "test a::x ... ok"; echo "test result: ok. 1 passed; 0 failed"'
  check nothing-ran 'ran no test' '' 20 'echo "test result: ok. 0 passed; 0 failed"'
  check signal 'killed by signal 15' 'a::' 20 'echo "test a::x ... ok"; kill -TERM $$'
  check timeout 'timed out after 1 s;*still running: a::slow' 'a::' 1 'echo "test a::slow ... "; sleep 30'
  check missing 'exit status 127' 'a::' 20 'no-such-program-anywhere'
  # A process the command leaves running (as a Windows child can) holds its output open:
  # the verdict does not wait for it.
  local start=$SECONDS
  check leftover pass 'a::' 20 "(cd /; exec sleep 15) & $ok"
  [ $((SECONDS - start)) -lt 10 ] || { echo "self-test leftover: waited $((SECONDS - start)) s for a leftover process" >&2; bad=1; }
  # The console: `script` exits 0 when a signal ends it, so its status alone passed this.
  # The console: a stand-in harness that lists a::x and a::y, then writes its results to
  # the --logfile it is given (a Windows path, as Wine's harness gets it).
  local tr=/tmp/windows-suite-self.txt err=/tmp/windows-suite-self.err fake=/tmp/windows-suite-fake.sh sub
  cat > $fake <<'FAKE'
case " $* " in *" --list "*) printf 'a::x: test\na::y: test\n'; exit 0;; esac
a="$*"; log=${a##*--logfile Z:}; log=${log//\\//}
echo "ok a::x" > "$log"
[ "$1" = pass ] && { echo "ignored: why a::y" >> "$log"; exit 0; }
[ "$1" = fail ] && { echo "failed: boom a::y" >> "$log"; exit 0; }
sleep 30
FAKE
  out=$(run_group --console $tr console 20 'a::' bash $fake pass 2>&1 >/dev/null | grep -E '^(windows-suite: passed|windows\.sh: FAILED)')
  [[ $out == "windows-suite: passed: console ("*" s)" ]] || { echo "self-test console-pass: got: $out" >&2; bad=1; }
  out=$(run_group --console $tr console 20 'a::' bash $fake fail 2>&1 >/dev/null | grep -E '^(windows-suite: passed|windows\.sh: FAILED)')
  [[ $out == "windows.sh: FAILED a:: (console, "*" s): failed: a::y" ]] || { echo "self-test console-fail: got: $out" >&2; bad=1; }
  # `script` exits 0 when a signal ends it, so its status alone passed this.
  ( run_group --console $tr console 20 'a::' bash $fake hang 2> $err > /dev/null ) &
  sub=$!
  sleep 3
  # The subshell's `timeout` (no pgrep in a minimal root: /proc), killed as the lead did.
  for p in /proc/[0-9]*; do
    [ "$(cat $p/comm 2>/dev/null)" = timeout ] && grep -q -E "^PPid:\s+$sub\$" $p/status 2>/dev/null && kill -TERM ${p#/proc/}
  done
  wait $sub
  out=$(grep '^windows' $err)
  # (`script` then exits 0 or 143, depending on what it runs: failed either way, not timed out.)
  [[ $out == "windows.sh: FAILED a:: (console, "*" s): "*"no test harness reported a result"*"still running: a::y" && $out != *"timed out"* ]] || { echo "self-test console-killed: got: $out" >&2; bad=1; }
  rm -f $err $fake $tr
  [ $bad = 0 ] && echo "windows-suite: self-test passed" >&2
  return $bad
}

if [ "${1:-}" = --self-test ]; then self_test; exit; fi
run_group "$@"
