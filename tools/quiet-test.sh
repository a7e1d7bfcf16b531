#!/usr/bin/env bash
# make test, quietly: each suite's full output goes to bin/test.log; the terminal gets a line per
# suite with its counts, the conformance counts and the time, or, for a failing suite, what
# failed. The last line sums every suite as "N passed, N failed, N skipped", which CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
log=bin/test.log
: >"$log"
start=$SECONDS
passed=0 failed=0 skipped=0 broken=()

# suite NAME COMMAND…: runs COMMAND with its output in bin/test-NAME.log (and bin/test.log), then
# prints its line.
suite() {
  local name=$1 suite_log=bin/test-$1.log began=$SECONDS
  shift
  rm -f "bin/test-$name.events"
  "$@" >"$suite_log" 2>&1
  local rc=$? p f s failures
  cat "$suite_log" >>"$log"
  # Each test function and table row counted once, from the runners' events (go test -json's in
  # the log, the Node test runner's in bin/test-NAME.events), with what failed; a package that
  # does not build and a count under the suite's floor in tools/test-floors are failures.
  local events=("$PWD/$suite_log")
  [[ $name == go ]] || events+=("$PWD/bin/test-$name.events")
  { read -r p f s; failures=$(cat); } < <(go -C tools run ./testcount -floors "$PWD/tools/test-floors" "$name" "${events[@]}")
  p=${p:-0} f=${f:-0} s=${s:-0}
  if ((f != 0 && rc == 0)); then rc=1; fi
  # A failure outside any test (vet, a build, an emulator that would not start) still counts.
  if ((rc != 0 && f == 0)); then f=1; fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  printf '%-4s %4d passed, %d failed, %d skipped  (%d s, log: %s)\n' "$name" "$p" "$f" "$s" $((SECONDS - began)) "$suite_log"
  if ((rc != 0)); then
    broken+=("$name")
    # The failing tests with what they printed; failing elsewhere, the log's end.
    echo "---- $name failed (full output: $suite_log):"
    if [[ -n $failures ]]; then head -n 60 <<<"$failures"; else tail -n 40 "$suite_log"; fi
    echo "----"
  fi
}

# The e2e suite's npm trees install while the Go suite runs: on a fresh clone each takes minutes.
# A failed install shows in the e2e suite, whose make tries it again.
make --no-print-directory e2e-deps >bin/test-deps.log 2>&1 &
deps=$!
suite go make --no-print-directory go-test GOTESTFLAGS=-json
wait "$deps"
cat bin/test-deps.log >>"$log"
suite e2e make --no-print-directory e2e NODETESTFLAGS="--test-reporter=tap --test-reporter-destination=stdout \
  --test-reporter=$PWD/tools/test-events.mjs --test-reporter-destination=$PWD/bin/test-e2e.events"
# The conformance suite's own count of answers that match onCall's.
grep -hoE '[0-9]+ same, [0-9]+ differ \(deliberate\)' bin/test-e2e.log | sed 's/^/conformance with onCall: /' | tail -1
echo "time: $((SECONDS - start)) s; full log: $log"
echo "$passed passed, $failed failed, $skipped skipped"
((${#broken[@]} == 0))
