#!/usr/bin/env bash
# Run the whole test suite: fast tests on libvirt's embedded test driver and
# real-daemon tests against a private libvirtd that this script installs and
# starts in its own network namespace (tools/libvirtd-netns.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/libvirtd-netns.sh start
export VIRTSCRIPT_LIVE_URI=qemu:///system
# Real-daemon tests share one daemon; they use unique object names, so they may
# run in parallel, but guests under TCG are slow: keep the thread count modest.
cargo test --all-targets -- --test-threads="${VIRTSCRIPT_TEST_THREADS:-4}"
