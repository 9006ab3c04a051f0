//! The edits that turn a domain definition into its clone's, the way
//! `virt-clone` makes them: new name and UUID (also in SMBIOS), no title, new
//! MACs, graphics ports back to automatic, serial/console log files and the
//! guest-agent socket renamed, NVRAM and cloned disks pointed at their copies.
//! Pure tree edits: everything not named here is kept as it was.
use super::tree::Element;

/// Where a cloned disk's data now lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDiskSource {
    /// The new file (or block device) path.
    pub path: String,
    /// The pool and volume name, for disks of `type='volume'`.
    pub pool: String,
    pub volume: String,
    /// The new image format (`qcow2` for a linked clone of a raw disk).
    pub format: String,
}

/// Everything that differs between a domain and its clone.
#[derive(Debug, Clone, Default)]
pub struct CloneEdits {
    pub old_name: String,
    pub name: String,
    pub uuid: String,
    /// One MAC per `<interface>`, in document order.
    pub macs: Vec<String>,
    /// `(index among the <disk> elements, new source)` for every cloned disk.
    pub disks: Vec<(usize, NewDiskSource)>,
    /// The new NVRAM file, when the domain has one.
    pub nvram: Option<String>,
}

/// `path` with the old VM name replaced by the new one in its file name, or
/// with `-clone`-style suffix `-{new}` before the extension when the name does
/// not appear: `/var/log/web.log` → `/var/log/web-clone.log`.
pub fn rename_path(path: &str, old_name: &str, new_name: &str) -> String {
    let (dir, file) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    if !old_name.is_empty() && file.contains(old_name) {
        return format!("{dir}{}", file.replacen(old_name, new_name, 1));
    }
    let (stem, ext) = split_ext(file);
    format!("{dir}{stem}-{new_name}{ext}")
}

/// `web.qcow2` → (`web`, `.qcow2`); `disk` → (`disk`, ``). As virt-clone,
/// only up to 7 characters after the dot are an extension: `disk.20240101`
/// has none.
pub fn split_ext(file: &str) -> (&str, &str) {
    match file.rfind('.') {
        Some(i) if i > 0 && file.len() - i - 1 <= 7 => (&file[..i], &file[i..]),
        _ => (file, ""),
    }
}

/// Apply `edits` to the domain definition `root` (from the inactive XML).
pub fn apply_clone(root: &mut Element, edits: &CloneEdits) {
    root.remove_attr("id");
    root.ensure_child("name").set_text(edits.name.clone());
    root.ensure_child("uuid").set_text(edits.uuid.clone());
    // virt-clone drops the title: tools that list VMs by title would show
    // the clone as its source.
    root.remove_elements(|e| e.name == "title");
    if let Some(system) = root.path_mut(&["sysinfo", "system"]) {
        for entry in system.elements_mut() {
            if entry.name == "entry" && entry.attr("name") == Some("uuid") {
                entry.set_text(edits.uuid.clone());
            }
        }
    }
    if let (Some(path), Some(nvram)) = (&edits.nvram, root.path_mut(&["os", "nvram"])) {
        nvram.set_text(path.clone());
    }
    let Some(devices) = root.child_mut("devices") else {
        return;
    };
    let mut disk_index = 0;
    let mut nic_index = 0;
    for dev in devices.elements_mut() {
        match dev.name.as_str() {
            "disk" => {
                if let Some((_, src)) = edits.disks.iter().find(|(i, _)| *i == disk_index) {
                    set_disk_source(dev, src);
                }
                disk_index += 1;
            }
            "interface" => {
                if let Some(mac) = edits.macs.get(nic_index) {
                    dev.ensure_child("mac").set_attr("address", mac.clone());
                }
                // vnetN names are the host's, given at start.
                dev.remove_elements(|e| e.name == "target" && e.attr("dev").is_some());
                nic_index += 1;
            }
            "graphics" => {
                for port in ["port", "tlsPort", "websocket"] {
                    if dev.remove_attr(port).is_some() && port == "websocket" {
                        dev.set_attr("websocket", "-1");
                    }
                }
                if matches!(dev.attr("type"), Some("vnc" | "spice")) {
                    dev.set_attr("autoport", "yes");
                }
            }
            "serial" | "console" | "parallel" => {
                if dev.attr("type") == Some("file") {
                    if let Some(source) = dev.child_mut("source") {
                        if let Some(path) = source.attr("path").map(str::to_owned) {
                            source
                                .set_attr("path", rename_path(&path, &edits.old_name, &edits.name));
                        }
                    }
                }
                if let Some(log) = dev.child_mut("log") {
                    if let Some(file) = log.attr("file").map(str::to_owned) {
                        log.set_attr("file", rename_path(&file, &edits.old_name, &edits.name));
                    }
                }
            }
            "channel" if dev.attr("type") == Some("unix") => {
                let target = dev
                    .child("target")
                    .and_then(|t| t.attr("name"))
                    .unwrap_or_default()
                    .to_owned();
                if let Some(source) = dev.child_mut("source") {
                    if let Some(path) = source.attr("path").map(str::to_owned) {
                        if !target.is_empty() && path.contains(&target) {
                            // As virt-clone: libvirt names the socket of a
                            // named channel after the domain when no path
                            // is given.
                            source.remove_attr("path");
                        } else {
                            // virt-clone keeps this path, and the two VMs
                            // then cannot both run: one socket each.
                            source
                                .set_attr("path", rename_path(&path, &edits.old_name, &edits.name));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn set_disk_source(disk: &mut Element, src: &NewDiskSource) {
    let disk_type = disk.attr("type").unwrap_or("file").to_owned();
    // The source's backing chain belongs to the source.
    disk.remove_elements(|e| e.name == "backingStore");
    let source = disk.ensure_child("source");
    match disk_type.as_str() {
        "volume" => {
            source.set_attr("pool", src.pool.clone());
            source.set_attr("volume", src.volume.clone());
        }
        "block" => source.set_attr("dev", src.path.clone()),
        _ => {
            disk.set_attr("type", "file");
            let source = disk.ensure_child("source");
            source.remove_attr("dev");
            source.set_attr("file", src.path.clone());
        }
    }
    let driver = disk.ensure_child("driver");
    if driver.attr("name").is_none() {
        driver.set_attr("name", "qemu");
    }
    driver.set_attr("type", src.format.clone());
}

/// The MAC of every `<interface>`, in order (`None` where it has none yet).
pub fn interface_macs(root: &Element) -> Vec<Option<String>> {
    root.child("devices")
        .map(|d| {
            d.children_named("interface")
                .map(|i| {
                    i.child("mac")
                        .and_then(|m| m.attr("address"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = "<domain type='kvm' id='3'><name>web</name><uuid>u-1</uuid><title>Web</title>\
<sysinfo type='smbios'><system><entry name='manufacturer'>x</entry><entry name='uuid'>u-1</entry></system></sysinfo>\
<os><type>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram></os>\
<devices>\
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/web.img'/><backingStore/><target dev='vda'/></disk>\
<disk type='file' device='cdrom'><source file='/iso/d.iso'/><target dev='sda'/><readonly/></disk>\
<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='p' volume='web-data.qcow2'/><target dev='vdb'/></disk>\
<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/><target dev='vnet3'/></interface>\
<interface type='bridge'><source bridge='br0'/></interface>\
<serial type='file'><source path='/var/log/web-serial.log'/><target port='0'/></serial>\
<console type='pty'><log file='/var/log/console.log'/></console>\
<channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/web.org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\
<channel type='unix'><source mode='bind' path='/run/web/app.sock'/><target type='virtio' name='app.0'/></channel>\
<graphics type='vnc' port='5901' autoport='no' listen='0.0.0.0'><listen type='address' address='0.0.0.0'/></graphics>\
<memballoon model='virtio'/>\
</devices></domain>";

    #[test]
    fn a_clone_gets_new_identity_devices_and_paths_and_keeps_the_rest() {
        let mut root = Element::parse(XML).unwrap();
        let edits = CloneEdits {
            old_name: "web".into(),
            name: "web-clone".into(),
            uuid: "u-2".into(),
            macs: vec!["52:54:00:aa:bb:01".into(), "52:54:00:aa:bb:02".into()],
            disks: vec![
                (
                    0,
                    NewDiskSource {
                        path: "/img/web-clone.qcow2".into(),
                        pool: "p".into(),
                        volume: "web-clone.qcow2".into(),
                        format: "qcow2".into(),
                    },
                ),
                (
                    2,
                    NewDiskSource {
                        path: "/p/web-clone-data.qcow2".into(),
                        pool: "p".into(),
                        volume: "web-clone-data.qcow2".into(),
                        format: "qcow2".into(),
                    },
                ),
            ],
            nvram: Some("/var/lib/libvirt/qemu/nvram/web-clone_VARS.fd".into()),
        };
        apply_clone(&mut root, &edits);
        let x = root.to_xml();
        assert!(!x.contains("id='3'"), "{x}");
        assert!(x.contains("<name>web-clone</name><uuid>u-2</uuid>"), "{x}");
        assert!(x.contains("<entry name='uuid'>u-2</entry>"), "{x}");
        assert!(x.contains("<entry name='manufacturer'>x</entry>"), "{x}");
        assert!(x.contains("<nvram>/var/lib/libvirt/qemu/nvram/web-clone_VARS.fd</nvram>"));
        assert!(x.contains("<driver name='qemu' type='qcow2'/><source file='/img/web-clone.qcow2'/><target dev='vda'/>"), "{x}");
        assert!(!x.contains("backingStore"));
        assert!(
            x.contains("<source file='/iso/d.iso'/>"),
            "the ISO is shared: {x}"
        );
        assert!(
            x.contains("<source pool='p' volume='web-clone-data.qcow2'/>"),
            "{x}"
        );
        assert!(x.contains("<mac address='52:54:00:aa:bb:01'/>"));
        assert!(
            x.contains("<mac address='52:54:00:aa:bb:02'/><source bridge='br0'/>")
                || x.contains("<source bridge='br0'/><mac address='52:54:00:aa:bb:02'/>"),
            "{x}"
        );
        assert!(!x.contains("vnet3"));
        assert!(x.contains("/var/log/web-clone-serial.log"));
        assert!(
            x.contains("<log file='/var/log/console-web-clone.log'/>"),
            "{x}"
        );
        assert!(!x.contains("<title>"), "{x}");
        assert!(
            x.contains(
                "<source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/>"
            ),
            "{x}"
        );
        assert!(
            x.contains("<source mode='bind' path='/run/web/app-web-clone.sock'/>"),
            "{x}"
        );
        assert!(
            x.contains("<graphics type='vnc' autoport='yes' listen='0.0.0.0'>"),
            "{x}"
        );
        assert!(x.contains("<memballoon model='virtio'/>"));
    }

    #[test]
    fn paths_are_renamed_like_virt_clone() {
        assert_eq!(
            rename_path("/a/web.qcow2", "web", "web-clone"),
            "/a/web-clone.qcow2"
        );
        assert_eq!(rename_path("/a/disk.img", "web", "db"), "/a/disk-db.img");
        assert_eq!(rename_path("disk", "web", "db"), "disk-db");
        assert_eq!(split_ext(".hidden"), (".hidden", ""));
        assert_eq!(split_ext("disk.20240101"), ("disk.20240101", ""));
        assert_eq!(split_ext("disk.vmdk"), ("disk", ".vmdk"));
    }
}
