#!/usr/bin/env bash
# Networks benchmark: define/start/stop/undefine 200 networks on the test driver
# from one virtscript script, vs Rust with `virt` directly, vs libvirt-python.
# Needs valgrind and python3-libvirt (tools/libvirtd-netns.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile dist --quiet --bin virtscript --example baseline_networks
export LIBVIRT_DEFAULT_URI=test:///default
# Commands in turn, round after round (benches/compare.py), plus instruction
# counts: on this shared machine wall times drift by ±20 %.
benches/compare.py --runs "${RUNS:-60}" --instructions ${OUT:+--markdown "$OUT"} \
    "rust-virt=target/dist/examples/baseline_networks" \
    "virtscript=target/dist/virtscript run benches/networks.rhai" \
    "libvirt-python=/usr/bin/python3 benches/networks.py"
