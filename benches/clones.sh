#!/usr/bin/env bash
# Clone benchmarks (docs/benchmarks.md, "Clones"), on the real daemon, same run:
#
#  1. ten linked clones of a VM with a 2 GiB written disk, one virtscript
#     script (`vm.clone(#{ storage: "linked" })` ten times) vs ten
#     `virt-clone --auto-clone` runs (full copies); time and disk use.
#  2. ten linked clones that are also started: `vm.clone_many(10, #{ storage:
#     "linked", start: true })` (parallel, --jobs 10) vs the same ten clones
#     made one after another by the same script (`--jobs 1`).
#
# Needs virtinst (virt-clone), qemu-utils; tools/libvirtd-netns.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile dist -q --bin virtscript
VS=$PWD/target/dist/virtscript
URI=qemu:///system
RUNS=${RUNS:-3}
if ! virsh -c "$URI" version >/dev/null 2>&1; then
  echo "no daemon at $URI" >&2
  exit 1
fi
KERNEL=$(tools/tiny-guest.sh)
POOL=vs-bench-clones
DIR=/var/lib/libvirt/images/$POOL
BASE=vsbc-base
NET=vs-bench-clones
TMP=$(mktemp -d)

remove_clones() {
  for vm in $(virsh -c "$URI" list --all --name | grep -E "^$BASE-clone" || true); do
    virsh -c "$URI" destroy "$vm" >/dev/null 2>&1 || true
    virsh -c "$URI" undefine "$vm" --nvram >/dev/null 2>&1 || true
  done
  find "$DIR" -name "$BASE-clone*" -delete 2>/dev/null || true
  virsh -c "$URI" pool-refresh "$POOL" >/dev/null 2>&1 || true
}
cleanup() {
  remove_clones
  virsh -c "$URI" undefine "$BASE" >/dev/null 2>&1 || true
  virsh -c "$URI" net-destroy "$NET" >/dev/null 2>&1 || true
  virsh -c "$URI" net-undefine "$NET" >/dev/null 2>&1 || true
  virsh -c "$URI" pool-destroy "$POOL" >/dev/null 2>&1 || true
  virsh -c "$URI" pool-undefine "$POOL" >/dev/null 2>&1 || true
  rm -rf "$DIR" "$TMP"
}
trap cleanup EXIT
cleanup 2>/dev/null || true
TMP=$(mktemp -d)

mkdir -p "$DIR"
cat > "$TMP/net.xml" <<X
<network><name>$NET</name><forward mode='nat'/><bridge name='vsbclone0'/>
<ip address='10.249.0.1' netmask='255.255.255.0'><dhcp><range start='10.249.0.10' end='10.249.0.200'/></dhcp></ip></network>
X
virsh -c "$URI" net-define "$TMP/net.xml" >/dev/null
virsh -c "$URI" net-start "$NET" >/dev/null
virsh -c "$URI" pool-define-as "$POOL" dir --target "$DIR" >/dev/null
virsh -c "$URI" pool-start "$POOL" >/dev/null
cat > "$TMP/base.rhai" <<R
HOST.define_vm(#{ name: "$BASE", memory: 128, vcpus: 1, virt_type: "qemu",
    kernel: "$KERNEL/vmlinuz", initrd: "$KERNEL/initrd.img", cmdline: "console=ttyS0",
    disks: [#{ pool: "$POOL", size: "2G", format: "qcow2" }],
    networks: ["$NET"], guest_agent: false });
R
"$VS" run -c "$URI" "$TMP/base.rhai" 2>/dev/null || {
  # Older VM specs have no guest_agent key.
  sed -i 's/, guest_agent: false//' "$TMP/base.rhai"; "$VS" run -c "$URI" "$TMP/base.rhai"; }
qemu-io -f qcow2 -c "write -P 0x5a 0 1G" -c "write -P 0x5a 1G 1G" "$DIR/$BASE.qcow2" >/dev/null
echo "base disk: $(du -h "$DIR/$BASE.qcow2" | cut -f1) allocated"

clones_kib() {
  local total=0 f
  for f in "$DIR/$BASE"-clone*; do
    [ -e "$f" ] && total=$((total + $(du -k "$f" | cut -f1)))
  done
  echo "$total"
}
now() { date +%s.%N; }

# --- 1. ten linked clones vs ten virt-clone --auto-clone
cat > "$TMP/linked10.rhai" <<R
let base = HOST.vm("$BASE");
for i in 0..10 { base.clone(#{ storage: "linked" }); }
R
echo "| Run | virtscript, 10 linked clones [s] | 10 × virt-clone --auto-clone [s] | disk use virtscript | disk use virt-clone |"
echo "|---:|---:|---:|---:|---:|"
for run in $(seq "$RUNS"); do
  remove_clones
  t0=$(now); "$VS" run -c "$URI" "$TMP/linked10.rhai" 2>/dev/null; t1=$(now)
  vs_kib=$(clones_kib)
  remove_clones
  t2=$(now)
  for i in $(seq 10); do virt-clone --connect "$URI" --original "$BASE" --auto-clone >/dev/null 2>&1; done
  t3=$(now)
  vc_kib=$(clones_kib)
  remove_clones
  printf '| %d | %.2f | %.2f | %d KiB | %d KiB |\n' "$run" "$(echo "$t1 - $t0" | bc)" "$(echo "$t3 - $t2" | bc)" "$vs_kib" "$vc_kib"
done

# --- 2. clone_many in parallel vs one after another
cat > "$TMP/many.rhai" <<R
let vms = HOST.vm("$BASE").clone_many(10, #{ storage: "linked", start: true });
assert_eq(vms.len(), 10);
R
echo
echo "| Run | clone_many(10, linked, start) --jobs 10 [s] | same, --jobs 1 (one after another) [s] |"
echo "|---:|---:|---:|"
for run in $(seq "$RUNS"); do
  remove_clones
  t0=$(now); "$VS" run --jobs 10 -c "$URI" "$TMP/many.rhai" 2>/dev/null; t1=$(now)
  remove_clones
  t2=$(now); "$VS" run --jobs 1 -c "$URI" "$TMP/many.rhai" 2>/dev/null; t3=$(now)
  remove_clones
  printf '| %d | %.2f | %.2f |\n' "$run" "$(echo "$t1 - $t0" | bc)" "$(echo "$t3 - $t2" | bc)"
done
