#!/usr/bin/env bash
# Build virtscript and run a bundled example on libvirt's embedded test driver
# (no daemon, nothing on this machine is touched). Installs the build
# dependencies (libvirt-dev, pkg-config) first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for p in libvirt-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "try: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# A debug build: it compiles in a third of the time of the release profile
# (whole-program LTO, see Cargo.toml) and runs an example just as well.
cargo build --quiet --bin virtscript
exec target/debug/virtscript run "${1:-scripts/hello.rhai}"
