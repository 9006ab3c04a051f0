//! One home for each VM key that `create_vm`'s spec and `edit`'s `cfg`
//! share: a function that reads the key and applies it to the typed domain,
//! keeping what the domain has when the key is absent (a new domain's
//! defaults for a spec; for `edit`, which passes only the keys that changed,
//! the definition as it was). A new shared key is one function here.
use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::runtime::suggest::closest;
use crate::runtime::units::format_size;
use crate::xml::domain::{Cpu, Domain};

use super::spec::{check_identifier, plan_cpu_map};

mod devices;
pub use devices::*;

/// How the functions here are called: read a key from `f`, apply it to the domain.
pub type Apply = fn(&Fields, &mut Domain) -> Result<(), ScriptError>;

/// `memory`: `"2G"` or MiB, at least 1 MiB. A current memory that the new
/// size would exceed, or that is not given with it, follows it.
pub fn memory(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let Some(bytes) = f.size("memory", true)? else {
        return Ok(());
    };
    if bytes < (1 << 20) {
        return Err(ScriptError::invalid(
            &f.name("memory"),
            f.raw("memory").map(show).unwrap_or_default(),
            "must be at least 1 MiB",
        ));
    }
    d.memory_kib = bytes / 1024;
    let follows = !f.has("current_memory");
    if let Some(current) = d.current_memory_kib {
        if follows || current > d.memory_kib {
            d.current_memory_kib = Some(d.memory_kib);
        }
    }
    Ok(())
}

/// `current_memory`: the balloon's size at boot, at most `memory`.
pub fn current_memory(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let Some(bytes) = f.size("current_memory", true)? else {
        return Ok(());
    };
    let memory = d.memory_kib * 1024;
    if bytes > memory {
        return Err(ScriptError::invalid(
            &f.name("current_memory"),
            format_size(bytes),
            format!("must not exceed memory ({})", format_size(memory)),
        ));
    }
    d.current_memory_kib = Some(bytes / 1024);
    Ok(())
}

/// `vcpus` and `max_vcpus` (the hot-plug limit), which bound each other: a
/// `max_vcpus` not given grows to `vcpus`.
pub fn vcpus(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let vcpus = f.positive("vcpus", 4096)?.unwrap_or(d.vcpus.active());
    let max = match f.positive("max_vcpus", 4096)? {
        Some(max) if max < vcpus => {
            return Err(ScriptError::invalid(
                &f.name("max_vcpus"),
                max,
                format!("must be at least vcpus ({vcpus})"),
            ))
        }
        Some(max) => max,
        None => d.vcpus.max.max(vcpus),
    };
    d.vcpus.max = max;
    d.vcpus.current = (vcpus != max).then_some(vcpus);
    Ok(())
}

/// `cpu`: a mode or model name (`"host-passthrough"`, `"qemu64"`), which
/// keeps the topology and guest NUMA cells there are, or a map with them
/// (`cpu::plan_cpu_map`); `()` for the hypervisor's default.
pub fn cpu(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let Some(raw) = f.raw("cpu") else {
        d.cpu = None;
        return Ok(());
    };
    if raw.is_string() {
        let named = cpu_named(&raw.to_string(), &f.name("cpu"))?;
        let old = d.cpu.take().unwrap_or_default();
        d.cpu = Some(Cpu {
            mode: named.mode,
            model: named.model,
            ..old
        });
        return Ok(());
    }
    let map = f.map("cpu")?.unwrap_or_default();
    d.cpu = Some(plan_cpu_map(&f.name("cpu"), &map, d)?);
    Ok(())
}

/// A CPU mode (`host-passthrough`, `host-model`, `maximum`) or a model name
/// (mode custom).
pub fn cpu_named(text: &str, field: &str) -> Result<Cpu, ScriptError> {
    match text {
        "host-passthrough" | "host-model" | "maximum" => Ok(Cpu {
            mode: Some(text.to_owned()),
            ..Cpu::default()
        }),
        "" => Err(ScriptError::invalid(
            field,
            "",
            "must name a CPU mode or model",
        )),
        model => {
            // The model goes into the XML: a name libvirt knows, no markup.
            check_identifier(field, model)?;
            Ok(Cpu {
                mode: Some("custom".into()),
                model: Some(model.to_owned()),
                ..Cpu::default()
            })
        }
    }
}

/// `title`: one line, shown by `virsh list --title`.
pub fn title(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    d.title = f.string("title")?;
    if let Some(t) = d.title.as_deref().filter(|t| t.contains(['\n', '\r'])) {
        return Err(ScriptError::invalid(
            &f.name("title"),
            t,
            "a title is one line (put more in description)",
        ));
    }
    Ok(())
}

/// `description`: free text.
pub fn description(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    d.description = f.string("description")?;
    Ok(())
}

/// `kernel`: a kernel file booted directly (the install method `kernel`).
pub fn kernel(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    d.os.kernel = f.string("kernel")?;
    Ok(())
}

/// `initrd`: the initial ramdisk that goes with `kernel`.
pub fn initrd(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    d.os.initrd = f.string("initrd")?;
    Ok(())
}

/// `cmdline`: the kernel command line that goes with `kernel`.
pub fn cmdline(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    d.os.cmdline = f.string("cmdline")?;
    Ok(())
}

/// The device kinds `<os><boot dev>` takes, in virt-install's words.
pub const BOOT_DEVICES: &[&str] = &["hd", "cdrom", "network", "fd"];

/// `boot: ["network", "hd"]`: the boot order by device kind (`<os><boot
/// dev>`), each kind once; `[]` leaves it to libvirt (the first disk).
/// Absent, the order stays (the install method's for a new VM). libvirt
/// takes it or per-device `boot_order`s, not both: [`check_boot_orders`]
/// once every key is applied.
pub fn boot(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let Some(list) = f.array("boot")? else {
        return Ok(());
    };
    let mut boot: Vec<String> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let field = format!("{}[{i}]", f.name("boot"));
        if !item.is_string() {
            return Err(ScriptError::invalid(
                &field,
                show(item),
                format!(
                    "must be a device kind ({}), not {}",
                    BOOT_DEVICES.join(", "),
                    item.type_name()
                ),
            ));
        }
        let dev = item.to_string();
        if !BOOT_DEVICES.contains(&dev.as_str()) {
            let hint = match closest(&dev, BOOT_DEVICES.iter().copied()) {
                Some(best) => format!("; did you mean \"{best}\"?"),
                None => String::new(),
            };
            return Err(ScriptError::invalid(
                &field,
                &dev,
                format!(
                    "not a boot device{hint} (one of: {})",
                    BOOT_DEVICES.join(", ")
                ),
            ));
        }
        if let Some(j) = boot.iter().position(|b| *b == dev) {
            return Err(ScriptError::invalid(
                &field,
                &dev,
                format!("{}[{j}] is {dev} already: each device kind boots once", f.name("boot")),
            ));
        }
        boot.push(dev);
    }
    d.os.boot = boot;
    Ok(())
}

/// `<os><boot>` and a disk's `boot_order` exclude each other (libvirt
/// refuses the definition): refused naming the field that set the order.
pub fn check_boot_orders(field: &str, d: &Domain) -> Result<(), ScriptError> {
    if d.os.boot.is_empty() {
        return Ok(());
    }
    match d.disks.iter().find(|x| x.boot_order.is_some()) {
        Some(disk) => Err(ScriptError::invalid(
            field,
            d.os.boot.join(", "),
            format!(
                "disk {} has a boot_order: libvirt takes boot or per-disk boot_order, not both",
                disk.target
            ),
        )),
        None => Ok(()),
    }
}
