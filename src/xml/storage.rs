//! Storage pool (`<pool>`) and volume (`<volume>`) XML.
//!
//! The typed structs hold what scripts read and change; each keeps the lossless
//! [`Element`] tree it was parsed from, and [`PoolXml::to_xml`] /
//! [`VolumeXml::to_xml`] write the typed fields back into a copy of that tree.
//! A field left as parsed leaves its element untouched, so whatever we do not
//! model (`<features>`, `<auth>`, namespaced mount options, timestamps, extents,
//! comments) survives a round trip. A document built from scratch starts from an
//! empty tree and gets exactly the elements its fields ask for.
use serde::Serialize;

use super::tree::{Element, Node, TreeError};

#[derive(Debug, thiserror::Error)]
pub enum StorageXmlError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("expected a <{expected}> document, found <{found}>")]
    WrongRoot {
        expected: &'static str,
        found: String,
    },
    #[error("{field}: {problem} (got {value:?})")]
    Invalid {
        field: String,
        value: String,
        problem: String,
    },
}

/// A size as libvirt writes it: a number and an optional `unit` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Size {
    pub value: u64,
    pub unit: Option<String>,
}

impl Size {
    pub fn bytes(n: u64) -> Size {
        Size {
            value: n,
            unit: None,
        }
    }

    /// The size in bytes (libvirt units: `K`/`KiB` = 1024, `KB` = 1000, ...).
    pub fn to_bytes(&self) -> Option<u64> {
        match &self.unit {
            None => Some(self.value),
            Some(unit) => crate::runtime::units::parse_size(&format!("{}{unit}", self.value)).ok(),
        }
    }
}

/// `<permissions>`: mode, owner, group (kept as text: `-1` means "unset"), label.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Permissions {
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub label: Option<String>,
}

/// `<source><host name= port=/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceHost {
    pub name: String,
    pub port: Option<u16>,
}

/// `<source><adapter .../>` (SCSI pools): its attributes, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Adapter {
    pub attrs: Vec<(String, String)>,
}

/// A pool's `<source>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PoolSource {
    /// `<device path=.../>` (fs, logical, disk, iscsi...).
    pub devices: Vec<String>,
    /// `<dir path=.../>` (netfs: the exported directory).
    pub dir: Option<String>,
    pub hosts: Vec<SourceHost>,
    /// `<format type=.../>`: `nfs`, `cifs`, `glusterfs`, `ext4`, `lvm2`, `auto`...
    pub format: Option<String>,
    /// `<name>`: the volume group of a logical pool, the gluster volume...
    pub name: Option<String>,
    pub adapter: Option<Adapter>,
    /// `<protocol ver=.../>` (netfs NFS version).
    pub protocol_ver: Option<String>,
}

impl PoolSource {
    fn is_empty(&self) -> bool {
        *self == PoolSource::default()
    }
}

/// A pool's `<target>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PoolTarget {
    pub path: Option<String>,
    pub permissions: Option<Permissions>,
}

/// `<pool type=...>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolXml {
    /// `dir`, `fs`, `netfs`, `logical`, `disk`, `iscsi`, `scsi`, `rbd`, ...
    pub pool_type: String,
    /// Empty when the document has no `<name>` (a logical pool named by its source).
    pub name: String,
    pub uuid: Option<String>,
    pub capacity: Option<Size>,
    pub allocation: Option<Size>,
    pub available: Option<Size>,
    pub source: PoolSource,
    pub target: PoolTarget,
    #[serde(skip)]
    tree: Element,
}

/// `<encryption format=...><secret type= uuid=|usage=/>...</encryption>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Encryption {
    pub format: String,
    pub secrets: Vec<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Secret {
    pub secret_type: String,
    pub uuid: Option<String>,
    pub usage: Option<String>,
}

/// A volume's `<target>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VolumeTarget {
    pub path: Option<String>,
    /// `raw`, `qcow2`, `luks`, `iso`, `vmdk`, `none`...
    pub format: Option<String>,
    pub permissions: Option<Permissions>,
    /// qcow2 compatibility level: `0.10` or `1.1`.
    pub compat: Option<String>,
    /// `<features>` children: `lazy_refcounts`, `extended_l2`.
    pub features: Vec<String>,
    pub nocow: bool,
    pub cluster_size: Option<Size>,
    pub encryption: Option<Encryption>,
}

/// `<backingStore>`: the image this volume is an overlay of.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct BackingStore {
    pub path: Option<String>,
    pub format: Option<String>,
    pub permissions: Option<Permissions>,
}

/// `<volume type=...>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeXml {
    /// `file`, `block`, `dir`, `network`, `netdir`, `ploop` (absent: the pool decides).
    pub vol_type: Option<String>,
    pub name: String,
    pub key: Option<String>,
    pub capacity: Option<Size>,
    pub allocation: Option<Size>,
    pub physical: Option<Size>,
    pub target: VolumeTarget,
    pub backing: Option<BackingStore>,
    #[serde(skip)]
    tree: Element,
}

// ---------------------------------------------------------------- reading

fn text_of(el: &Element, name: &str) -> Option<String> {
    el.child(name).map(|c| c.text().trim().to_owned())
}

fn size_of(el: &Element, name: &str) -> Result<Option<Size>, StorageXmlError> {
    let Some(c) = el.child(name) else {
        return Ok(None);
    };
    let text = c.text().trim().to_owned();
    let value = text.parse::<u64>().map_err(|_| StorageXmlError::Invalid {
        field: name.to_owned(),
        value: text.clone(),
        problem: "expected a whole number".into(),
    })?;
    Ok(Some(Size {
        value,
        unit: c.attr("unit").map(str::to_owned),
    }))
}

fn permissions_of(el: &Element) -> Option<Permissions> {
    el.child("permissions").map(|p| Permissions {
        mode: text_of(p, "mode"),
        owner: text_of(p, "owner"),
        group: text_of(p, "group"),
        label: text_of(p, "label"),
    })
}

fn attr_of(el: &Element, child: &str, attr: &str) -> Option<String> {
    el.child(child)
        .and_then(|c| c.attr(attr))
        .map(str::to_owned)
}

// ---------------------------------------------------------------- writing

/// Set a child's text (keeping its attributes), add it, or remove it (None).
fn sync_text(parent: &mut Element, name: &str, value: Option<&str>) {
    match value {
        None => {
            parent.remove_elements(|e| e.name == name);
        }
        Some(v) => {
            let child = parent.ensure_child(name);
            if child.text().trim() != v {
                child.set_text(v);
            }
        }
    }
}

fn sync_size(parent: &mut Element, name: &str, value: Option<&Size>) {
    match value {
        None => {
            parent.remove_elements(|e| e.name == name);
        }
        Some(size) => {
            let child = parent.ensure_child(name);
            let same = child.text().trim().parse::<u64>().ok() == Some(size.value)
                && child.attr("unit") == size.unit.as_deref();
            if !same {
                child.set_text(size.value.to_string());
                match &size.unit {
                    Some(u) => child.set_attr("unit", u.clone()),
                    None => {
                        child.remove_attr("unit");
                    }
                }
            }
        }
    }
}

/// `<child attr='value'/>`: set the attribute, or remove the child (None).
fn sync_attr_child(parent: &mut Element, child: &str, attr: &str, value: Option<&str>) {
    match value {
        None => {
            parent.remove_elements(|e| e.name == child);
        }
        Some(v) => {
            let c = parent.ensure_child(child);
            if c.attr(attr) != Some(v) {
                c.set_attr(attr, v);
            }
        }
    }
}

fn sync_opt_attr(el: &mut Element, attr: &str, value: Option<&str>) {
    match value {
        Some(v) => {
            if el.attr(attr) != Some(v) {
                el.set_attr(attr, v);
            }
        }
        None => {
            el.remove_attr(attr);
        }
    }
}

fn sync_permissions(parent: &mut Element, value: Option<&Permissions>) {
    match value {
        None => {
            parent.remove_elements(|e| e.name == "permissions");
        }
        Some(p) => {
            if permissions_of(parent).as_ref() == Some(p) {
                return;
            }
            let el = parent.ensure_child("permissions");
            sync_text(el, "mode", p.mode.as_deref());
            sync_text(el, "owner", p.owner.as_deref());
            sync_text(el, "group", p.group.as_deref());
            sync_text(el, "label", p.label.as_deref());
        }
    }
}

/// Replace the children named `name` by `wanted` when the list differs; `same`
/// compares an existing child with a wanted item, `make` builds a new child.
fn sync_list<T>(
    parent: &mut Element,
    name: &str,
    wanted: &[T],
    same: impl Fn(&Element, &T) -> bool,
    make: impl Fn(&T) -> Element,
) {
    let existing: Vec<&Element> = parent.children_named(name).collect();
    let unchanged =
        existing.len() == wanted.len() && existing.iter().zip(wanted).all(|(e, w)| same(e, w));
    if unchanged {
        return;
    }
    // Keep the position of the first old child for the new ones.
    let at = parent
        .children
        .iter()
        .position(|n| matches!(n, Node::Element(e) if e.name == name));
    parent.remove_elements(|e| e.name == name);
    let new: Vec<Node> = wanted.iter().map(|w| Node::Element(make(w))).collect();
    match at {
        Some(i) if i <= parent.children.len() => {
            parent.children.splice(i..i, new);
        }
        _ => parent.children.extend(new),
    }
}

// ---------------------------------------------------------------- pools

impl PoolXml {
    /// A new pool document with nothing but its type and name.
    pub fn new(pool_type: &str, name: &str) -> PoolXml {
        PoolXml {
            pool_type: pool_type.to_owned(),
            name: name.to_owned(),
            uuid: None,
            capacity: None,
            allocation: None,
            available: None,
            source: PoolSource::default(),
            target: PoolTarget::default(),
            tree: Element::new("pool"),
        }
    }

    pub fn parse(xml: &str) -> Result<PoolXml, StorageXmlError> {
        let tree = Element::parse(xml)?;
        if tree.name != "pool" {
            return Err(StorageXmlError::WrongRoot {
                expected: "pool",
                found: tree.name,
            });
        }
        let source = match tree.child("source") {
            None => PoolSource::default(),
            Some(s) => PoolSource {
                devices: s
                    .children_named("device")
                    .filter_map(|d| d.attr("path").map(str::to_owned))
                    .collect(),
                dir: attr_of(s, "dir", "path"),
                hosts: s
                    .children_named("host")
                    .map(|h| {
                        let port =
                            match h.attr("port") {
                                None => Ok(None),
                                Some(p) => p.parse::<u16>().map(Some).map_err(|_| {
                                    StorageXmlError::Invalid {
                                        field: "source.host.port".into(),
                                        value: p.to_owned(),
                                        problem: "expected a port number".into(),
                                    }
                                }),
                            }?;
                        Ok(SourceHost {
                            name: h.attr("name").unwrap_or_default().to_owned(),
                            port,
                        })
                    })
                    .collect::<Result<_, StorageXmlError>>()?,
                format: attr_of(s, "format", "type"),
                name: text_of(s, "name"),
                adapter: s.child("adapter").map(|a| Adapter {
                    attrs: a.attrs.clone(),
                }),
                protocol_ver: attr_of(s, "protocol", "ver"),
            },
        };
        let target = match tree.child("target") {
            None => PoolTarget::default(),
            Some(t) => PoolTarget {
                path: text_of(t, "path"),
                permissions: permissions_of(t),
            },
        };
        Ok(PoolXml {
            pool_type: tree.attr("type").unwrap_or_default().to_owned(),
            name: text_of(&tree, "name").unwrap_or_default(),
            uuid: text_of(&tree, "uuid"),
            capacity: size_of(&tree, "capacity")?,
            allocation: size_of(&tree, "allocation")?,
            available: size_of(&tree, "available")?,
            source,
            target,
            tree,
        })
    }

    /// The document with the typed fields written into the tree it came from.
    pub fn to_element(&self) -> Element {
        let mut t = self.tree.clone();
        t.name = "pool".into();
        sync_opt_attr(
            &mut t,
            "type",
            Some(self.pool_type.as_str()).filter(|s| !s.is_empty()),
        );
        if !self.name.is_empty() || t.child("name").is_some() {
            sync_text(&mut t, "name", Some(&self.name));
        }
        sync_text(&mut t, "uuid", self.uuid.as_deref());
        sync_size(&mut t, "capacity", self.capacity.as_ref());
        sync_size(&mut t, "allocation", self.allocation.as_ref());
        sync_size(&mut t, "available", self.available.as_ref());
        if !self.source.is_empty() || t.child("source").is_some() {
            let s = t.ensure_child("source");
            let src = &self.source;
            sync_list(
                s,
                "device",
                &src.devices,
                |e, p| e.attr("path") == Some(p.as_str()),
                |p| Element::new("device").with_attr("path", p.clone()),
            );
            sync_attr_child(s, "dir", "path", src.dir.as_deref());
            sync_list(
                s,
                "host",
                &src.hosts,
                |e, h| {
                    e.attr("name") == Some(h.name.as_str())
                        && e.attr("port").map(str::to_owned) == h.port.map(|p| p.to_string())
                },
                |h| {
                    let el = Element::new("host").with_attr("name", h.name.clone());
                    match h.port {
                        Some(p) => el.with_attr("port", p.to_string()),
                        None => el,
                    }
                },
            );
            sync_attr_child(s, "format", "type", src.format.as_deref());
            sync_text(s, "name", src.name.as_deref());
            match &src.adapter {
                None => {
                    s.remove_elements(|e| e.name == "adapter");
                }
                Some(a) => {
                    let el = s.ensure_child("adapter");
                    if el.attrs != a.attrs {
                        el.attrs = a.attrs.clone();
                    }
                }
            }
            sync_attr_child(s, "protocol", "ver", src.protocol_ver.as_deref());
        }
        if self.target != PoolTarget::default() || t.child("target").is_some() {
            let tg = t.ensure_child("target");
            sync_text(tg, "path", self.target.path.as_deref());
            sync_permissions(tg, self.target.permissions.as_ref());
        }
        t
    }

    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }

    /// The lossless tree as parsed (unchanged by edits of the typed fields).
    pub fn tree(&self) -> &Element {
        &self.tree
    }
}

// ---------------------------------------------------------------- volumes

fn encryption_of(el: &Element) -> Option<Encryption> {
    el.child("encryption").map(|e| Encryption {
        format: e.attr("format").unwrap_or_default().to_owned(),
        secrets: e
            .children_named("secret")
            .map(|s| Secret {
                secret_type: s.attr("type").unwrap_or_default().to_owned(),
                uuid: s.attr("uuid").map(str::to_owned),
                usage: s.attr("usage").map(str::to_owned),
            })
            .collect(),
    })
}

fn backing_of(el: &Element) -> Option<BackingStore> {
    el.child("backingStore").map(|b| BackingStore {
        path: text_of(b, "path"),
        format: attr_of(b, "format", "type"),
        permissions: permissions_of(b),
    })
}

impl VolumeXml {
    /// A new volume document with nothing but its name.
    pub fn new(name: &str) -> VolumeXml {
        VolumeXml {
            vol_type: None,
            name: name.to_owned(),
            key: None,
            capacity: None,
            allocation: None,
            physical: None,
            target: VolumeTarget::default(),
            backing: None,
            tree: Element::new("volume"),
        }
    }

    pub fn parse(xml: &str) -> Result<VolumeXml, StorageXmlError> {
        let tree = Element::parse(xml)?;
        if tree.name != "volume" {
            return Err(StorageXmlError::WrongRoot {
                expected: "volume",
                found: tree.name,
            });
        }
        let target = match tree.child("target") {
            None => VolumeTarget::default(),
            Some(t) => VolumeTarget {
                path: text_of(t, "path"),
                format: attr_of(t, "format", "type"),
                permissions: permissions_of(t),
                compat: text_of(t, "compat"),
                features: t
                    .child("features")
                    .map(|f| f.elements().map(|e| e.name.clone()).collect())
                    .unwrap_or_default(),
                nocow: t.child("nocow").is_some(),
                cluster_size: size_of(t, "clusterSize")?,
                encryption: encryption_of(t),
            },
        };
        Ok(VolumeXml {
            vol_type: tree.attr("type").map(str::to_owned),
            name: text_of(&tree, "name").unwrap_or_default(),
            key: text_of(&tree, "key"),
            capacity: size_of(&tree, "capacity")?,
            allocation: size_of(&tree, "allocation")?,
            physical: size_of(&tree, "physical")?,
            backing: backing_of(&tree),
            target,
            tree,
        })
    }

    pub fn to_element(&self) -> Element {
        let mut t = self.tree.clone();
        t.name = "volume".into();
        sync_opt_attr(&mut t, "type", self.vol_type.as_deref());
        sync_text(&mut t, "name", Some(&self.name));
        sync_text(&mut t, "key", self.key.as_deref());
        sync_size(&mut t, "capacity", self.capacity.as_ref());
        sync_size(&mut t, "allocation", self.allocation.as_ref());
        sync_size(&mut t, "physical", self.physical.as_ref());
        if self.target != VolumeTarget::default() || t.child("target").is_some() {
            let tg = t.ensure_child("target");
            let want = &self.target;
            sync_text(tg, "path", want.path.as_deref());
            sync_attr_child(tg, "format", "type", want.format.as_deref());
            sync_permissions(tg, want.permissions.as_ref());
            sync_text(tg, "compat", want.compat.as_deref());
            let features: Vec<String> = tg
                .child("features")
                .map(|f| f.elements().map(|e| e.name.clone()).collect())
                .unwrap_or_default();
            if features != want.features {
                let had = tg.child("features").is_some();
                tg.remove_elements(|e| e.name == "features");
                if !want.features.is_empty() || had {
                    let mut f = Element::new("features");
                    for name in &want.features {
                        f.push(Element::new(name.clone()));
                    }
                    tg.push(f);
                }
            }
            if want.nocow != tg.child("nocow").is_some() {
                if want.nocow {
                    tg.push(Element::new("nocow"));
                } else {
                    tg.remove_elements(|e| e.name == "nocow");
                }
            }
            sync_size(tg, "clusterSize", want.cluster_size.as_ref());
            if encryption_of(tg) != want.encryption {
                match &want.encryption {
                    None => {
                        tg.remove_elements(|e| e.name == "encryption");
                    }
                    Some(enc) => {
                        let el = tg.ensure_child("encryption");
                        el.set_attr("format", enc.format.clone());
                        sync_list(
                            el,
                            "secret",
                            &enc.secrets,
                            |e, s| {
                                e.attr("type") == Some(s.secret_type.as_str())
                                    && e.attr("uuid") == s.uuid.as_deref()
                                    && e.attr("usage") == s.usage.as_deref()
                            },
                            |s| {
                                let mut e =
                                    Element::new("secret").with_attr("type", s.secret_type.clone());
                                if let Some(u) = &s.uuid {
                                    e.set_attr("uuid", u.clone());
                                }
                                if let Some(u) = &s.usage {
                                    e.set_attr("usage", u.clone());
                                }
                                e
                            },
                        );
                    }
                }
            }
        }
        if backing_of(&t) != self.backing {
            match &self.backing {
                None => {
                    t.remove_elements(|e| e.name == "backingStore");
                }
                Some(b) => {
                    let el = t.ensure_child("backingStore");
                    sync_text(el, "path", b.path.as_deref());
                    sync_attr_child(el, "format", "type", b.format.as_deref());
                    sync_permissions(el, b.permissions.as_ref());
                }
            }
        }
        t
    }

    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }

    pub fn tree(&self) -> &Element {
        &self.tree
    }

    pub fn capacity_bytes(&self) -> Option<u64> {
        self.capacity.as_ref().and_then(Size::to_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(folder: &str) -> Vec<(String, String)> {
        crate::xml::conformance_documents(folder)
    }

    #[test]
    fn every_pool_document_round_trips_losslessly() {
        for folder in ["storagepoolxml2xmlin", "storagepoolxml2xmlout"] {
            for (file, xml) in documents(folder) {
                let pool = PoolXml::parse(&xml).unwrap_or_else(|e| panic!("{file}: {e}"));
                let again = Element::parse(&pool.to_xml()).unwrap();
                assert_eq!(
                    again.normalized(),
                    pool.tree().normalized(),
                    "{folder}/{file}"
                );
                let reparsed = PoolXml::parse(&pool.to_xml()).unwrap();
                assert_eq!(reparsed.source, pool.source, "{file}");
                assert_eq!(reparsed.target, pool.target, "{file}");
            }
        }
    }

    #[test]
    fn every_volume_document_round_trips_losslessly() {
        for folder in ["storagevolxml2xmlin", "storagevolxml2xmlout"] {
            for (file, xml) in documents(folder) {
                let vol = VolumeXml::parse(&xml).unwrap_or_else(|e| panic!("{file}: {e}"));
                let again = Element::parse(&vol.to_xml()).unwrap();
                assert_eq!(
                    again.normalized(),
                    vol.tree().normalized(),
                    "{folder}/{file}"
                );
                let reparsed = VolumeXml::parse(&vol.to_xml()).unwrap();
                assert_eq!(reparsed.target, vol.target, "{file}");
                assert_eq!(reparsed.backing, vol.backing, "{file}");
            }
        }
    }

    #[test]
    fn typed_fields_read_libvirt_documents() {
        let vol = VolumeXml::parse(include_str!(
            "../../../shared/conformance/libvirt/storagevolxml2xmlin/vol-qcow2-1.1.xml"
        ))
        .unwrap();
        assert_eq!(vol.name, "OtherDemo.img");
        assert_eq!(vol.capacity_bytes(), Some(5 << 30));
        assert_eq!(vol.target.format.as_deref(), Some("qcow2"));
        let backing = vol.backing.as_ref().unwrap();
        assert_eq!(
            backing.path.as_deref(),
            Some("/var/lib/libvirt/images/BaseDemo.img")
        );
        assert_eq!(backing.format.as_deref(), Some("raw"));
        let enc = vol.target.encryption.as_ref().unwrap();
        assert_eq!(enc.format, "qcow");
        assert_eq!(enc.secrets[0].secret_type, "passphrase");

        let pool = PoolXml::parse(include_str!(
            "../../../shared/conformance/libvirt/storagepoolxml2xmlin/pool-logical-create.xml"
        ))
        .unwrap();
        assert_eq!(pool.pool_type, "logical");
        assert_eq!(pool.source.devices.len(), 3);
        assert_eq!(pool.target.path.as_deref(), Some("/dev/HostVG"));
        assert_eq!(
            pool.target.permissions.as_ref().unwrap().mode.as_deref(),
            Some("0700")
        );
    }

    #[test]
    fn edits_keep_what_is_not_modelled() {
        let xml = "<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>n</name><source><host name='a'/><dir path='/x'/><auth type='chap' username='u'/></source><target><path>/mnt</path></target><fs:mount_opts><fs:option name='sync'/></fs:mount_opts></pool>";
        let mut pool = PoolXml::parse(xml).unwrap();
        pool.name = "m".into();
        pool.source.hosts.push(SourceHost {
            name: "b".into(),
            port: Some(2049),
        });
        pool.target.path = Some("/srv".into());
        let out = pool.to_xml();
        assert!(out.contains("<fs:option name='sync'/>"), "{out}");
        assert!(out.contains("<auth type='chap' username='u'/>"), "{out}");
        assert!(out.contains("<host name='a'/><host name='b' port='2049'/>"));
        assert!(out.contains("<name>m</name>") && out.contains("<path>/srv</path>"));

        let mut vol = VolumeXml::parse(
            "<volume><name>v</name><capacity unit='G'>5</capacity><target><format type='qcow2'/><timestamps><atime>1</atime></timestamps></target></volume>",
        )
        .unwrap();
        vol.capacity = Some(Size::bytes(10 << 30));
        vol.backing = Some(BackingStore {
            path: Some("/b.qcow2".into()),
            format: Some("qcow2".into()),
            permissions: None,
        });
        let out = vol.to_xml();
        assert!(out.contains("<capacity>10737418240</capacity>"), "{out}");
        assert!(out.contains("<timestamps><atime>1</atime></timestamps>"));
        assert!(out
            .contains("<backingStore><path>/b.qcow2</path><format type='qcow2'/></backingStore>"));
    }

    #[test]
    fn built_from_scratch() {
        let mut vol = VolumeXml::new("kvm1.qcow2");
        vol.capacity = Some(Size::bytes(10 << 30));
        vol.allocation = Some(Size::bytes(0));
        vol.target.format = Some("qcow2".into());
        vol.target.compat = Some("1.1".into());
        assert_eq!(
            vol.to_xml(),
            "<volume><name>kvm1.qcow2</name><capacity>10737418240</capacity><allocation>0</allocation><target><format type='qcow2'/><compat>1.1</compat></target></volume>"
        );
        let mut pool = PoolXml::new("dir", "images");
        pool.target.path = Some("/var/lib/images".into());
        assert_eq!(
            pool.to_xml(),
            "<pool type='dir'><name>images</name><target><path>/var/lib/images</path></target></pool>"
        );
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(matches!(
            PoolXml::parse("<volume/>"),
            Err(StorageXmlError::WrongRoot { .. })
        ));
        let err = VolumeXml::parse("<volume><name>v</name><capacity>lots</capacity></volume>")
            .unwrap_err();
        assert!(err.to_string().contains("capacity") && err.to_string().contains("lots"));
    }
}
