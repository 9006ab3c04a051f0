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
        let t = fill_topology(sockets, cores, threads, max_vcpus);
        let total = u64::from(t.sockets) * u64::from(t.cores) * u64::from(t.threads);
        if total != u64::from(max_vcpus) {
            return Err(ScriptError::invalid(
                field,
                format!("{}x{}x{}", t.sockets, t.cores, t.threads),
                format!(
                    "sockets * cores * threads is {total}, but the VM has {max_vcpus} vCPUs \
                     (max_vcpus, else vcpus): libvirt needs them equal"
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

/// The topology a partial one stands for on `vcpus` vCPUs, as virt-install
/// fills it in (`set_defaults_from_vcpus`): a missing count takes what the
/// given ones leave, cores first (guests count cores more happily than
/// sockets), then sockets, then threads; none is below 1.
pub fn fill_topology(
    sockets: Option<u32>,
    cores: Option<u32>,
    threads: Option<u32>,
    vcpus: u32,
) -> Topology {
    let product = |s: Option<u32>, c: Option<u32>, t: Option<u32>| {
        [s, c, t].iter().map(|n| u64::from(n.unwrap_or(1))).product::<u64>()
    };
    // At most `vcpus` (the product of counts up to 4096 each may not fit a u32).
    let rest = |given: u64| (u64::from(vcpus) / given.max(1)).max(1) as u32;
    let cores = cores.unwrap_or_else(|| rest(product(sockets, None, threads)));
    let sockets = sockets.unwrap_or_else(|| rest(product(None, Some(cores), threads)));
    let threads = threads.unwrap_or_else(|| rest(product(Some(sockets), Some(cores), None)));
    Topology {
        sockets,
        cores,
        threads,
    }
}

/// With neither `vcpus` nor `max_vcpus` in the spec, a `cpu` map's topology
/// says how many vCPUs there are (virt-install's `vcpus_from_topology`:
/// the counts given, multiplied). The map's values are checked by
/// `plan_cpu_map`; here only well-formed counts count.
pub fn vcpus_from_topology(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    if f.has("vcpus") || f.has("max_vcpus") {
        return Ok(());
    }
    let Some(map) = f.raw("cpu").and_then(|c| c.read_lock::<Map>().map(|m| m.clone())) else {
        return Ok(());
    };
    let count = |k: &str| {
        map.get(k)
            .and_then(|v| v.as_int().ok())
            .filter(|n| (1..=4096).contains(n))
            .map(|n| n as u64)
    };
    let counts = [count("sockets"), count("cores"), count("threads")];
    if counts.iter().all(Option::is_none) {
        return Ok(());
    }
    let total: u64 = counts.iter().map(|c| c.unwrap_or(1)).product();
    if total > 4096 {
        let [s, c, t] = counts.map(|n| n.unwrap_or(1));
        return Err(ScriptError::invalid(
            &f.name("cpu"),
            format!("{s}x{c}x{t}"),
            format!("sockets * cores * threads is {total}: a VM has at most 4096 vCPUs"),
        ));
    }
    d.vcpus.max = total as u32;
    d.vcpus.current = None;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sockets: u32, cores: u32, threads: u32) -> Topology {
        Topology {
            sockets,
            cores,
            threads,
        }
    }

    /// virt-install's order: cores take what the given counts leave, then
    /// sockets, then threads; a count that does not divide stays visible.
    #[test]
    fn a_partial_topology_is_filled_in_like_virt_install() {
        assert_eq!(fill_topology(None, None, None, 8), t(1, 8, 1));
        assert_eq!(fill_topology(Some(2), None, None, 8), t(2, 4, 1));
        assert_eq!(fill_topology(None, None, Some(2), 8), t(1, 4, 2));
        assert_eq!(fill_topology(None, Some(2), None, 8), t(4, 2, 1));
        assert_eq!(fill_topology(Some(2), Some(2), None, 8), t(2, 2, 2));
        assert_eq!(fill_topology(Some(3), None, None, 4), t(3, 1, 1));
        assert_eq!(fill_topology(Some(8), None, None, 2), t(8, 1, 1));
        assert_eq!(
            fill_topology(Some(4096), Some(4096), None, 4096),
            t(4096, 4096, 1)
        );
    }
}
