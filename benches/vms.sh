#!/usr/bin/env bash
# Virtual machine benchmarks (docs/benchmarks.md, "Virtual machines").
#
#  1. define + undefine 500 VMs on the embedded test driver: one virtscript
#     script vs the same calls in Rust straight through `virt` (examples/baseline_vms.rs).
#  2. on the real daemon (qemu:///system): one create-start-destroy-undefine
#     cycle of a small TCG VM: virtscript vs one libvirt-python process vs
#     virt-install --import + virsh destroy + virsh undefine.
#  3. on the real daemon: planning an ISO install of Debian 11 (both phases'
#     XML, nothing made): virtscript's dry run vs virt-install --print-xml,
#     with a floor (python3: open, domain capabilities, nothing else).
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

# 3. Planning an ISO install (osinfo defaults, domain capabilities, both phases).
ISO_DIR=$TMP/iso
mkdir -p "$ISO_DIR"
echo netinst > "$ISO_DIR/README"
genisoimage -quiet -V "Debian 11.7.0 amd64 n" -o "$TMP/debian.iso" "$ISO_DIR/README"
cat > "$TMP/plan.rhai" <<R
let x = HOST.create_vm(#{ name: "vs-plan", memory: "1G", os: "debian11", cdrom: "$TMP/debian.iso",
    allow_path: true, networks: [], virt_type: "qemu", dry_run: true });
assert(type_of(x) == "map");
R
cat > "$TMP/floor.py" <<P
import libvirt
conn = libvirt.open("$URI")
conn.getDomainCapabilities(None, None, None, "qemu", 0)
P
benches/compare.py --runs "${PLAN_RUNS:-20}" --warmup 2 --markdown "$TMP/plan.md" \
  "floor: python3 open + domcapabilities=/usr/bin/python3 $TMP/floor.py" \
  "virtscript create_vm dry run=$VS run -q -c $URI $TMP/plan.rhai" \
  "virt-install --print-xml=virt-install --connect $URI --name vs-plan --memory 1024 --cdrom $TMP/debian.iso --disk none --network none --os-variant debian11 --virt-type qemu --print-xml" >/dev/null
cat "$TMP/plan.md"
