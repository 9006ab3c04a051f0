#!/usr/bin/env bash
# Runner overhead (issue 2): `virtscript run` of an empty script against a
# minimal Rust program that opens test:///default and against libvirt-python;
# then 10,000 network look-ups from a script against the same loop in Rust.
# Needs: hyperfine, python3-libvirt (Debian). Writes results to target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin virtscript --example baseline_open --example baseline_calls
out=target/bench; mkdir -p "$out"
bin=target/release/virtscript
echo "" > "$out/empty.rhai"
cat > "$out/lookups.rhai" <<'RHAI'
let n = 0;
for i in 0..10000 {
    if HOST.network("default").active { n += 1; }
}
assert(n == 10000);
RHAI
export LIBVIRT_DEFAULT_URI=test:///default
hyperfine -N --warmup 20 --runs 200 --export-markdown "$out/startup.md" \
  -n "virtscript run empty.rhai" "$bin run $out/empty.rhai" \
  -n "rust: open test:///default" "target/release/examples/baseline_open" \
  -n "python3 libvirt.open" "/usr/bin/python3 -c \"import libvirt; libvirt.open('test:///default')\""
hyperfine -N --warmup 3 --runs 20 --export-markdown "$out/lookups.md" \
  -n "virtscript: 10,000 look-ups" "$bin run $out/lookups.rhai" \
  -n "rust: 10,000 look-ups" "target/release/examples/baseline_calls 10000"
