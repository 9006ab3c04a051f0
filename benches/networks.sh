#!/usr/bin/env bash
# Networks benchmark: define/start/stop/undefine 200 networks on the test driver
# from one virtscript script, vs Rust with `virt` directly, vs libvirt-python.
# Needs hyperfine and python3-libvirt (tools/libvirtd-netns.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin virtscript --example baseline_networks
export LIBVIRT_DEFAULT_URI=test:///default
hyperfine --warmup 3 --runs "${RUNS:-20}" -N \
    --export-markdown "${OUT:-/dev/stdout}" \
    -n virtscript "target/release/virtscript run benches/networks.rhai" \
    -n rust-virt "target/release/examples/baseline_networks" \
    -n libvirt-python "/usr/bin/python3 benches/networks.py"
