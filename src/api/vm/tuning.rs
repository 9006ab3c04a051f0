//! Live tuning: vCPUs, memory and disk I/O limits, and how much of the host's
//! CPUs and memory the VMs are given.
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::sys;

use super::{affect_flags, live_model, Vm, AFFECT_CONFIG, AFFECT_LIVE};
use crate::api::args::{self, Fields};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::Host;
use crate::runtime::journal;

#[export_module(manifest)]
pub mod vm_tuning_api {
    use super::*;

    /// vCPUs and memory given to VMs against the host's CPUs and memory:
    /// `host_cpus`, `host_memory` (bytes), `running_vcpus`, `defined_vcpus`,
    /// `running_memory`, `defined_memory` (bytes), `cpu_ratio`, `memory_ratio`
    /// (running / host).
    ///
    /// ```rhai
    /// let o = HOST.overcommit();
    /// assert_eq([o.host_cpus, o.running_vcpus], [16, 2]);   // the test driver's VM "test"
    /// HOST.define_vm(#{ name: "big", virt_type: "qemu", pxe: true, vcpus: 4, memory: "1G" }).start();
    /// let o = HOST.overcommit();
    /// assert_eq([o.running_vcpus, o.defined_vcpus], [6, 6]);
    /// assert_eq(o.cpu_ratio, 6.0 / 16.0);
    /// assert_eq(o.running_memory, o.host_memory);   // memory_ratio 1.0: fully given out
    /// assert_eq(o.memory_ratio, 1.0);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn overcommit(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Map> {
        let info = host.conn().node_info().script(&ctx)?;
        let mut running = (0i64, 0i64);
        let mut defined = (0i64, 0i64);
        for dom in host.conn().list_all_domains(0).script(&ctx)? {
            let Ok(di) = dom.info() else { continue };
            let max_vcpus = dom
                .vcpus_flags(sys::VIR_DOMAIN_VCPU_MAXIMUM | sys::VIR_DOMAIN_AFFECT_CONFIG)
                .unwrap_or(di.nr_virt_cpu) as i64;
            defined.0 += max_vcpus.max(di.nr_virt_cpu as i64);
            defined.1 += di.max_mem as i64 * 1024;
            if dom.is_active().unwrap_or(false) {
                running.0 += di.nr_virt_cpu as i64;
                running.1 += di.memory as i64 * 1024;
            }
        }
        let host_cpus = info.cpus as i64;
        let host_mem = info.memory as i64 * 1024;
        let mut m = Map::new();
        m.insert("host_cpus".into(), host_cpus.into());
        m.insert("host_memory".into(), host_mem.into());
        m.insert("running_vcpus".into(), running.0.into());
        m.insert("running_memory".into(), running.1.into());
        m.insert("defined_vcpus".into(), defined.0.into());
        m.insert("defined_memory".into(), defined.1.into());
        m.insert(
            "cpu_ratio".into(),
            (running.0 as f64 / host_cpus.max(1) as f64).into(),
        );
        m.insert(
            "memory_ratio".into(),
            (running.1 as f64 / host_mem.max(1) as f64).into(),
        );
        Ok(m)
    }

    /// Set the number of active vCPUs (hot add within `max_vcpus` when running).
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "hot", virt_type: "qemu", pxe: true, vcpus: 1, max_vcpus: 4 });
    /// vm.set_vcpus(3);
    /// assert(vm.xml.contains("current='3'"));
    /// ```
    #[rhai_fn(name = "set_vcpus", pure, return_raw)]
    pub fn set_vcpus(ctx: NativeCallContext, vm: &mut Vm, n: i64) -> ScriptResult<()> {
        set_vcpus_with(ctx, vm, n, Map::new())
    }

    /// `set_vcpus(n, #{ live, config })`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "hot2", virt_type: "qemu", pxe: true, vcpus: 1, max_vcpus: 2 });
    /// vm.set_vcpus(2, #{ config: true });
    /// assert_eq(vm.info().cpus, 2);
    /// ```
    #[rhai_fn(name = "set_vcpus", pure, return_raw)]
    pub fn set_vcpus_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        n: i64,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        let flags = affect_flags(vm, Some(&f)).at(&ctx)?;
        f.finish().at(&ctx)?;
        let max = vm
            .raw
            .vcpus_flags(sys::VIR_DOMAIN_VCPU_MAXIMUM | AFFECT_CONFIG)
            .or_else(|_| vm.raw.max_vcpus().map(|m| m as u32))
            .script(&ctx)? as i64;
        if n < 1 || n > max {
            return Err(ScriptError::invalid(
                "vcpus",
                n,
                format!("must be between 1 and max_vcpus ({max})"),
            )
            .at(&ctx));
        }
        let before = vm
            .raw
            .vcpus_flags(flags & AFFECT_CONFIG.max(flags & AFFECT_LIVE))
            .ok();
        vm.raw.set_vcpus_flags(n as u32, flags).script(&ctx)?;
        let undo = vm.raw.clone();
        journal::record(
            "set_vcpus",
            format!("vm {} to {n}", vm.name()),
            before.map(|b| -> journal::Undo { Box::new(move || undo.set_vcpus_flags(b, flags)) }),
        );
        Ok(())
    }

    /// Set the memory the guest may use (balloon target, up to its maximum memory):
    /// `"1G"` or MiB.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.set_memory("1G");
    /// assert_eq(vm.info().used_memory, 1024 * 1024 * 1024);
    /// ```
    #[rhai_fn(name = "set_memory", pure, return_raw)]
    pub fn set_memory(ctx: NativeCallContext, vm: &mut Vm, size: Dynamic) -> ScriptResult<()> {
        set_memory_with(ctx, vm, size, Map::new())
    }

    /// `set_memory(size, #{ live, config })`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.set_memory(512, #{ live: true, config: false });
    /// assert_eq(vm.info().used_memory, 512 * 1024 * 1024);
    /// ```
    #[rhai_fn(name = "set_memory", pure, return_raw)]
    pub fn set_memory_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        size: Dynamic,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        let bytes = args::size("memory", &size, args::NumberUnit::MiB, false).at(&ctx)?;
        let flags = affect_flags(vm, Some(&f)).at(&ctx)?;
        f.finish().at(&ctx)?;
        let max_kib = vm.raw.max_memory().script(&ctx)?;
        let kib = bytes / 1024;
        if kib > max_kib {
            return Err(ScriptError::invalid(
                "memory",
                args::show(&size),
                format!(
                    "must not exceed the VM's maximum memory ({})",
                    crate::runtime::units::format_size(max_kib * 1024)
                ),
            )
            .at(&ctx));
        }
        let before = vm.raw.info().map(|i| i.memory).ok();
        // Some drivers (the test driver) take live and config one at a time.
        if flags == AFFECT_LIVE | AFFECT_CONFIG {
            vm.raw.set_memory_flags(kib, AFFECT_LIVE).script(&ctx)?;
            vm.raw.set_memory_flags(kib, AFFECT_CONFIG).script(&ctx)?;
        } else {
            vm.raw.set_memory_flags(kib, flags).script(&ctx)?;
        }
        let undo = vm.raw.clone();
        journal::record(
            "set_memory",
            format!(
                "vm {} to {}",
                vm.name(),
                crate::runtime::units::format_size(bytes)
            ),
            before.map(|b| -> journal::Undo {
                Box::new(move || undo.set_memory_flags(b, flags).map(|_| ()))
            }),
        );
        Ok(())
    }

    /// Throttle a disk's I/O (`virsh blkdeviotune`): keys `total_bytes_sec`,
    /// `read_bytes_sec`, `write_bytes_sec`, `total_iops_sec`, `read_iops_sec`,
    /// `write_iops_sec` (and their `_max` variants), plus `live`/`config`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.set_disk_throttle("vda", #{ total_bytes_sec: 10485760, total_bytes_sec_max: 20971520, live: true, config: false });
    /// assert(vm.xml.contains("<total_bytes_sec>10485760</total_bytes_sec>"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn set_disk_throttle(
        ctx: NativeCallContext,
        vm: &mut Vm,
        target: &str,
        limits: Map,
    ) -> ScriptResult<()> {
        const KEYS: &[&str] = &[
            "total_bytes_sec",
            "read_bytes_sec",
            "write_bytes_sec",
            "total_iops_sec",
            "read_iops_sec",
            "write_iops_sec",
            "total_bytes_sec_max",
            "read_bytes_sec_max",
            "write_bytes_sec_max",
            "total_iops_sec_max",
            "read_iops_sec_max",
            "write_iops_sec_max",
            "size_iops_sec",
        ];
        let f = Fields::new("", &limits);
        let mut params = Vec::new();
        for key in KEYS {
            if let Some(v) = f.int(key).at(&ctx)? {
                if v < 0 {
                    return Err(ScriptError::invalid(key, v, "must not be negative").at(&ctx));
                }
                params.push((*key, v as u64));
            }
        }
        let flags = affect_flags(vm, Some(&f)).at(&ctx)?;
        f.finish().at(&ctx)?;
        if params.is_empty() {
            return Err(ScriptError::invalid(
                "limits",
                "#{}",
                format!("give at least one of: {}", KEYS.join(", ")),
            )
            .at(&ctx));
        }
        let (d, _) = live_model(vm, &ctx)?;
        if !d.disks.iter().any(|x| x.target == target) {
            return Err(ScriptError::invalid(
                "target",
                target,
                format!("VM {} has no disk with this target", d.name),
            )
            .at(&ctx));
        }
        crate::virt_ext::domain::set_block_io_tune(&vm.raw, target, &params, flags).script(&ctx)?;
        journal::record(
            "set_disk_throttle",
            format!("vm {} disk {target}", d.name),
            None,
        );
        Ok(())
    }
}
