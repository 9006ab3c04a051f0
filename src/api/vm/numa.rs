//! A VM's NUMA placement (`<numatune>`, guest NUMA cells): read and changed.
//! The host's cells are `HOST.numa()` (`host/numa.rs`).
use crate::runtime::ErrorKind;
use rhai::plugin::*;
use rhai::{Array, Map, NativeCallContext};

use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::Vm;
use crate::xml::tree::Element;

#[export_module(manifest)]
pub mod numa_api {
    use super::*;

    /// The VM's NUMA placement: `#{ mode, nodeset, cells }` from its
    /// `<numatune><memory>` (`mode` and `nodeset` are `()` when unset) and its
    /// guest NUMA cells (`<cpu><numa>`: `#{ id, cpus, memory }`, memory in bytes).
    ///
    /// ```rhai
    /// let numa = HOST.vm("test").numa();
    /// assert_eq(numa.mode, ());
    /// assert_eq(numa.cells, []);
    /// ```
    #[rhai_fn(name = "numa", pure, return_raw)]
    pub fn vm_numa(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Map> {
        let xml = vm.raw.xml_desc(0).script(&ctx)?;
        let root = Element::parse(&xml)
            .map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(&ctx))?;
        let memory = root.path(&["numatune", "memory"]);
        let attr = |name: &str| -> Dynamic {
            memory
                .and_then(|m| m.attr(name))
                .map(|v| Dynamic::from(v.to_owned()))
                .unwrap_or(Dynamic::UNIT)
        };
        let cells: Array = root
            .path(&["cpu", "numa"])
            .map(|numa| {
                numa.children_named("cell")
                    .map(|cell| {
                        let mut c = Map::new();
                        let id = cell.attr("id").and_then(|i| i.parse::<i64>().ok());
                        c.insert("id".into(), id.map(Dynamic::from).unwrap_or(Dynamic::UNIT));
                        c.insert(
                            "cpus".into(),
                            cell.attr("cpus").unwrap_or_default().to_owned().into(),
                        );
                        let kib = cell.attr("memory").and_then(|m| m.parse::<i64>().ok());
                        let unit = cell.attr("unit").unwrap_or("KiB");
                        let bytes = kib.and_then(|n| {
                            crate::xml::domain::to_kib(n as u64, unit).map(|k| k as i64 * 1024)
                        });
                        c.insert("memory".into(), bytes.unwrap_or(0).into());
                        Dynamic::from(c)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut m = Map::new();
        m.insert("mode".into(), attr("mode"));
        m.insert("nodeset".into(), attr("nodeset"));
        m.insert("cells".into(), cells.into());
        Ok(m)
    }
}

/// libvirt's numatune memory modes, by their `virsh numatune --mode` names.
const MODES: &[(&str, i32)] = &[
    ("strict", virt::sys::VIR_DOMAIN_NUMATUNE_MEM_STRICT as i32),
    (
        "preferred",
        virt::sys::VIR_DOMAIN_NUMATUNE_MEM_PREFERRED as i32,
    ),
    (
        "interleave",
        virt::sys::VIR_DOMAIN_NUMATUNE_MEM_INTERLEAVE as i32,
    ),
    (
        "restrictive",
        virt::sys::VIR_DOMAIN_NUMATUNE_MEM_RESTRICTIVE as i32,
    ),
];

fn set_numa_impl(vm: &Vm, opts: &Map) -> Result<(), ScriptError> {
    let f = crate::api::args::Fields::new("", opts);
    let names: Vec<&str> = MODES.iter().map(|(n, _)| *n).collect();
    let mode = f.one_of("mode", &names)?;
    let nodeset = f.string("nodeset")?;
    let flags = crate::api::vm::affect_flags(vm, Some(&f))?;
    f.finish()?;
    if mode.is_none() && nodeset.is_none() {
        return Err(ScriptError::invalid(
            "nodeset",
            "()",
            "give mode, nodeset or both",
        ));
    }
    if let Some(n) = &nodeset {
        crate::api::vm::spec::parse_cpuset("nodeset", n)?;
    }
    let live = flags & virt::sys::VIR_DOMAIN_AFFECT_LIVE != 0;
    let params = virt::domain::NUMAParameters {
        node_set: nodeset.clone(),
        mode: mode
            .as_deref()
            .and_then(|m| MODES.iter().find(|(n, _)| *n == m).map(|(_, v)| *v)),
    };
    vm.raw.set_numa_parameters(params, flags).map_err(|e| {
        let value = nodeset.or(mode).unwrap_or_default();
        let err = ScriptError::libvirt(&e)
            .with("field", "nodeset")
            .with("value", value);
        if live && e.message().contains("cgroup") {
            err.with(
                "hint",
                "moving a running VM's memory needs the cgroup cpuset controller for its QEMU on the host; live: false changes it for the next boot",
            )
        } else {
            err
        }
    })
}

#[export_module(manifest)]
pub mod numa_tune_api {
    use super::*;

    /// Change where the host puts the VM's memory (`virsh numatune`):
    /// `#{ mode, nodeset, live, config }`, `mode` one of `strict`, `preferred`,
    /// `interleave`, `restrictive`, `nodeset` host cells like `"0-1"`. By
    /// default a running VM changes now (as far as libvirt allows: QEMU can
    /// move a running guest's nodeset, not its mode) and, when persistent,
    /// for the next boot; a stopped one in its definition.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "placed", memory: 512, virt_type: "qemu", pxe: true });
    /// vm.set_numa(#{ mode: "interleave", nodeset: "0-1" });
    /// let numa = vm.numa();
    /// assert_eq([numa.mode, numa.nodeset], ["interleave", "0-1"]);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn set_numa(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<()> {
        set_numa_impl(vm, &opts).at(&ctx)?;
        crate::runtime::journal::record("set_numa", format!("vm {}", vm.name()), None);
        Ok(())
    }
}
