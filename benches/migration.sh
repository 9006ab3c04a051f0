#!/usr/bin/env bash
# Migration benchmarks (docs/benchmarks.md, "Migration"), between the two test
# hosts (tools/libvirtd-netns.sh start, tools/libvirtd-host2.sh start):
#
#  1. one running tiny guest (128 MiB, TCG) live-migrated from the first host
#     to the second: vm.migrate vs `virsh migrate --live` vs a floor client
#     (benches/migrate_floor.py: libvirt-python, one migrate3 call, no checks).
#  2. host::evacuate of 4 guests (2 at a time) vs the same `virsh migrate`
#     loop run one by one.
#
# Every contender uses the same flags (live, persistent on the destination,
# source undefined) and the same migration URI (tcp://172.31.250.2, inside the
# daemons' namespaces). Before every timed run the guests are moved back to
# the first host, untimed. Results: target/bench/migration*.md
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
# VS=path/to/virtscript skips the release build (to try the script quickly).
if [ -z "${VS:-}" ]; then
  cargo build --profile dist --quiet --bin virtscript
  VS=$PWD/target/dist/virtscript
fi
A=qemu:///system
B=$(tools/libvirtd-host2.sh uri)
MIG=tcp://172.31.250.2
BACK=tcp://172.31.250.1
out=target/bench; mkdir -p "$out"
G=$(tools/tiny-guest.sh)
NAMES=(vs-bmig-1 vs-bmig-2 vs-bmig-3 vs-bmig-4)

for n in "${NAMES[@]}"; do
  for u in "$A" "$B"; do
    virsh -q -c "$u" destroy "$n" >/dev/null 2>&1 || true
    virsh -q -c "$u" undefine "$n" >/dev/null 2>&1 || true
  done
  cat > "$out/$n.xml" <<X
<domain type='qemu'><name>$n</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>$G/vmlinuz</kernel><initrd>$G/initrd.img</initrd><cmdline>console=ttyS0</cmdline></os>
<cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
<devices><serial type='pty'/><console type='pty'/><memballoon model='none'/></devices></domain>
X
  virsh -q -c "$A" define "$out/$n.xml" >/dev/null
  virsh -q -c "$A" start "$n" >/dev/null
done
cleanup() {
  for n in "${NAMES[@]}"; do
    for u in "$A" "$B"; do
      virsh -q -c "$u" destroy "$n" >/dev/null 2>&1 || true
      virsh -q -c "$u" undefine "$n" >/dev/null 2>&1 || true
    done
  done
}
trap cleanup EXIT

# Untimed: whichever guests are on the second host go back to the first.
cat > "$out/home.sh" <<S
#!/usr/bin/env bash
for n in "\$@"; do
  if virsh -q -c '$B' domstate "\$n" >/dev/null 2>&1; then
    virsh -q -c '$B' migrate --live --unsafe --persistent --undefinesource "\$n" '$A' --migrateuri $BACK
  fi
done
S
chmod +x "$out/home.sh"

cat > "$out/migrate-one.rhai" <<R
HOST.vm("${NAMES[0]}").migrate(connect("$B"), #{ migrate_uri: "$MIG" });
R
cat > "$out/virsh-one.sh" <<S
exec virsh -q -c '$A' migrate --live --persistent --undefinesource ${NAMES[0]} '$B' --migrateuri $MIG
S
/usr/bin/python3 benches/compare.py --runs "$RUNS" --warmup 1 --markdown "$out/migration.md" \
  --prepare "virtscript=$out/home.sh ${NAMES[0]}" \
  --prepare "virsh=$out/home.sh ${NAMES[0]}" \
  --prepare "floor=$out/home.sh ${NAMES[0]}" \
  "virtscript=$VS run -q -c $A $out/migrate-one.rhai" \
  "virsh=bash $out/virsh-one.sh" \
  "floor=/usr/bin/python3 benches/migrate_floor.py $A $B $MIG ${NAMES[0]}"
cat "$out/migration.md"

cat > "$out/evacuate.rhai" <<R
import "host" as host;
let r = host::evacuate(HOST, connect("$B"), #{ jobs: 2, migrate_uri: "$MIG",
                                             filter: |n| n.starts_with("vs-bmig-") });
if r.moved.len() != 4 { throw \`moved only \${r.moved}: \${r.failed}\`; }
R
cat > "$out/virsh-loop.sh" <<S
for n in ${NAMES[*]}; do
  virsh -q -c '$A' migrate --live --persistent --undefinesource "\$n" '$B' --migrateuri $MIG
done
S
/usr/bin/python3 benches/compare.py --runs "$RUNS" --warmup 1 --markdown "$out/migration-evacuate.md" \
  --prepare "evacuate=$out/home.sh ${NAMES[*]}" \
  --prepare "virsh loop=$out/home.sh ${NAMES[*]}" \
  "evacuate=$VS run -q -c $A $out/evacuate.rhai" \
  "virsh loop=bash $out/virsh-loop.sh"
cat "$out/migration-evacuate.md"
