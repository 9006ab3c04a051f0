#!/usr/bin/env bash
# Issue 9: 20 independent VMs, each with its own volume, provisioned with
# parallel() and --jobs 4 against the same script run sequentially, on the real
# daemon (tools/libvirtd-netns.sh start). Results: target/bench/jobs.md
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
cargo build --profile dist --quiet --bin virtscript
bin=$PWD/target/dist/virtscript
out=target/bench; mkdir -p "$out"
pool=vs-bench-jobs
virsh -q -c qemu:///system pool-info "$pool" >/dev/null 2>&1 || {
  virsh -q -c qemu:///system pool-define-as "$pool" dir --target "/var/lib/libvirt/images/$pool" >/dev/null
  virsh -q -c qemu:///system pool-build "$pool" >/dev/null
  virsh -q -c qemu:///system pool-start "$pool" >/dev/null
}
cat > "$out/provision.rhai" <<'RHAI'
// ARGS: pool, "parallel" | "sequential"
let pool = HOST.pool(ARGS[0]);
let make = |i| {
    let vol = pool.create_volume(#{ name: `bench-${i}.qcow2`, capacity: "1G", format: "qcow2" });
    let vm = HOST.create_vm(#{ name: `bench-vm-${i}`, memory: 64, vcpus: 1, virt_type: "qemu",
                               import: true, disks: [#{ volume: vol }], graphics: "none", networks: [] });
    vm.name
};
if ARGS[1] == "parallel" {
    parallel(0..20, make)
} else {
    let names = [];
    for i in 0..20 { names.push(make.call(i)); }
    names
}
RHAI
cat > "$out/cleanup.rhai" <<'RHAI'
for vm in HOST.vms() {
    if vm.name.starts_with("bench-vm-") {
        if vm.state != "shut off" { vm.destroy(); }
        vm.undefine(#{ remove_storage: true });
    }
}
for vol in HOST.pool(ARGS[0]).volumes() { vol.delete(); }
RHAI
clean="$bin run --no-lock -c qemu:///system $out/cleanup.rhai -- $pool"
# Both ways per round, round after round (benches/compare.py), each from a
# clean pool; the machine-wide CPU time of each way shows how busy 2 cores are.
benches/compare.py --runs "$RUNS" --warmup 0 --markdown "$out/jobs.md" \
  --prepare "sequential=$clean" --prepare "parallel(), --jobs 4=$clean" \
  "sequential=$bin run --no-lock -c qemu:///system $out/provision.rhai -- $pool sequential" \
  "parallel(), --jobs 4=$bin run --no-lock --jobs 4 -c qemu:///system $out/provision.rhai -- $pool parallel"
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
for mode in sequential parallel; do
  $clean >/dev/null
  b0=$(busy); t0=$(date +%s.%N)
  $bin run --no-lock --jobs 4 -c qemu:///system "$out/provision.rhai" -- "$pool" "$mode" >/dev/null
  t1=$(date +%s.%N); b1=$(busy)
  echo "$mode: $(echo "$t1 - $t0" | bc) s wall, $(echo "($b1 - $b0) / $(getconf CLK_TCK)" | bc -l | cut -c1-5) s of CPU (all processes, $(nproc) cores)"
done
$clean
virsh -q -c qemu:///system pool-destroy "$pool" >/dev/null
virsh -q -c qemu:///system pool-undefine "$pool" >/dev/null
rm -rf "/var/lib/libvirt/images/$pool"
