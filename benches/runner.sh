#!/usr/bin/env bash
# Runner overhead (issue 2): `virtscript run` of an empty script against a
# minimal Rust program that opens test:///default and against libvirt-python;
# then 10,000 network look-ups from a script against the same loop in Rust.
# Needs: python3-libvirt, valgrind (Debian). Writes results to target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile dist --quiet --bin virtscript --example baseline_open --example baseline_calls
out=target/bench; mkdir -p "$out"
bin=target/dist/virtscript
echo "" > "$out/empty.rhai"
cat > "$out/lookups.rhai" <<'RHAI'
let n = 0;
for i in 0..10000 {
    if HOST.network("default").active { n += 1; }
}
assert(n == 10000);
RHAI
export LIBVIRT_DEFAULT_URI=test:///default
# Commands in turn, round after round (benches/compare.py): on this shared
# machine hyperfine's one-command-at-a-time blocks drift by ±20 %.
benches/compare.py --runs "${RUNS:-100}" --instructions --markdown "$out/startup.md" \
  "rust: open test:///default=target/dist/examples/baseline_open" \
  "virtscript run empty.rhai=$bin run $out/empty.rhai" \
  "python3 libvirt.open=/usr/bin/python3 -c \"import libvirt; libvirt.open('test:///default')\""
benches/compare.py --runs "${RUNS:-40}" --instructions --markdown "$out/lookups.md" \
  "rust: 10,000 look-ups=target/dist/examples/baseline_calls 10000" \
  "virtscript: 10,000 look-ups=$bin run $out/lookups.rhai"
