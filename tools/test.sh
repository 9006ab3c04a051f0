#!/usr/bin/env bash
# Run the whole test suite: fast tests on libvirt's embedded test driver and
# real-daemon tests against a private libvirtd that this script installs and
# starts in its own network namespace (tools/libvirtd-netns.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/libvirtd-netns.sh start
# The second host, for the multi-host tests (tests/integration/hosts.rs).
tools/libvirtd-host2.sh start
export VIRTSCRIPT_LIVE_URI=qemu:///system
VIRTSCRIPT_LIVE_URI2=$(tools/libvirtd-host2.sh uri)
export VIRTSCRIPT_LIVE_URI2
log=$(mktemp)
# Every live test appends its name here when it gets the daemon's URI
# (tests/integration/support.rs live_uri): the count below is of tests that
# really ran against the daemon, not of names that passed.
export VIRTSCRIPT_LIVE_LOG
VIRTSCRIPT_LIVE_LOG=$(mktemp)
trap 'rm -f "$log" "$VIRTSCRIPT_LIVE_LOG"' EXIT
# Real-daemon tests share one daemon; they use unique object names, so they may
# run in parallel, but guests under TCG are slow: keep the thread count modest.
status=0
cargo test --all-targets -- --test-threads="${VIRTSCRIPT_TEST_THREADS:-4}" 2>&1 | tee "$log" || status=$?
# Tests that restart the daemon run alone, after everything else.
if [ "$status" = 0 ]; then
  cargo test --test integration -- --ignored --test-threads=1 2>&1 | tee -a "$log" || status=$?
fi
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
live=$(sort -u "$VIRTSCRIPT_LIVE_LOG" | grep -c . || true)
echo "tests: $passed passed, $failed failed; live tests run on $VIRTSCRIPT_LIVE_URI: $live"
if [ "$live" = 0 ]; then
  echo "error: no live test ran against the real daemon" >&2
  [ "$status" = 0 ] && status=1
fi
exit "$status"
