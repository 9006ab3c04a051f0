#!/usr/bin/env bash
# Build virtscript and run a bundled example on libvirt's embedded test driver
# (no daemon, nothing on this machine is touched). Installs the build
# dependencies (libvirt-dev, pkg-config) in one quiet apt transaction, a no-op
# where they are present (tools/lib/apt.sh: set-up has exactly one path).
set -euo pipefail
cd "$(dirname "$0")/.."

. tools/lib/apt.sh
apt_update try
apt_install try libvirt-dev pkg-config
# A debug build: it compiles fastest and runs an example just as well.
cargo build --quiet --bin virtscript
exec target/debug/virtscript run "${1:-scripts/hello.rhai}"
