#!/usr/bin/env bash
# REPL start-up: time from launching to the first prompt, in a pseudo terminal,
# for `virtscript repl` and `virsh -c test:///default` (interactive). Target:
# virtscript at most 1.5x virsh. Figures go to docs/benchmarks.md (## REPL).
#
#   benches/repl.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
cargo build -q --profile dist --bin virtscript --example baseline_repl
BIN=target/dist/virtscript
PTY=target/dist/examples/baseline_repl
STATE=$(mktemp -d)
trap 'rm -rf "$STATE"' EXIT
export XDG_STATE_HOME=$STATE
unset LIBVIRT_DEFAULT_URI

echo "time to first prompt over $RUNS runs (ms): min median mean"
virsh_t=$("$PTY" "$RUNS" "virsh # " -- virsh -c test:///default)
echo "virsh -c test:///default          $virsh_t"
vs_t=$("$PTY" "$RUNS" "virtscript> " -- "$BIN" repl -c test:///default)
echo "virtscript repl -c test:///default $vs_t"
vs_bare=$("$PTY" "$RUNS" "virtscript> " -- "$BIN")
echo "virtscript (bare, embedded driver) $vs_bare"
virsh_med=$(echo "$virsh_t" | cut -d' ' -f2)
vs_med=$(echo "$vs_t" | cut -d' ' -f2)
ratio=$(awk -v a="$vs_med" -v b="$virsh_med" 'BEGIN { printf "%.2f", a / b }')
echo "ratio of medians (virtscript / virsh): $ratio (target <= 1.5)"
