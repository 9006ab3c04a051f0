//! The install phase of a VM, as virt-install runs it: the one boot that
//! starts the installer. The persistent definition is the *final* phase
//! (boot from disk, CD-ROM drive empty, no installer kernel, `on_reboot`
//! restart); an [`InstallPhase`] is what the install boot changes on top of
//! it. Written out, it is the record a defined-but-not-yet-installed VM keeps
//! in its own `<metadata>` (namespace [`NS`]) until its first start.
use super::domain::Domain;
use super::tree::Element;

/// The metadata namespace of the install-phase record.
pub const NS: &str = "https://virtscript.dev/xmlns/install/1";
/// The prefix the record is written with.
pub const PREFIX: &str = "vsi";

/// What the install boot changes on the final definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallPhase {
    /// `on_reboot` during the install: `destroy` (the installer's reboot
    /// ends the install boot; the next start is the final definition).
    pub on_reboot: String,
    /// `<os><boot dev=.../>` for the install boot (empty: none, as for a
    /// kernel boot or per-device boot order).
    pub boot: Vec<String>,
    /// The installer kernel, initrd and command line.
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    /// Media in CD-ROM drives for the install: (target, source file); the
    /// drives stay in the final definition, empty.
    pub media: Vec<(String, String)>,
    /// Volumes (paths) made only for the install boot (a fetched kernel and
    /// initrd), removed once the install boot has started.
    pub scratch: Vec<String>,
}

impl InstallPhase {
    /// The install boot's definition: `final_domain` with this phase on it.
    pub fn apply(&self, d: &mut Domain) {
        d.on_reboot = Some(self.on_reboot.clone());
        d.os.boot = self.boot.clone();
        if self.kernel.is_some() {
            d.os.kernel = self.kernel.clone();
            d.os.initrd = self.initrd.clone();
            d.os.cmdline = self.cmdline.clone();
        }
        for (target, source) in &self.media {
            if let Some(disk) = d.disks.iter_mut().find(|x| x.target == *target) {
                disk.source = Some(source.clone());
            }
        }
    }

    /// The record (without namespace; `metadata::with_ns` adds it):
    /// `<install on_reboot='destroy'><boot dev='cdrom'/>...<media target='sda'
    /// source='/isos/x.iso'/><scratch path='...'/></install>`.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("install").with_attr("on_reboot", self.on_reboot.clone());
        for dev in &self.boot {
            el.push(Element::new("boot").with_attr("dev", dev.clone()));
        }
        for (name, value) in [
            ("kernel", &self.kernel),
            ("initrd", &self.initrd),
            ("cmdline", &self.cmdline),
        ] {
            if let Some(v) = value {
                el.push(Element::new(name).with_text(v.clone()));
            }
        }
        for (target, source) in &self.media {
            el.push(
                Element::new("media")
                    .with_attr("target", target.clone())
                    .with_attr("source", source.clone()),
            );
        }
        for path in &self.scratch {
            el.push(Element::new("scratch").with_attr("path", path.clone()));
        }
        el
    }

    /// The record read back (stripped of its namespace, `metadata::find`).
    pub fn from_element(el: &Element) -> InstallPhase {
        let text = |name: &str| el.child(name).map(|e| e.text());
        InstallPhase {
            on_reboot: el.attr("on_reboot").unwrap_or("destroy").to_owned(),
            boot: el
                .children_named("boot")
                .filter_map(|b| b.attr("dev").map(str::to_owned))
                .collect(),
            kernel: text("kernel"),
            initrd: text("initrd"),
            cmdline: text("cmdline"),
            media: el
                .children_named("media")
                .filter_map(|m| Some((m.attr("target")?.to_owned(), m.attr("source")?.to_owned())))
                .collect(),
            scratch: el
                .children_named("scratch")
                .filter_map(|s| s.attr("path").map(str::to_owned))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::domain::Disk;

    fn phase() -> InstallPhase {
        InstallPhase {
            on_reboot: "destroy".into(),
            boot: vec!["cdrom".into(), "hd".into()],
            kernel: Some("/boot/k".into()),
            initrd: Some("/boot/i".into()),
            cmdline: Some("console=ttyS0 a<b".into()),
            media: vec![("sda".into(), "/isos/x.iso".into())],
            scratch: vec!["/boot/k".into()],
        }
    }

    #[test]
    fn the_record_round_trips() {
        let p = phase();
        let el = p.to_element();
        let back = Element::parse(&el.to_xml()).unwrap();
        assert_eq!(InstallPhase::from_element(&back), p);
    }

    #[test]
    fn applying_puts_the_media_and_kernel_in_and_nothing_else() {
        let mut d = Domain::new("a", "qemu");
        d.os.boot = vec!["hd".into()];
        d.disks.push(Disk {
            device: "cdrom".into(),
            target: "sda".into(),
            ..Disk::default()
        });
        d.disks.push(Disk {
            device: "cdrom".into(),
            target: "sdb".into(),
            ..Disk::default()
        });
        phase().apply(&mut d);
        assert_eq!(d.on_reboot.as_deref(), Some("destroy"));
        assert_eq!(d.os.boot, ["cdrom", "hd"]);
        assert_eq!(d.os.kernel.as_deref(), Some("/boot/k"));
        assert_eq!(d.disks[0].source.as_deref(), Some("/isos/x.iso"));
        assert_eq!(d.disks[1].source, None);
    }
}
