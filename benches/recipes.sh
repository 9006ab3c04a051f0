#!/usr/bin/env bash
# Recipe benchmarks (docs/benchmarks.md, "Recipes"), on the real daemon:
#
#  1. a lab of 5 VMs from a base image: `lab::up` (one virtscript run) vs the
#     tutorial's commands one after another: virsh net-define + net-start +
#     net-autostart, then per VM virsh vol-clone + virt-install --import.
#     Each run starts from nothing: both labs are torn down before every run
#     (not timed), so neither side shares the CPU with the other's guests.
#     Third, benches/lab_floor.py: the least any client can do for the same
#     lab (fixed XML, libvirt-python, everything that can overlap in threads):
#     the daemon's and QEMU's share, the floor under every tool here.
#  2. a re-run of `lab::up` that finds everything in place vs one `virsh list`.
#
# Needs root, the daemon from tools/libvirtd-netns.sh, hyperfine, virtinst.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --profile dist -q --bin virtscript
VS=$PWD/target/dist/virtscript
URI=qemu:///system
TMP=$(mktemp -d)
RUNS=${RUNS:-5}
POOL=vs-bench-recipes
DIR=/var/lib/libvirt/images/$POOL
COUNT=5
PY=/usr/bin/python3   # Debian's, with python3-libvirt
FLOOR="$PY benches/lab_floor.py $URI $POOL base.qcow2 vsbf $COUNT"

virsh -c $URI pool-info $POOL >/dev/null 2>&1 || {
  mkdir -p $DIR
  virsh -c $URI pool-define-as $POOL dir --target $DIR >/dev/null
  virsh -c $URI pool-start $POOL >/dev/null
}
virsh -c $URI vol-info base.qcow2 --pool $POOL >/dev/null 2>&1 ||
  virsh -c $URI vol-create-as $POOL base.qcow2 64M --format qcow2 >/dev/null

cat > "$TMP/up.rhai" <<R
import "lab" as lab;
let r = lab::up(HOST, #{ name: "vsbl", subnet: "10.240.1.0/24", base: "base.qcow2", pool: "$POOL",
    count: $COUNT, memory: "96M", vm: #{ virt_type: "qemu", graphics: "none" } });
print(\`\${r.action}: \${r.vms.len()} VMs\`);
R
cat > "$TMP/down.rhai" <<R
import "lab" as lab;
lab::down(HOST, "vsbl");
R
cat > "$TMP/net.xml" <<X
<network>
  <name>vsbt</name>
  <forward mode='nat'/>
  <ip address='10.240.2.1' netmask='255.255.255.0'>
    <dhcp><range start='10.240.2.2' end='10.240.2.254'/></dhcp>
  </ip>
</network>
X
cat > "$TMP/tutorial.sh" <<S
set -e
virsh -c $URI net-define $TMP/net.xml >/dev/null
virsh -c $URI net-start vsbt >/dev/null
virsh -c $URI net-autostart vsbt >/dev/null
for i in \$(seq 1 $COUNT); do
  virsh -c $URI vol-clone --pool $POOL base.qcow2 vsbt-\$i.qcow2 >/dev/null
  virt-install --connect $URI --name vsbt-\$i --memory 96 --vcpus 1 --virt-type qemu --import \
    --disk vol=$POOL/vsbt-\$i.qcow2 --network network=vsbt --graphics none \
    --osinfo detect=on,require=off --noautoconsole --quiet
done
S
cat > "$TMP/tutorial-down.sh" <<S
for i in \$(seq 1 $COUNT); do
  virsh -c $URI destroy vsbt-\$i >/dev/null 2>&1
  virsh -c $URI undefine vsbt-\$i >/dev/null 2>&1
  virsh -c $URI vol-delete vsbt-\$i.qcow2 --pool $POOL >/dev/null 2>&1
done
virsh -c $URI net-destroy vsbt >/dev/null 2>&1
virsh -c $URI net-undefine vsbt >/dev/null 2>&1
true
S
cleanup() {
  $VS run -c $URI "$TMP/down.rhai" >/dev/null 2>&1 || true
  bash "$TMP/tutorial-down.sh"
  $FLOOR down >/dev/null 2>&1 || true
  virsh -c $URI vol-delete base.qcow2 --pool $POOL >/dev/null 2>&1 || true
  virsh -c $URI pool-destroy $POOL >/dev/null 2>&1 || true
  virsh -c $URI pool-undefine $POOL >/dev/null 2>&1 || true
  rm -rf "$DIR" "$TMP"
}
trap cleanup EXIT

# One lab of each kind per round, round after round (benches/compare.py): the
# daemon's speed drifts, and hyperfine's blocks would give it to one side.
cat > "$TMP/down-all.sh" <<S
$VS run -c $URI $TMP/down.rhai >/dev/null
bash $TMP/tutorial-down.sh
$FLOOR down
S
benches/compare.py --runs "$RUNS" --warmup 1 --markdown "$TMP/lab.md" \
  --prepare "tutorial commands=bash $TMP/down-all.sh" \
  --prepare "virtscript lab::up (5 VMs)=bash $TMP/down-all.sh" \
  --prepare "floor: parallel libvirt-python, fixed XML=bash $TMP/down-all.sh" \
  "tutorial commands=bash $TMP/tutorial.sh" \
  "virtscript lab::up (5 VMs)=$VS run -c $URI $TMP/up.rhai" \
  "floor: parallel libvirt-python, fixed XML=$FLOOR" >/dev/null
cat "$TMP/lab.md"

# Everything in place: a re-run only reads.
$VS run -c $URI "$TMP/up.rhai"
hyperfine -N --warmup 3 --runs "${RERUNS:-30}" --export-markdown "$TMP/rerun.md" \
  -n "virtscript lab::up, all in place" "$VS run -c $URI $TMP/up.rhai" \
  -n "virsh list" "virsh -c $URI list"
cat "$TMP/rerun.md"
