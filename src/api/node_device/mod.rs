//! `NodeDevice` script object: the host's devices as libvirt knows them
//! (`virsh nodedev-list`, `nodedev-dumpxml`), read only: name, parent,
//! capabilities, and the address of PCI and USB devices.
mod object;

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use virt::error::ErrorNumber;

use super::error::{AtExt, ErrorKind, ScriptError, ScriptResult};
use super::Host;
use crate::runtime::suggest::closest;
use crate::xml::domain::{PciAddress, UsbSource};
use crate::xml::tree::Element;
use virt::connect::Connect;

/// One device of a host.
#[derive(Clone)]
pub struct NodeDevice {
    pub host: Host,
    pub raw: Arc<virt::nodedev::NodeDevice>,
}

/// The capability names `virsh nodedev-list --cap` takes.
const CAPABILITIES: &[&str] = &[
    "system",
    "pci",
    "usb_device",
    "usb",
    "net",
    "scsi_host",
    "scsi_target",
    "scsi",
    "storage",
    "fc_host",
    "vports",
    "scsi_generic",
    "drm",
    "mdev_types",
    "mdev",
    "ccw",
    "css",
    "vdpa",
    "ap_card",
    "ap_queue",
    "ap_matrix",
    "vpd",
];

impl NodeDevice {
    pub fn name(&self) -> String {
        self.raw.name().unwrap_or_default()
    }

    /// Its XML as libvirt gives it (`virsh nodedev-dumpxml`).
    fn xml(&self) -> Result<String, ScriptError> {
        self.raw.xml_desc(0).map_err(|e| ScriptError::libvirt(&e))
    }

    fn document(&self) -> Result<Element, ScriptError> {
        Element::parse(&self.xml()?).map_err(|e| {
            ScriptError::new(
                ErrorKind::Xml,
                format!("cannot read node device {}'s XML: {e}", self.name()),
            )
        })
    }

    /// Its capability types, nested ones included (`scsi_host` and `fc_host`).
    fn capabilities(&self) -> Result<Vec<String>, ScriptError> {
        self.raw.list_caps().map_err(|e| ScriptError::libvirt(&e))
    }

    /// The parent's name, `None` for the root (`computer`).
    fn parent(&self) -> Result<Option<String>, ScriptError> {
        Ok(self.document()?.child("parent").map(Element::text))
    }
}

/// The `<capability type=KIND>` element of a device document.
fn capability<'a>(doc: &'a Element, kind: &str) -> Option<&'a Element> {
    doc.children_named("capability")
        .find(|c| c.attr("type") == Some(kind))
}

/// A number of a device document: decimal, or hex with `0x`.
fn number(cap: &Element, name: &str) -> Option<i64> {
    let text = cap.child(name)?.text();
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `vendor_id`, `vendor`, `product_id`, `product` where the document has them.
fn ids(cap: &Element, out: &mut Map) {
    for part in ["vendor", "product"] {
        if let Some(e) = cap.child(part) {
            if let Some(id) = e.attr("id") {
                out.insert(format!("{part}_id").into(), id.into());
            }
            let name = e.text();
            if !name.trim().is_empty() {
                out.insert(part.into(), name.trim().into());
            }
        }
    }
}

/// A PCI device's address and ids, `None` for other devices.
fn pci_of(doc: &Element) -> Option<Map> {
    let cap = capability(doc, "pci")?;
    let mut out = Map::new();
    let (domain, bus, slot, function) = (
        number(cap, "domain")?,
        number(cap, "bus")?,
        number(cap, "slot")?,
        number(cap, "function")?,
    );
    out.insert(
        "address".into(),
        format!("{domain:04x}:{bus:02x}:{slot:02x}.{function:x}").into(),
    );
    out.insert("domain".into(), domain.into());
    out.insert("bus".into(), bus.into());
    out.insert("slot".into(), slot.into());
    out.insert("function".into(), function.into());
    ids(cap, &mut out);
    Some(out)
}

/// A USB device's bus, device number and ids, `None` for other devices.
fn usb_of(doc: &Element) -> Option<Map> {
    let cap = capability(doc, "usb_device")?;
    let mut out = Map::new();
    out.insert("bus".into(), number(cap, "bus")?.into());
    out.insert("device".into(), number(cap, "device")?.into());
    ids(cap, &mut out);
    Some(out)
}

/// A host device as a VM's `hostdevs` sees it: its name, its capability
/// types, and the host address of a PCI or USB device.
pub struct Passthrough {
    pub name: String,
    pub capabilities: Vec<String>,
    pub pci: Option<PciAddress>,
    pub usb: Option<UsbSource>,
}

/// Every device of the host (sorted by name) for a VM spec's `hostdevs`.
pub fn passthrough_devices(conn: &Connect) -> Result<Vec<Passthrough>, ScriptError> {
    let raw = conn
        .list_all_node_devices(0)
        .map_err(|e| ScriptError::libvirt(&e))?;
    let mut out = Vec::new();
    for dev in raw {
        let name = dev.name().unwrap_or_default();
        let Some(doc) = dev.xml_desc(0).ok().and_then(|x| Element::parse(&x).ok()) else {
            continue;
        };
        let num = |cap: &Element, n: &str| number(cap, n).and_then(|v| u32::try_from(v).ok());
        let pci = capability(&doc, "pci").and_then(|cap| {
            Some(PciAddress {
                domain: num(cap, "domain")?,
                bus: num(cap, "bus")?,
                slot: num(cap, "slot")?,
                function: num(cap, "function")?,
            })
        });
        let usb = capability(&doc, "usb_device").map(|cap| {
            let id = |part: &str| {
                cap.child(part)
                    .and_then(|e| e.attr("id"))
                    .and_then(|id| u32::from_str_radix(id.trim_start_matches("0x"), 16).ok())
            };
            UsbSource {
                vendor: id("vendor"),
                product: id("product"),
                bus: num(cap, "bus"),
                device: num(cap, "device"),
            }
        });
        out.push(Passthrough {
            name,
            capabilities: doc
                .children_named("capability")
                .filter_map(|c| c.attr("type").map(str::to_owned))
                .collect(),
            pci,
            usb,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The capability names of a `--cap`-like filter: `"pci"`, `"pci,usb_device"`.
fn wanted_capabilities(filter: &str) -> Result<Vec<&str>, ScriptError> {
    let wanted: Vec<&str> = filter.split(',').map(str::trim).collect();
    for cap in &wanted {
        if !CAPABILITIES.contains(cap) {
            let problem = match closest(cap, CAPABILITIES.iter().copied()) {
                Some(best) => format!("unknown capability; did you mean '{best}'?"),
                None => format!("unknown capability (known: {})", CAPABILITIES.join(", ")),
            };
            return Err(ScriptError::invalid("cap", cap, problem));
        }
    }
    Ok(wanted)
}

/// The host's devices, sorted by name, those with one of `caps` when given.
fn list(host: &Host, caps: Option<&[&str]>) -> Result<Vec<NodeDevice>, ScriptError> {
    let raw = host
        .conn()
        .list_all_node_devices(0)
        .map_err(|e| ScriptError::libvirt(&e))?;
    let mut out = Vec::new();
    for raw in raw {
        let device = NodeDevice {
            host: host.clone(),
            raw: raw.into(),
        };
        let keep = match caps {
            None => true,
            Some(caps) => device
                .capabilities()?
                .iter()
                .any(|c| caps.contains(&c.as_str())),
        };
        if keep {
            out.push(device);
        }
    }
    out.sort_by_key(NodeDevice::name);
    Ok(out)
}

fn lookup(host: &Host, name: &str) -> Result<NodeDevice, ScriptError> {
    match host.conn().lookup_node_device_by_name(name) {
        Ok(raw) => Ok(NodeDevice {
            host: host.clone(),
            raw: raw.into(),
        }),
        Err(e) if e.code() == ErrorNumber::NoNodeDevice.into() => {
            let names: Vec<String> = list(host, None)?.iter().map(NodeDevice::name).collect();
            let hint = closest(name, names.iter().map(String::as_str))
                .map(|best| format!("; did you mean {best:?}?"))
                .unwrap_or_default();
            Err(ScriptError::not_found(
                "name",
                name,
                format!("no node device named {name:?} on {}{hint}", host.uri()),
            ))
        }
        Err(e) => Err(ScriptError::libvirt(&e)),
    }
}

fn to_array(devices: Vec<NodeDevice>) -> Array {
    devices.into_iter().map(Dynamic::from).collect()
}

#[export_module(manifest)]
pub mod node_device_api {
    use super::*;

    pub type NodeDevice = super::NodeDevice;

    /// The host's devices (`virsh nodedev-list`), sorted by name.
    ///
    /// ```rhai
    /// let names = HOST.node_devices().map(|d| d.name);
    /// assert(names.contains("computer"));   // the root of the device tree
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn node_devices(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Array> {
        list(host, None).map(to_array).at(&ctx)
    }

    /// The host's devices with one of the capabilities named, comma-separated
    /// as `virsh nodedev-list --cap pci,usb_device` takes them (`system`,
    /// `pci`, `usb_device`, `usb`, `net`, `scsi_host`, `scsi_target`, `scsi`,
    /// `storage`, `fc_host`, `vports`, `scsi_generic`, `drm`, `mdev_types`,
    /// `mdev`, `ccw`, `css`, `vdpa`, `ap_card`, `ap_queue`, `ap_matrix`,
    /// `vpd`). An unknown name is refused (`kind: "invalid"`, `field: "cap"`).
    ///
    /// ```rhai
    /// let hosts = HOST.node_devices("scsi_host");
    /// assert(hosts.len() > 0);
    /// assert(hosts.all(|d| d.capabilities.contains("scsi_host")));
    /// assert_eq(HOST.node_devices("system").map(|d| d.name), ["computer"]);
    /// try { HOST.node_devices("pcie"); } catch (e) { assert_eq(e.field, "cap"); }
    /// ```
    #[rhai_fn(name = "node_devices", pure, return_raw)]
    pub fn node_devices_with(
        ctx: NativeCallContext,
        host: &mut Host,
        cap: &str,
    ) -> ScriptResult<Array> {
        let caps = wanted_capabilities(cap).at(&ctx)?;
        list(host, Some(&caps)).map(to_array).at(&ctx)
    }

    /// The device named `name` (`virsh nodedev-dumpxml NAME`); an error
    /// (`kind: "not_found"`) naming it, with the closest device name, when
    /// there is none.
    ///
    /// ```rhai
    /// assert_eq(HOST.node_device("computer").name, "computer");
    /// let found = "";
    /// try { HOST.node_device("computr"); } catch (e) { found = e.message; }
    /// assert(found.contains("did you mean \"computer\""), found);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn node_device(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
    ) -> ScriptResult<NodeDevice> {
        lookup(host, name).at(&ctx)
    }

    /// The device's name (`pci_0000_00_01_0`, `net_eth0_52_54_00_12_34_56`).
    ///
    /// ```rhai
    /// assert_eq(HOST.node_device("computer").name, "computer");
    /// ```
    #[rhai_fn(get = "name", pure)]
    pub fn name(device: &mut NodeDevice) -> String {
        device.name()
    }

    /// The name of the device it hangs off (`computer` for a PCI device),
    /// `()` for the root.
    ///
    /// ```rhai
    /// assert_eq(HOST.node_device("computer").parent, ());
    /// let scsi = HOST.node_devices("scsi_host")[0];
    /// assert(scsi.parent != ());
    /// ```
    #[rhai_fn(get = "parent", pure, return_raw)]
    pub fn parent(ctx: NativeCallContext, device: &mut NodeDevice) -> ScriptResult<Dynamic> {
        Ok(device
            .parent()
            .at(&ctx)?
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT))
    }

    /// Its capability types (`["pci"]`; a fibre channel host: `["scsi_host",
    /// "fc_host", "vports"]`), what `node_devices(cap)` filters on.
    ///
    /// ```rhai
    /// assert_eq(HOST.node_device("computer").capabilities, ["system"]);
    /// ```
    #[rhai_fn(get = "capabilities", pure, return_raw)]
    pub fn capabilities(ctx: NativeCallContext, device: &mut NodeDevice) -> ScriptResult<Array> {
        let caps = device.capabilities().at(&ctx)?;
        Ok(caps.into_iter().map(Dynamic::from).collect())
    }

    /// Its XML, as `virsh nodedev-dumpxml` prints it.
    ///
    /// ```rhai
    /// let xml = HOST.node_device("computer").xml;
    /// assert(xml.contains("<name>computer</name>"));
    /// ```
    #[rhai_fn(get = "xml", pure, return_raw)]
    pub fn xml(ctx: NativeCallContext, device: &mut NodeDevice) -> ScriptResult<String> {
        device.xml().at(&ctx)
    }

    /// The kernel driver bound to it (`vfio-pci`, `virtio-pci`), `()` when none.
    ///
    /// ```rhai
    /// assert_eq(HOST.node_device("computer").driver, ());
    /// ```
    #[rhai_fn(get = "driver", pure, return_raw)]
    pub fn driver(ctx: NativeCallContext, device: &mut NodeDevice) -> ScriptResult<Dynamic> {
        let doc = device.document().at(&ctx)?;
        Ok(doc
            .path(&["driver", "name"])
            .map(|name| Dynamic::from(name.text()))
            .unwrap_or(Dynamic::UNIT))
    }

    /// A PCI device's address: `address` (`"0000:00:01.0"`, as `lspci -D`
    /// and a hostdev's source), `domain`, `bus`, `slot`, `function`, and
    /// `vendor_id`, `vendor`, `product_id`, `product` where libvirt knows
    /// them; `()` for a device that is not PCI.
    ///
    /// ```rhai
    /// assert_eq(HOST.node_device("computer").pci, ());
    /// for d in HOST.node_devices("pci") {
    ///     assert_eq(d.pci.address.len(), 12);   // domain:bus:slot.function
    /// }
    /// ```
    #[rhai_fn(get = "pci", pure, return_raw)]
    pub fn pci(ctx: NativeCallContext, device: &mut NodeDevice) -> ScriptResult<Dynamic> {
        let doc = device.document().at(&ctx)?;
        Ok(pci_of(&doc).map(Dynamic::from).unwrap_or(Dynamic::UNIT))
    }

    /// A USB device's `bus` and `device` numbers (as `lsusb` shows them) and
    /// `vendor_id`, `vendor`, `product_id`, `product` where libvirt knows
    /// them; `()` for a device that is not a USB device.
    ///
    /// ```rhai
    /// assert_eq(HOST.node_device("computer").usb, ());
    /// for d in HOST.node_devices("usb_device") {
    ///     assert(d.usb.bus > 0);
    /// }
    /// ```
    #[rhai_fn(get = "usb", pure, return_raw)]
    pub fn usb(ctx: NativeCallContext, device: &mut NodeDevice) -> ScriptResult<Dynamic> {
        let doc = device.document().at(&ctx)?;
        Ok(usb_of(&doc).map(Dynamic::from).unwrap_or(Dynamic::UNIT))
    }

    /// `NodeDevice(name)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(device: &mut NodeDevice) -> String {
        format!("NodeDevice({})", device.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_and_usb_addresses_come_from_the_capability() {
        let doc = Element::parse(
            "<device><name>pci_0000_00_01_0</name><parent>computer</parent>\
             <capability type='pci'><class>0xffff00</class><domain>0</domain><bus>0</bus>\
             <slot>1</slot><function>0</function>\
             <product id='0x1045'>Virtio 1.0 memory balloon</product>\
             <vendor id='0x1af4'>Red Hat, Inc.</vendor></capability></device>",
        )
        .unwrap();
        let pci = pci_of(&doc).unwrap();
        assert_eq!(pci["address"].to_string(), "0000:00:01.0");
        assert_eq!(pci["slot"].as_int().unwrap(), 1);
        assert_eq!(pci["vendor_id"].to_string(), "0x1af4");
        assert_eq!(pci["product"].to_string(), "Virtio 1.0 memory balloon");
        assert!(usb_of(&doc).is_none());
        let doc = Element::parse(
            "<device><name>usb_1_2</name><capability type='usb_device'><bus>1</bus>\
             <device>2</device><product id='0x0001'/><vendor id='0x1d6b'>Linux Foundation</vendor>\
             </capability></device>",
        )
        .unwrap();
        let usb = usb_of(&doc).unwrap();
        assert_eq!(usb["bus"].as_int().unwrap(), 1);
        assert_eq!(usb["device"].as_int().unwrap(), 2);
        assert_eq!(usb["product_id"].to_string(), "0x0001");
        assert!(!usb.contains_key("product"));
        assert_eq!(usb["vendor"].to_string(), "Linux Foundation");
        assert!(pci_of(&doc).is_none());
    }

    #[test]
    fn capability_filters_name_known_capabilities() {
        assert_eq!(
            wanted_capabilities("pci, usb_device").unwrap(),
            ["pci", "usb_device"]
        );
        let err = wanted_capabilities("pcie").unwrap_err().message();
        assert!(err.contains("did you mean 'pci'"), "{err}");
    }
}
