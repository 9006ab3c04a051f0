//! `<hostdev mode='subsystem' type='pci|usb'>`: a host PCI or USB device
//! passed through to the guest. Like the rest of the domain model it reads
//! itself from an element and writes back only what it models: the guest
//! side `<address>`, `<rom>`, `<driver>`, an alias and hostdevs of other
//! types (`scsi`, `mdev`, `capabilities` mode) stay as they are.
use std::fmt;

use super::tree::Element;

/// A host PCI address, `domain:bus:slot.function` as `lspci -D` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    pub domain: u32,
    pub bus: u32,
    pub slot: u32,
    pub function: u32,
}

impl PciAddress {
    /// `0000:01:00.0`, or `01:00.0` for domain 0 (hex, as lspci prints them).
    pub fn parse(text: &str) -> Option<PciAddress> {
        let (rest, function) = text.trim().rsplit_once('.')?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, slot) = match parts.as_slice() {
            [d, b, s] => (*d, *b, *s),
            [b, s] => ("0", *b, *s),
            _ => return None,
        };
        let hex = |s: &str, max: u32| {
            (!s.is_empty() && s.len() <= 4)
                .then(|| u32::from_str_radix(s, 16).ok())
                .flatten()
                .filter(|n| *n <= max)
        };
        Some(PciAddress {
            domain: hex(domain, 0xffff)?,
            bus: hex(bus, 0xff)?,
            slot: hex(slot, 0x1f)?,
            function: hex(function, 7)?,
        })
    }

    /// The `<address domain bus slot function>` of a hostdev's source.
    fn from_element(el: &Element) -> Option<PciAddress> {
        Some(PciAddress {
            domain: number(el, "domain").unwrap_or(0),
            bus: number(el, "bus")?,
            slot: number(el, "slot")?,
            function: number(el, "function").unwrap_or(0),
        })
    }

    fn write(&self, el: &mut Element) {
        el.set_attr("domain", format!("0x{:04x}", self.domain));
        el.set_attr("bus", format!("0x{:02x}", self.bus));
        el.set_attr("slot", format!("0x{:02x}", self.slot));
        el.set_attr("function", format!("0x{:x}", self.function));
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.slot, self.function
        )
    }
}

/// A host USB device: by vendor and product id, and/or by bus and device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsbSource {
    pub vendor: Option<u32>,
    pub product: Option<u32>,
    pub bus: Option<u32>,
    pub device: Option<u32>,
}

impl UsbSource {
    fn from_element(source: &Element) -> UsbSource {
        let id = |name: &str| source.child(name).and_then(|e| number(e, "id"));
        let address = source.child("address");
        UsbSource {
            vendor: id("vendor"),
            product: id("product"),
            bus: address.and_then(|a| number(a, "bus")),
            device: address.and_then(|a| number(a, "device")),
        }
    }

    fn write(&self, source: &mut Element) {
        for (name, value) in [("vendor", self.vendor), ("product", self.product)] {
            match value {
                Some(id) => {
                    ensure_child_first(source, name, &["product", "address"])
                        .set_attr("id", format!("0x{id:04x}"));
                }
                None => {
                    source.remove_elements(|e| e.name == name);
                }
            }
        }
        if self.bus.is_some() || self.device.is_some() {
            let address = source.ensure_child("address");
            for (name, value) in [("bus", self.bus), ("device", self.device)] {
                match value {
                    Some(n) => address.set_attr(name, n.to_string()),
                    None => {
                        address.remove_attr(name);
                    }
                }
            }
        } else {
            source.remove_elements(|e| e.name == "address");
        }
    }
}

/// A host device of the guest (`<hostdev>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hostdev {
    /// `subsystem` (PCI, USB, SCSI, mdev) or `capabilities`.
    pub mode: String,
    /// `pci`, `usb`, `scsi`, `mdev`... (only PCI and USB sources are modelled).
    pub hostdev_type: String,
    /// `managed='yes'`: libvirt detaches the device from its host driver
    /// when the guest starts and gives it back when it stops.
    pub managed: Option<bool>,
    /// The host address of a `pci` hostdev.
    pub pci: Option<PciAddress>,
    /// The host device of a `usb` hostdev.
    pub usb: Option<UsbSource>,
}

impl Hostdev {
    pub fn from_element(el: &Element) -> Hostdev {
        let hostdev_type = el.attr("type").unwrap_or_default().to_owned();
        let source = el.child("source");
        Hostdev {
            mode: el.attr("mode").unwrap_or("subsystem").to_owned(),
            managed: el.attr("managed").map(|m| matches!(m, "yes" | "on")),
            pci: match hostdev_type.as_str() {
                "pci" => source
                    .and_then(|s| s.child("address"))
                    .and_then(PciAddress::from_element),
                _ => None,
            },
            usb: match hostdev_type.as_str() {
                "usb" => source.map(UsbSource::from_element),
                _ => None,
            },
            hostdev_type,
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        if el.attr("mode") != Some(self.mode.as_str()) {
            el.set_attr("mode", self.mode.clone());
        }
        el.set_attr("type", self.hostdev_type.clone());
        let read = Hostdev::from_element(el);
        if read.managed != self.managed {
            match self.managed {
                Some(on) => el.set_attr("managed", if on { "yes" } else { "no" }),
                None => {
                    el.remove_attr("managed");
                }
            }
        }
        if read.pci != self.pci {
            if let Some(pci) = &self.pci {
                let source = ensure_child_first(el, "source", &[]);
                pci.write(ensure_child_first(source, "address", &[]));
            }
        }
        if read.usb != self.usb {
            if let Some(usb) = &self.usb {
                usb.write(ensure_child_first(el, "source", &[]));
            }
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("hostdev");
        self.apply_to(&mut el);
        el
    }
}

/// The kinds of device libvirt writes after the hostdevs: a new hostdev goes
/// before the first of them when the domain has no hostdev yet.
const AFTER_HOSTDEVS: &[&str] = &[
    "redirdev",
    "redirfilter",
    "hub",
    "smartcard",
    "watchdog",
    "memballoon",
    "rng",
    "tpm",
    "shmem",
    "memory",
    "iommu",
    "vsock",
    "crypto",
    "panic",
];

impl Hostdev {
    /// The same host device (what `managed` says aside).
    pub fn same_device(&self, other: &Hostdev) -> bool {
        self.mode == other.mode
            && self.hostdev_type == other.hostdev_type
            && self.pci == other.pci
            && self.usb == other.usb
    }
}

/// Make the `<hostdev>` children of `devices` match `hostdevs`, pairing each
/// with the element of the same host device (not by position, as the other
/// devices do: a removed hostdev must take its own `<address>`, driver and
/// rom with it, not pass the next one's on). Unpaired elements go; new ones
/// follow the last hostdev.
pub fn sync(devices: &mut Element, hostdevs: &[Hostdev]) {
    use super::tree::Node;
    let existing: Vec<(usize, Hostdev)> = devices
        .children
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n {
            Node::Element(e) if e.name == "hostdev" => Some((i, Hostdev::from_element(e))),
            _ => None,
        })
        .collect();
    let mut used = vec![false; existing.len()];
    let mut pairs: Vec<Option<usize>> = Vec::with_capacity(hostdevs.len());
    for h in hostdevs {
        let found = existing
            .iter()
            .enumerate()
            .find(|(k, (_, e))| !used[*k] && e.same_device(h))
            .map(|(k, _)| k);
        if let Some(k) = found {
            used[k] = true;
        }
        pairs.push(found);
    }
    for (h, pair) in hostdevs.iter().zip(&pairs) {
        if let Some(k) = pair {
            if let Node::Element(e) = &mut devices.children[existing[*k].0] {
                h.apply_to(e);
            }
        }
    }
    // Remove the unpaired, last first so the indices stay right.
    for (k, (i, _)) in existing.iter().enumerate().rev() {
        if !used[k] {
            devices.children.remove(*i);
        }
    }
    let mut at = devices
        .children
        .iter()
        .rposition(|n| matches!(n, Node::Element(e) if e.name == "hostdev"))
        .map(|p| p + 1)
        .or_else(|| {
            devices.children.iter().position(
                |n| matches!(n, Node::Element(e) if AFTER_HOSTDEVS.contains(&e.name.as_str())),
            )
        })
        .unwrap_or(devices.children.len());
    for (h, pair) in hostdevs.iter().zip(&pairs) {
        if pair.is_none() {
            devices.children.insert(at, Node::Element(h.to_element()));
            at += 1;
        }
    }
}

/// A number attribute: hex with `0x`, else decimal.
fn number(el: &Element, name: &str) -> Option<u32> {
    let text = el.attr(name)?.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Find or insert the child `name`; a new one goes before the first of
/// `before`, else first (a hostdev's `<source>` leads, as libvirt writes it).
fn ensure_child_first<'a>(parent: &'a mut Element, name: &str, before: &[&str]) -> &'a mut Element {
    use super::tree::Node;
    if parent.child(name).is_none() {
        let at = parent
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if before.contains(&e.name.as_str())))
            .unwrap_or(if before.is_empty() {
                0
            } else {
                parent.children.len()
            });
        parent
            .children
            .insert(at, Node::Element(Element::new(name)));
    }
    parent.child_mut(name).expect("just ensured")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses_read_as_lspci_prints_them() {
        let a = PciAddress::parse("0000:01:00.0").unwrap();
        assert_eq!((a.domain, a.bus, a.slot, a.function), (0, 1, 0, 0));
        assert_eq!(
            PciAddress::parse("3a:1f.7").unwrap().to_string(),
            "0000:3a:1f.7"
        );
        for bad in [
            "",
            "01:00",
            "0000:01:00.8",
            "0000:01:20.0",
            "x:01:00.0",
            "0:0:0:0.0",
            "12345:00:00.0",
        ] {
            assert_eq!(PciAddress::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_new_hostdev_is_written_as_libvirt_takes_it() {
        let pci = Hostdev {
            mode: "subsystem".into(),
            hostdev_type: "pci".into(),
            managed: Some(true),
            pci: PciAddress::parse("0000:01:00.0"),
            usb: None,
        };
        assert_eq!(
            pci.to_element().to_xml(),
            "<hostdev mode='subsystem' type='pci' managed='yes'><source>\
             <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>"
        );
        let usb = Hostdev {
            mode: "subsystem".into(),
            hostdev_type: "usb".into(),
            managed: Some(true),
            pci: None,
            usb: Some(UsbSource {
                vendor: Some(0x1d6b),
                product: Some(1),
                bus: Some(1),
                device: Some(2),
            }),
        };
        let xml = usb.to_element().to_xml();
        assert_eq!(
            xml,
            "<hostdev mode='subsystem' type='usb' managed='yes'><source><vendor id='0x1d6b'/>\
             <product id='0x0001'/><address bus='1' device='2'/></source></hostdev>"
        );
        assert_eq!(Hostdev::from_element(&Element::parse(&xml).unwrap()), usb);
    }

    /// A change keeps the guest-side address, the rom and the source's
    /// attributes the model does not know.
    #[test]
    fn a_changed_hostdev_keeps_what_it_does_not_model() {
        let xml = "<hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/>\
            <source writeFiltering='no'><address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source>\
            <rom bar='off'/><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></hostdev>";
        let mut el = Element::parse(xml).unwrap();
        let mut h = Hostdev::from_element(&el);
        assert_eq!(h.pci.unwrap().to_string(), "0000:06:12.5");
        let same = el.clone();
        h.apply_to(&mut el);
        assert_eq!(el, same, "an unchanged hostdev is left alone");
        h.pci = PciAddress::parse("0000:07:00.1");
        h.managed = Some(false);
        h.apply_to(&mut el);
        let out = el.to_xml();
        assert!(out.contains("managed='no'"), "{out}");
        assert!(out.contains("<source writeFiltering='no'><address domain='0x0000' bus='0x07' slot='0x00' function='0x1'/></source>"), "{out}");
        assert!(
            out.contains("<driver name='vfio'/>") && out.contains("<rom bar='off'/>"),
            "{out}"
        );
        assert!(out.contains("<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></hostdev>"), "{out}");
    }

    /// Removing the first of two hostdevs takes its own guest address along;
    /// the second keeps its own.
    #[test]
    fn hostdevs_pair_by_device_not_by_position() {
        let xml = "<devices><hostdev mode='subsystem' type='pci' managed='yes'><source>\
            <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>\
            <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></hostdev>\
            <hostdev mode='subsystem' type='pci' managed='yes'><source>\
            <address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></source>\
            <address type='pci' domain='0x0000' bus='0x00' slot='0x08' function='0x0'/></hostdev>\
            <memballoon model='none'/></devices>";
        let mut devices = Element::parse(xml).unwrap();
        let second = Hostdev::from_element(devices.children_named("hostdev").nth(1).unwrap());
        sync(&mut devices, std::slice::from_ref(&second));
        let out = devices.to_xml();
        assert_eq!(devices.children_named("hostdev").count(), 1, "{out}");
        assert!(out.contains("bus='0x02' slot='0x00' function='0x0'/></source><address type='pci' domain='0x0000' bus='0x00' slot='0x08'"), "{out}");
        assert!(!out.contains("slot='0x07'"), "{out}");
        let mut new = second.clone();
        new.pci = PciAddress::parse("0000:03:00.0");
        sync(&mut devices, &[second, new]);
        let out = devices.to_xml();
        assert!(
            out.contains("bus='0x03' slot='0x00' function='0x0'/></source></hostdev><memballoon"),
            "{out}"
        );
    }

    /// libvirt's own forms (its qemuxml2xml suite has them; the copy here
    /// has none): each survives the model unchanged, in a whole domain too.
    #[test]
    fn libvirt_hostdev_forms_round_trip() {
        let forms = [
            "<hostdev mode='subsystem' type='pci' managed='yes'><driver name='vfio'/><source>\
             <address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/></source>\
             <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></hostdev>",
            "<hostdev mode='subsystem' type='usb' managed='no'><source startupPolicy='optional'>\
             <vendor id='0x1234'/><product id='0xbeef'/></source><boot order='2'/></hostdev>",
            "<hostdev mode='subsystem' type='usb'><source><address bus='14' device='6'/></source></hostdev>",
            "<hostdev mode='subsystem' type='scsi' sgio='unfiltered'><source><adapter name='scsi_host0'/>\
             <address bus='0' target='0' unit='0'/></source><readonly/></hostdev>",
            "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>\
             <address uuid='53764d0e-85a0-42b4-af5c-2046b460b1dc'/></source></hostdev>",
            "<hostdev mode='capabilities' type='storage'><source><block>/dev/sdf1</block></source></hostdev>",
        ];
        let mut domain = String::from("<domain type='qemu'><name>h</name><devices>");
        for xml in forms {
            let el = Element::parse(xml).unwrap();
            let model = Hostdev::from_element(&el);
            let mut copy = el.clone();
            model.apply_to(&mut copy);
            assert_eq!(copy, el, "{xml}");
            if model.pci.is_some() || model.usb.is_some() {
                assert_eq!(Hostdev::from_element(&model.to_element()), model, "{xml}");
            }
            domain.push_str(xml);
        }
        domain.push_str("<memballoon model='virtio'/></devices></domain>");
        let (d, tree) = crate::xml::domain::Domain::parse(&domain).unwrap();
        assert_eq!(d.hostdevs.len(), forms.len());
        assert_eq!(d.hostdevs[1].usb.unwrap().product, Some(0xbeef));
        let mut edited = tree.clone();
        d.apply_to(&mut edited);
        assert_eq!(edited.child("devices"), tree.child("devices"));
        // A new one goes after the others, before the balloon.
        let mut more = d.clone();
        more.hostdevs.push(Hostdev {
            mode: "subsystem".into(),
            hostdev_type: "pci".into(),
            managed: Some(true),
            pci: PciAddress::parse("0000:01:00.0"),
            usb: None,
        });
        let mut edited = tree.clone();
        more.apply_to(&mut edited);
        let out = edited.to_xml();
        assert!(out.contains("<block>/dev/sdf1</block></source></hostdev><hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev><memballoon"), "{out}");
    }
}
