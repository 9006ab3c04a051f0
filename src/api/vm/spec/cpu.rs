//! `cpu` (mode or model, topology, guest NUMA cells) and `numa` (the host
//! cells the guest's memory comes from), with libvirt's cpuset syntax.
use rhai::Map;
use virt::connect::Connect;

use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::api::vm::keys::cpu_named;
use crate::xml::domain::{Cpu, Domain, NumaCell, Numatune, Topology};

/// `cpu: #{ mode | model, sockets, cores, threads, numa: [#{ cpus, memory }] }`
/// (the name form is `keys::cpu`). The topology must give exactly the
/// domain's `max_vcpus`; guest NUMA cells must hold every vCPU once and add
/// up to its memory.
pub fn plan_cpu_map(field: &str, map: &Map, d: &Domain) -> Result<Cpu, ScriptError> {
    let (max_vcpus, memory) = (d.vcpus.max, d.memory_kib * 1024);
    let c = Fields::new(field, map);
    let mode = c.string("mode")?;
    let model = c.string("model")?;
    let sockets = c.positive("sockets", 4096)?;
    let cores = c.positive("cores", 4096)?;
    let threads = c.positive("threads", 4096)?;
    let cells = c.array("numa")?;
    c.finish()?;
    let mut cpu = match (mode, model) {
        (Some(_), Some(_)) => {
            return Err(ScriptError::invalid(
                field,
                "mode + model",
                "give a mode or a model (a model means mode custom)",
            ))
        }
        (Some(mode), None) => {
            let cpu = cpu_named(&mode, &c.name("mode"))?;
            if cpu.model.is_some() {
                return Err(ScriptError::invalid(
                    &c.name("mode"),
                    &mode,
                    "must be host-passthrough, host-model or maximum (a model goes in cpu.model)",
                ));
            }
            cpu
        }
        (None, Some(model)) => cpu_named(&model, &c.name("model"))?,
        (None, None) => Cpu::default(),
    };
    if sockets.is_some() || cores.is_some() || threads.is_some() {
        let t = Topology {
            sockets: sockets.unwrap_or(1),
            cores: cores.unwrap_or(1),
            threads: threads.unwrap_or(1),
        };
        let total = u64::from(t.sockets) * u64::from(t.cores) * u64::from(t.threads);
        if total != u64::from(max_vcpus) {
            return Err(ScriptError::invalid(
                field,
                format!("{}x{}x{}", t.sockets, t.cores, t.threads),
                format!(
                    "sockets * cores * threads is {total}, but the VM has {max_vcpus} vCPUs (max_vcpus, else vcpus)"
                ),
            ));
        }
        cpu.topology = Some(t);
    }
    if let Some(cells) = cells {
        let mut seen = vec![false; max_vcpus as usize];
        let mut total: u64 = 0;
        for (i, cell) in cells.iter().enumerate() {
            let cell_field = format!("{}[{i}]", c.name("numa"));
            let map = cell.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
                ScriptError::invalid(&cell_field, show(cell), "must be a map #{ cpus, memory }")
            })?;
            let cf = Fields::new(cell_field, &map);
            let cpus = cf.string("cpus")?;
            let bytes = cf.size("memory", true)?;
            cf.finish()?;
            let cpus = cpus.ok_or_else(|| {
                ScriptError::invalid(
                    &cf.name("cpus"),
                    "()",
                    "required: the cell's vCPUs, like \"0-1\"",
                )
            })?;
            for id in parse_cpuset(&cf.name("cpus"), &cpus)? {
                let slot = seen.get_mut(id as usize).ok_or_else(|| {
                    ScriptError::invalid(
                        &cf.name("cpus"),
                        &cpus,
                        format!("vCPU {id} does not exist (the VM has {max_vcpus})"),
                    )
                })?;
                if *slot {
                    return Err(ScriptError::invalid(
                        &cf.name("cpus"),
                        &cpus,
                        format!("vCPU {id} is in another cell too"),
                    ));
                }
                *slot = true;
            }
            let bytes = bytes.ok_or_else(|| {
                ScriptError::invalid(
                    &cf.name("memory"),
                    "()",
                    "required: the cell's memory, like \"1G\"",
                )
            })?;
            total = total.saturating_add(bytes);
            cpu.numa.push(NumaCell {
                cpus,
                memory_kib: bytes / 1024,
            });
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(ScriptError::invalid(
                &c.name("numa"),
                format!(
                    "{} {}",
                    cells.len(),
                    if cells.len() == 1 { "cell" } else { "cells" }
                ),
                format!("vCPU {missing} is in no cell: every vCPU needs one"),
            ));
        }
        if !cpu.numa.is_empty() && total != memory {
            return Err(ScriptError::invalid(
                &c.name("numa"),
                crate::runtime::units::format_size(total),
                format!(
                    "the cells' memory must add up to the VM's memory ({})",
                    crate::runtime::units::format_size(memory)
                ),
            ));
        }
    }
    Ok(cpu)
}

/// `numa: #{ mode, nodeset }`: the host NUMA cells the guest's memory comes
/// from (`<numatune>`, `virsh numatune`); the cells must exist on the host.
pub(super) fn plan_numatune(conn: &Connect, map: &Map) -> Result<Numatune, ScriptError> {
    let n = Fields::new("numa", map);
    let mode = n.one_of(
        "mode",
        &["strict", "preferred", "interleave", "restrictive"],
    )?;
    let nodeset = n.string("nodeset")?;
    n.finish()?;
    let mode = mode.unwrap_or_else(|| "strict".into());
    let nodeset = nodeset.ok_or_else(|| {
        ScriptError::invalid(
            "numa.nodeset",
            "()",
            "required: host NUMA cells, like \"0-1\"",
        )
    })?;
    let cells = crate::api::host::numa::host_cell_ids(conn);
    for id in parse_cpuset("numa.nodeset", &nodeset)? {
        if !cells.is_empty() && !cells.contains(&id) {
            return Err(ScriptError::invalid(
                "numa.nodeset",
                &nodeset,
                format!(
                    "the host has no NUMA cell {id} (it has {})",
                    cells
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(Numatune { mode, nodeset })
}

/// libvirt's cpuset syntax (`0-3,5`; `^2` excludes) as a sorted list of ids.
pub fn parse_cpuset(field: &str, text: &str) -> Result<Vec<u32>, ScriptError> {
    let bad = |why: &str| ScriptError::invalid(field, text, why.to_owned());
    let mut ids = std::collections::BTreeSet::new();
    let mut excluded = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (exclude, part) = match part.strip_prefix('^') {
            Some(p) => (true, p),
            None => (false, part),
        };
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n < 4096)
                .ok_or_else(|| bad("must be numbers and ranges like \"0-3,5\""))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad("a range must go up, like \"0-3\""));
        }
        if exclude {
            excluded.extend(lo..=hi);
        } else {
            ids.extend(lo..=hi);
        }
    }
    for e in excluded {
        ids.remove(&e);
    }
    if ids.is_empty() {
        return Err(bad("names no cell or CPU"));
    }
    Ok(ids.into_iter().collect())
}
