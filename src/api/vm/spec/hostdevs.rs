//! `hostdevs`: host PCI and USB devices passed through to the guest
//! (`virt-install --hostdev`), each one a device the host has
//! (`HOST.node_devices()`), checked before anything is created.
use rhai::{Array, Dynamic, Map};
use virt::connect::Connect;

use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::api::node_device::{passthrough_devices, Passthrough};
use crate::runtime::suggest::closest;
use crate::xml::domain::{Domain, Hostdev, PciAddress, UsbSource};

/// At most this many device names in a message listing them.
const LISTED: usize = 12;

/// `hostdevs: [...]`: each a node device name (`"pci_0000_01_00_0"`,
/// `"usb_1_2"`), `#{ type: "pci", address: "0000:01:00.0" }` or `#{ type:
/// "usb", vendor: "0x1d6b", product: "0x0002" }` / `#{ type: "usb",
/// address: "1.2" }` (bus.device, as `lsusb` shows them), each with
/// `managed` (default true: libvirt detaches the device from its host driver
/// while the guest runs). `keep` are hostdevs the VM has already: an entry
/// that shows as one of them stays as it is, unchecked (`vm.edit`).
pub fn plan_hostdevs(
    conn: &Connect,
    field: &str,
    list: &Array,
    keep: &[Hostdev],
) -> Result<Vec<Hostdev>, ScriptError> {
    let mut host: Option<Vec<Passthrough>> = None;
    let mut out: Vec<Hostdev> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        if let Some(old) = keep.iter().find(|h| shown_equal(h, item)) {
            out.push(old.clone());
            continue;
        }
        if host.is_none() {
            host = Some(passthrough_devices(conn)?);
        }
        let devices = host.as_deref().unwrap_or_default();
        let h = plan_hostdev(&item_field, item, devices)?;
        if let Some(j) = out.iter().position(|o| o.same_device(&h)) {
            return Err(ScriptError::invalid(
                &item_field,
                show(item),
                format!("the same host device as {field}[{j}]: a device passes through once"),
            ));
        }
        out.push(h);
    }
    Ok(out)
}

fn shown_equal(h: &Hostdev, item: &Dynamic) -> bool {
    item.read_lock::<Map>()
        .is_some_and(|m| format!("{:?}", *m) == format!("{:?}", hostdev_map(h)))
}

fn plan_hostdev(
    field: &str,
    item: &Dynamic,
    devices: &[Passthrough],
) -> Result<Hostdev, ScriptError> {
    if item.is_string() {
        return by_name(field, &item.to_string(), devices, true);
    }
    let Some(map) = item.read_lock::<Map>().map(|m| m.clone()) else {
        return Err(ScriptError::invalid(
            field,
            show(item),
            format!(
                "must be a node device name (like \"pci_0000_01_00_0\") or a map #{{ type, address }}, not {}",
                item.type_name()
            ),
        ));
    };
    let f = Fields::new(field, &map);
    let kind = f.one_of("type", &["pci", "usb"])?;
    let address = f.string("address")?;
    let vendor = usb_id(&f, "vendor")?;
    let product = usb_id(&f, "product")?;
    let managed = f.boolean("managed")?.unwrap_or(true);
    f.finish()?;
    let kind = kind.unwrap_or_else(|| {
        if vendor.is_some() || product.is_some() {
            "usb".into()
        } else {
            "pci".into()
        }
    });
    let mut h = if kind == "pci" {
        for (key, given) in [("vendor", vendor), ("product", product)] {
            if let Some(id) = given {
                return Err(ScriptError::invalid(
                    &f.name(key),
                    format!("0x{id:04x}"),
                    "only goes with type usb (a PCI device is found by its address)",
                ));
            }
        }
        let address = address.ok_or_else(|| {
            ScriptError::invalid(
                &f.name("address"),
                "()",
                "a PCI hostdev needs the device's address, like \"0000:01:00.0\"",
            )
        })?;
        pci_by_address(&f.name("address"), &address, devices)?
    } else {
        usb_by_ids(field, &f, address.as_deref(), vendor, product, devices)?
    };
    h.managed = Some(managed);
    Ok(h)
}

/// A USB vendor or product id: `"0x1d6b"`, `"1d6b"` or a number.
fn usb_id(f: &Fields, key: &str) -> Result<Option<u32>, ScriptError> {
    let Some(raw) = f.raw(key) else {
        return Ok(None);
    };
    let id = if raw.is_string() {
        let text = raw.to_string();
        let hex = text.trim_start_matches("0x").trim_start_matches("0X");
        (!hex.is_empty() && hex.len() <= 4)
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten()
    } else {
        raw.as_int()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= 0xffff)
    };
    id.map(Some).ok_or_else(|| {
        ScriptError::invalid(
            &f.name(key),
            show(raw),
            format!("not a USB {key} id (four hex digits, like \"0x1d6b\", as lsusb shows it)"),
        )
    })
}

/// A few names for a message, with "..." past [`LISTED`].
fn listing<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        return "none".into();
    }
    let mut text = names.iter().take(LISTED).copied().collect::<Vec<_>>().join(", ");
    if names.len() > LISTED {
        text.push_str(&format!(", ... ({} in all)", names.len()));
    }
    text
}

fn passable(d: &Passthrough) -> bool {
    d.pci.is_some() || d.usb.is_some()
}

/// A node device by its name: a PCI device by its address; a USB device by
/// its ids, and by bus and device number too when another device has the
/// same ids (as virt-install does).
fn by_name(
    field: &str,
    name: &str,
    devices: &[Passthrough],
    managed: bool,
) -> Result<Hostdev, ScriptError> {
    let Some(dev) = devices.iter().find(|d| d.name == name) else {
        let hint = closest(name, devices.iter().map(|d| d.name.as_str()))
            .map(|best| format!("; did you mean \"{best}\"?"))
            .unwrap_or_default();
        return Err(ScriptError::invalid(
            field,
            name,
            format!(
                "no node device by this name on the host{hint} (PCI and USB devices: {}; see HOST.node_devices())",
                listing(devices.iter().filter(|d| passable(d)).map(|d| d.name.as_str()))
            ),
        ));
    };
    let mut h = Hostdev {
        mode: "subsystem".into(),
        managed: Some(managed),
        ..Hostdev::default()
    };
    if let Some(pci) = dev.pci {
        h.hostdev_type = "pci".into();
        h.pci = Some(pci);
    } else if let Some(usb) = dev.usb {
        h.hostdev_type = "usb".into();
        let twins = devices
            .iter()
            .filter_map(|d| d.usb)
            .filter(|u| u.vendor == usb.vendor && u.product == usb.product)
            .count();
        h.usb = Some(if usb.vendor.is_some() && usb.product.is_some() && twins == 1 {
            UsbSource {
                bus: None,
                device: None,
                ..usb
            }
        } else {
            usb
        });
    } else {
        return Err(ScriptError::invalid(
            field,
            name,
            format!(
                "is a {} device, not a PCI or USB one: only those pass through here",
                dev.capabilities.join("/")
            ),
        ));
    }
    Ok(h)
}

fn pci_by_address(
    field: &str,
    text: &str,
    devices: &[Passthrough],
) -> Result<Hostdev, ScriptError> {
    let address = PciAddress::parse(text).ok_or_else(|| {
        ScriptError::invalid(
            field,
            text,
            "not a PCI address (domain:bus:slot.function in hex, like \"0000:01:00.0\", as lspci -D prints it)",
        )
    })?;
    if let Some(dev) = devices.iter().find(|d| d.pci == Some(address)) {
        return by_name(field, &dev.name, devices, true);
    }
    let known: Vec<String> = devices
        .iter()
        .filter_map(|d| d.pci.map(|p| p.to_string()))
        .collect();
    let want = address.to_string();
    let hint = closest(&want, known.iter().map(String::as_str))
        .map(|best| format!("; did you mean \"{best}\"?"))
        .unwrap_or_default();
    Err(ScriptError::invalid(
        field,
        text,
        format!(
            "the host has no PCI device at {want}{hint} (its PCI devices: {})",
            listing(known.iter().map(String::as_str))
        ),
    ))
}

/// `bus.device` as lsusb shows them (`001.002` or `1.2`).
fn usb_address(field: &str, text: &str) -> Result<(u32, u32), ScriptError> {
    text.split_once('.')
        .and_then(|(b, d)| Some((b.trim().parse().ok()?, d.trim().parse().ok()?)))
        .ok_or_else(|| {
            ScriptError::invalid(
                field,
                text,
                "not a USB address (bus.device, like \"1.2\" or \"001.002\", as lsusb shows them)",
            )
        })
}

fn usb_by_ids(
    item_field: &str,
    f: &Fields,
    address: Option<&str>,
    vendor: Option<u32>,
    product: Option<u32>,
    devices: &[Passthrough],
) -> Result<Hostdev, ScriptError> {
    if vendor.is_some() != product.is_some() {
        let missing = if vendor.is_none() { "vendor" } else { "product" };
        return Err(ScriptError::invalid(
            &f.name(missing),
            "()",
            "a USB device by id needs both vendor and product",
        ));
    }
    let at = address.map(|a| usb_address(&f.name("address"), a)).transpose()?;
    if vendor.is_none() && at.is_none() {
        return Err(ScriptError::invalid(
            item_field,
            "type usb",
            "a USB hostdev needs vendor and product, or address (bus.device)",
        ));
    }
    let usb: Vec<(&Passthrough, UsbSource)> =
        devices.iter().filter_map(|d| d.usb.map(|u| (d, u))).collect();
    let matching: Vec<&(&Passthrough, UsbSource)> = usb
        .iter()
        .filter(|(_, u)| {
            (vendor.is_none() || (u.vendor == vendor && u.product == product))
                && at.is_none_or(|(b, dv)| u.bus == Some(b) && u.device == Some(dv))
        })
        .collect();
    let describe = |u: &UsbSource| {
        format!(
            "{:04x}:{:04x} at {}.{}",
            u.vendor.unwrap_or(0),
            u.product.unwrap_or(0),
            u.bus.unwrap_or(0),
            u.device.unwrap_or(0)
        )
    };
    let given = match (vendor, at) {
        (Some(v), None) => format!("{v:04x}:{:04x}", product.unwrap_or(0)),
        (None, Some((b, d))) => format!("{b}.{d}"),
        (Some(v), Some((b, d))) => format!("{v:04x}:{:04x} at {b}.{d}", product.unwrap_or(0)),
        (None, None) => unreachable!("refused above"),
    };
    let field = if vendor.is_none() {
        f.name("address")
    } else {
        f.name("vendor")
    };
    match matching.as_slice() {
        [] => Err(ScriptError::invalid(
            &field,
            &given,
            format!(
                "the host has no such USB device (its USB devices: {})",
                listing(usb.iter().map(|(d, u)| format!("{} ({})", d.name, describe(u))).collect::<Vec<_>>().iter().map(String::as_str))
            ),
        )),
        // What was given names one device: the source says just that (ids
        // alone: libvirt finds the device wherever it is plugged in).
        [_] => Ok(Hostdev {
            mode: "subsystem".into(),
            hostdev_type: "usb".into(),
            usb: Some(UsbSource {
                vendor,
                product,
                bus: at.map(|a| a.0),
                device: at.map(|a| a.1),
            }),
            ..Hostdev::default()
        }),
        several => Err(ScriptError::invalid(
            &field,
            &given,
            format!(
                "the host has {} USB devices with these ids ({}): give address (bus.device) too",
                several.len(),
                several.iter().map(|(_, u)| describe(u)).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// A hostdev as `vm.config` shows it, in the spec's own map form.
pub fn hostdev_map(h: &Hostdev) -> Map {
    let mut m = Map::new();
    m.insert("type".into(), h.hostdev_type.clone().into());
    if h.mode != "subsystem" {
        m.insert("mode".into(), h.mode.clone().into());
    }
    if let Some(pci) = h.pci {
        m.insert("address".into(), pci.to_string().into());
    }
    if let Some(usb) = h.usb {
        if let Some(v) = usb.vendor {
            m.insert("vendor".into(), format!("0x{v:04x}").into());
        }
        if let Some(p) = usb.product {
            m.insert("product".into(), format!("0x{p:04x}").into());
        }
        if let (Some(b), Some(d)) = (usb.bus, usb.device) {
            m.insert("address".into(), format!("{b}.{d}").into());
        }
    }
    if let Some(managed) = h.managed {
        m.insert("managed".into(), managed.into());
    }
    m
}

/// `hostdevs` in a spec: read, checked against the host, onto `d`.
pub(super) fn apply(conn: &Connect, f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    if let Some(list) = f.array("hostdevs")? {
        d.hostdevs = plan_hostdevs(conn, &f.name("hostdevs"), &list, &[])?;
    }
    Ok(())
}
