#!/usr/bin/env bash
# Virtual machine benchmarks (docs/benchmarks.md, "Virtual machines").
#
#  1. define + undefine 500 VMs on the embedded test driver: one virtscript
#     script vs the same calls in Rust straight through `virt` (examples/baseline_vms.rs).
#  2. on the real daemon (qemu:///system): one create-start-destroy-undefine
#     cycle of a small TCG VM: virtscript vs one libvirt-python process vs
#     virt-install --import + virsh destroy + virsh undefine.
#
# Needs hyperfine, python3-libvirt (for /usr/bin/python3), virtinst (tools/libvirtd-netns.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile dist -q --bin virtscript --example baseline_vms
VS=target/dist/virtscript
BASE=target/dist/examples/baseline_vms
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
RUNS=${RUNS:-10}

cat > "$TMP/define500.rhai" <<'R'
for i in 0..500 {
    let vm = HOST.define_vm(#{ name: `b${i}`, memory: 256, virt_type: "qemu", pxe: true, networks: ["default"] });
    vm.undefine();
}
R
hyperfine -N --warmup 2 --runs "$RUNS" --export-markdown "$TMP/test.md" \
  -n "virtscript (script)" "$VS run -c test:///default $TMP/define500.rhai" \
  -n "Rust + virt" "$BASE test:///default 500"
cat "$TMP/test.md"

URI=qemu:///system
if ! virsh -c "$URI" version >/dev/null 2>&1; then
  echo "no daemon at $URI: skipping the real-daemon benchmark" >&2
  exit 0
fi
DISK=/var/lib/libvirt/images/vs-bench.img
truncate -s 64M "$DISK"
NAME=vs-bench-$$
cat > "$TMP/cycle.rhai" <<R
let vm = HOST.create_vm(#{ name: "$NAME", memory: 128, virt_type: "qemu", import: true,
    disks: [#{ path: "$DISK", format: "raw" }], networks: [], guest_agent: false });
vm.destroy();
vm.undefine();
R
cat > "$TMP/cycle.py" <<P
import libvirt
xml = open("$TMP/domain.xml").read()
conn = libvirt.open("$URI")
dom = conn.defineXML(xml)
dom.create()
dom.destroy()
dom.undefine()
P
# libvirt-python gets exactly the XML virtscript defines.
sed 's/import: true,/import: true, dry_run: true,/; s/^vm\..*//; s/^let vm = /print(/; s/});$/}));/' "$TMP/cycle.rhai" > "$TMP/print.rhai"
$VS run -c "$URI" "$TMP/print.rhai" > "$TMP/domain.xml"
cat > "$TMP/virtinst.sh" <<S
set -e
virt-install --connect $URI --name $NAME --memory 128 --vcpus 1 --virt-type qemu --import \
  --disk path=$DISK,format=raw --network none --graphics none --osinfo detect=on,require=off \
  --noautoconsole --quiet
virsh -c $URI destroy $NAME >/dev/null
virsh -c $URI undefine $NAME >/dev/null
S
# One cycle of each tool per round, round after round (benches/compare.py):
# the daemon's speed drifts, and hyperfine's blocks would give it to one tool.
benches/compare.py --runs "${LIVE_RUNS:-10}" --warmup 1 --markdown "$TMP/live.md" \
  "libvirt-python=/usr/bin/python3 $TMP/cycle.py" \
  "virtscript=$VS run -c $URI $TMP/cycle.rhai" \
  "virt-install + virsh=bash $TMP/virtinst.sh" >/dev/null
cat "$TMP/live.md"
rm -f "$DISK"
