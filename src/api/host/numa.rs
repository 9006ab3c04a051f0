//! The host's NUMA cells (`virsh capabilities` topology plus `virsh
//! freecell`) and the kernel's automatic NUMA balancing.
use crate::runtime::ErrorKind;
use rhai::plugin::*;
use rhai::{Array, Map, NativeCallContext};

use crate::api::error::{LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::Host;
use crate::xml::tree::Element;

/// `"0,1,2,3,5"` -> `"0-3,5"`: libvirt's cpuset notation, as `nodeset` takes it.
pub fn cpuset(mut ids: Vec<u32>) -> String {
    ids.sort_unstable();
    ids.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        let mut end = start;
        while i + 1 < ids.len() && ids[i + 1] == end + 1 {
            i += 1;
            end = ids[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

fn kib_bytes(el: Option<&Element>) -> i64 {
    el.and_then(|m| m.text().trim().parse::<i64>().ok())
        .map(|kib| kib.saturating_mul(1024))
        .unwrap_or(0)
}

/// One map per `<cell>` of the capabilities' host topology.
fn cells_of(caps: &Element) -> Vec<Map> {
    let Some(cells) = caps.path(&["host", "topology", "cells"]) else {
        return Vec::new();
    };
    cells
        .children_named("cell")
        .map(|cell| {
            let mut m = Map::new();
            let id = cell
                .attr("id")
                .and_then(|i| i.parse::<i64>().ok())
                .unwrap_or(0);
            m.insert("id".into(), id.into());
            let cpus: Vec<u32> = cell
                .child("cpus")
                .map(|c| {
                    c.children_named("cpu")
                        .filter_map(|cpu| cpu.attr("id")?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            m.insert("cpus".into(), cpuset(cpus).into());
            m.insert("memory".into(), kib_bytes(cell.child("memory")).into());
            let distances: Array = cell
                .child("distances")
                .map(|d| {
                    d.children_named("sibling")
                        .filter_map(|s| s.attr("value")?.parse::<i64>().ok())
                        .map(Dynamic::from)
                        .collect()
                })
                .unwrap_or_default();
            m.insert("distances".into(), distances.into());
            m
        })
        .collect()
}

/// The host's NUMA cell ids (empty when its capabilities show no topology).
pub fn host_cell_ids(conn: &virt::connect::Connect) -> Vec<u32> {
    conn.capabilities()
        .ok()
        .and_then(|x| Element::parse(&x).ok())
        .map(|caps| {
            cells_of(&caps)
                .iter()
                .filter_map(|c| c.get("id")?.as_int().ok())
                .filter_map(|id| u32::try_from(id).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `kernel.numa_balancing`, the kernel's automatic NUMA balancing.
fn balancing(host: &Host) -> (Dynamic, Option<String>) {
    if !crate::api::host::is_local_uri(host.uri()) {
        return (
            Dynamic::UNIT,
            Some(format!(
                "kernel.numa_balancing is read on the local machine only, and {} is not it",
                host.uri()
            )),
        );
    }
    match std::fs::read_to_string("/proc/sys/kernel/numa_balancing") {
        Ok(v) => (Dynamic::from(v.trim() != "0"), None),
        Err(_) => (
            Dynamic::UNIT,
            Some(
                "this kernel has no automatic NUMA balancing (/proc/sys/kernel/numa_balancing)"
                    .into(),
            ),
        ),
    }
}

#[export_module(manifest)]
pub mod host_numa_api {
    use super::*;

    /// The host's NUMA cells (`virsh capabilities`, `virsh freecell --all`):
    /// `#{ cells: [#{ id, cpus, memory, free_memory, distances }], balancing }`.
    /// `cpus` is a cpuset like `"0-7"`, `memory` and `free_memory` are bytes,
    /// `distances[i]` is the distance to cell `i` (as `numactl --hardware`).
    /// `balancing` is the kernel's automatic NUMA balancing
    /// (`kernel.numa_balancing`) when the host is this machine, else `()`
    /// with a `balancing_note` saying why.
    ///
    /// ```rhai
    /// let numa = HOST.numa();
    /// // The embedded test driver models two cells of 8 CPUs each.
    /// assert_eq(numa.cells.len(), 2);
    /// assert_eq(numa.cells[0].cpus, "0-7");
    /// assert(numa.cells[1].memory > numa.cells[0].memory);
    /// assert(numa.cells[0].free_memory <= numa.cells[0].memory);
    /// assert_eq(numa.balancing, ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn numa(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Map> {
        let caps = host.conn().capabilities().script(&ctx)?;
        let caps = Element::parse(&caps)
            .map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(&ctx))?;
        let mut cells = cells_of(&caps);
        let free = host
            .conn()
            .cells_free_memory(0, cells.len() as i32)
            .unwrap_or_default();
        for (cell, bytes) in cells.iter_mut().zip(free) {
            cell.insert(
                "free_memory".into(),
                i64::try_from(bytes).unwrap_or(i64::MAX).into(),
            );
        }
        let mut m = Map::new();
        m.insert(
            "cells".into(),
            cells
                .into_iter()
                .map(Dynamic::from)
                .collect::<Array>()
                .into(),
        );
        let (state, note) = balancing(host);
        m.insert("balancing".into(), state);
        if let Some(note) = note {
            m.insert("balancing_note".into(), note.into());
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets_compress_runs() {
        assert_eq!(cpuset(vec![0, 1, 2, 3, 5]), "0-3,5");
        assert_eq!(cpuset(vec![7, 6, 8, 0]), "0,6-8");
        assert_eq!(cpuset(vec![4]), "4");
        assert_eq!(cpuset(vec![]), "");
    }

    #[test]
    fn only_a_local_daemon_shares_this_kernel() {
        use crate::api::host::is_local_uri as local;
        assert!(local("qemu:///system"));
        assert!(local("qemu+unix:///system?socket=/run/x"));
        assert!(!local("qemu+ssh://h/system"));
        assert!(!local("qemu+tcp://10.0.0.2/system"));
        assert!(!local("test:///default"));
    }
}
