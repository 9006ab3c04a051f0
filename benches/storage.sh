#!/usr/bin/env bash
# Storage benchmarks on the real daemon (qemu:///system), figures for
# docs/benchmarks.md "## Storage":
#   1. a linked clone of a qcow2 volume holding 16 MiB vs 2 GiB of written data
#      (should take the same time: only a new overlay header is written);
#   2. a full clone of the 2 GiB-written qcow2 volume with virtscript, against
#      `qemu-img convert -O qcow2` of the same file and `virsh vol-clone`.
# Needs root, the daemon (tools/libvirtd-netns.sh start), qemu-utils, hyperfine.
# Usage: benches/storage.sh [RUNS]   (default 5; results in target/bench-storage/)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-5}
URI=qemu:///system
POOL=vst-bench-$$
DIR=/var/lib/libvirt/images/$POOL
OUT=target/bench-storage
VIRSH="virsh -q -c $URI"

command -v hyperfine >/dev/null || apt-get install -y hyperfine >/dev/null
command -v qemu-io >/dev/null || { echo "needs qemu-io (qemu-utils)" >&2; exit 1; }
cargo build --profile dist -q
BIN=$PWD/target/dist/virtscript
mkdir -p "$OUT"

cleanup() {
  for v in $($VIRSH vol-list --pool "$POOL" 2>/dev/null | awk '{print $1}'); do
    $VIRSH vol-delete "$v" --pool "$POOL" >/dev/null 2>&1 || true
  done
  $VIRSH pool-destroy "$POOL" >/dev/null 2>&1 || true
  $VIRSH pool-undefine "$POOL" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

mkdir -p "$DIR"
$VIRSH pool-define-as "$POOL" dir --target "$DIR" >/dev/null
$VIRSH pool-start "$POOL" >/dev/null
# qemu-io writes at most 2 GiB - 512 in one request: write in 512 MiB requests.
$VIRSH vol-create-as "$POOL" small.qcow2 4G --format qcow2 >/dev/null
qemu-io -f qcow2 -c "write -P 0x5a 0 16M" "$DIR/small.qcow2" >/dev/null
$VIRSH vol-create-as "$POOL" big.qcow2 4G --format qcow2 >/dev/null
qemu-io -f qcow2 -c "write -P 0x5a 0 512M" -c "write -P 0x5b 512M 512M" \
  -c "write -P 0x5c 1G 512M" -c "write -P 0x5d 1536M 512M" "$DIR/big.qcow2" >/dev/null
$VIRSH pool-refresh "$POOL" >/dev/null
sync

cat > "$OUT/clone.rhai" <<'EOF'
// ARGS: pool, source, target, mode
let src = HOST.pool(ARGS[0]).volume(ARGS[1]);
src.clone(ARGS[2], #{ mode: ARGS[3] });
EOF

del() { echo "$VIRSH vol-delete $1 --pool $POOL >/dev/null 2>&1 || true; rm -f $DIR/$1; $VIRSH pool-refresh $POOL >/dev/null"; }

echo "== linked clone: 16 MiB vs 2 GiB written"
hyperfine --runs "$((RUNS * 2))" --warmup 1 --export-markdown "$OUT/linked.md" \
  --prepare "$(del linked.qcow2)" \
  -n "linked clone, 16 MiB written" "$BIN run -c $URI $OUT/clone.rhai -- $POOL small.qcow2 linked.qcow2 linked" \
  -n "linked clone, 2 GiB written" "$BIN run -c $URI $OUT/clone.rhai -- $POOL big.qcow2 linked.qcow2 linked"

echo "== full clone of a qcow2 volume with 2 GiB written"
hyperfine --runs "$RUNS" --warmup 1 --export-markdown "$OUT/full.md" \
  --prepare "$(del full.qcow2); sync" \
  -n "virtscript clone mode full" "$BIN run -c $URI $OUT/clone.rhai -- $POOL big.qcow2 full.qcow2 full" \
  -n "qemu-img convert -O qcow2" "qemu-img convert -f qcow2 -O qcow2 $DIR/big.qcow2 $DIR/full.qcow2" \
  -n "virsh vol-clone" "$VIRSH vol-clone big.qcow2 full.qcow2 --pool $POOL >/dev/null"

cat "$OUT/linked.md" "$OUT/full.md"
