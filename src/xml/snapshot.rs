//! `<domainsnapshot>` documents: the fields scripts use, typed, on top of the
//! lossless tree (the embedded `<domain>`, `<cookie>`, `<inactiveDomain>` and
//! anything else are kept as they are).
use serde::Serialize;

use super::tree::{Element, TreeError};

/// `<memory snapshot='no|internal|external' file='...'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotMemory {
    pub snapshot: String,
    pub file: Option<String>,
}

/// One `<disks><disk>` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotDisk {
    /// The disk's target (`vda`) or source path.
    pub name: String,
    /// `no`, `internal`, `external` (absent: libvirt decides).
    pub snapshot: Option<String>,
    /// `file`, `block`, `network` for external ones.
    pub disk_type: Option<String>,
    /// The new overlay's file or device (external).
    pub source: Option<String>,
    /// The overlay's format (`<driver type>`).
    pub driver: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotXml {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The domain state when it was taken (`running`, `shutoff`, `disk-snapshot`, ...).
    pub state: Option<String>,
    pub parent: Option<String>,
    /// Seconds since the epoch.
    pub creation_time: Option<i64>,
    pub memory: Option<SnapshotMemory>,
    pub disks: Vec<SnapshotDisk>,
    /// `<active>1</active>` (redefinitions of a running domain's snapshot).
    pub active: Option<bool>,
    #[serde(skip)]
    tree: Element,
}

fn text(el: &Element, name: &str) -> Option<String> {
    el.child(name).map(|c| c.text())
}

fn set_text(root: &mut Element, name: &str, value: &Option<String>) {
    match value {
        Some(v) => {
            if root.child(name).map(|c| c.text()).as_deref() != Some(v) {
                root.ensure_child(name).set_text(v.clone());
            }
        }
        None => {
            root.remove_elements(|e| e.name == name);
        }
    }
}

impl SnapshotDisk {
    fn from_element(el: &Element) -> SnapshotDisk {
        let source = el.child("source");
        SnapshotDisk {
            name: el.attr("name").unwrap_or_default().to_owned(),
            snapshot: el.attr("snapshot").map(str::to_owned),
            disk_type: el.attr("type").map(str::to_owned),
            source: source
                .and_then(|s| s.attr("file").or_else(|| s.attr("dev")))
                .map(str::to_owned),
            driver: el
                .child("driver")
                .and_then(|d| d.attr("type"))
                .map(str::to_owned),
        }
    }

    fn apply_to(&self, el: &mut Element) {
        el.set_attr("name", self.name.clone());
        match &self.snapshot {
            Some(s) => el.set_attr("snapshot", s.clone()),
            None => {
                el.remove_attr("snapshot");
            }
        }
        if let Some(t) = &self.disk_type {
            el.set_attr("type", t.clone());
        }
        if let Some(d) = &self.driver {
            el.ensure_child("driver").set_attr("type", d.clone());
        }
        if let Some(src) = &self.source {
            let attr = if self.disk_type.as_deref() == Some("block") {
                "dev"
            } else {
                "file"
            };
            let s = el.ensure_child("source");
            if s.attr(attr) != Some(src.as_str()) {
                s.set_attr(attr, src.clone());
            }
        }
    }
}

impl SnapshotXml {
    /// A new snapshot request (`virDomainSnapshotCreateXML`).
    pub fn new(name: impl Into<String>) -> SnapshotXml {
        SnapshotXml {
            name: Some(name.into()),
            description: None,
            state: None,
            parent: None,
            creation_time: None,
            memory: None,
            disks: Vec::new(),
            active: None,
            tree: Element::new("domainsnapshot"),
        }
    }

    pub fn parse(xml: &str) -> Result<SnapshotXml, TreeError> {
        let tree = Element::parse(xml)?;
        let memory = tree.child("memory").map(|m| SnapshotMemory {
            snapshot: m.attr("snapshot").unwrap_or_default().to_owned(),
            file: m.attr("file").map(str::to_owned),
        });
        Ok(SnapshotXml {
            name: text(&tree, "name"),
            description: text(&tree, "description"),
            state: text(&tree, "state"),
            parent: tree.path(&["parent", "name"]).map(|n| n.text()),
            creation_time: text(&tree, "creationTime").and_then(|t| t.trim().parse().ok()),
            memory,
            disks: tree
                .child("disks")
                .map(|d| {
                    d.children_named("disk")
                        .map(SnapshotDisk::from_element)
                        .collect()
                })
                .unwrap_or_default(),
            active: text(&tree, "active").map(|a| a.trim() == "1"),
            tree,
        })
    }

    /// The embedded domain definition, as it was when the snapshot was taken.
    pub fn domain(&self) -> Option<&Element> {
        self.tree.child("domain")
    }

    /// The document: the typed fields written over the tree it was read from,
    /// so nothing unmodelled is lost.
    pub fn to_element(&self) -> Element {
        let mut root = self.tree.clone();
        set_text(&mut root, "name", &self.name);
        set_text(&mut root, "description", &self.description);
        set_text(&mut root, "state", &self.state);
        match &self.parent {
            Some(p) => {
                let parent = root.ensure_child("parent").ensure_child("name");
                if parent.text() != *p {
                    parent.set_text(p.clone());
                }
            }
            None => {
                root.remove_elements(|e| e.name == "parent");
            }
        }
        set_text(
            &mut root,
            "creationTime",
            &self.creation_time.map(|t| t.to_string()),
        );
        match &self.memory {
            Some(m) => {
                let el = root.ensure_child("memory");
                el.set_attr("snapshot", m.snapshot.clone());
                if let Some(f) = &m.file {
                    el.set_attr("file", f.clone());
                }
            }
            None => {
                root.remove_elements(|e| e.name == "memory");
            }
        }
        if self.disks.is_empty() {
            root.remove_elements(|e| e.name == "disks");
        } else {
            let disks = root.ensure_child("disks");
            let mut existing: Vec<Element> = disks.children_named("disk").cloned().collect();
            disks.remove_elements(|e| e.name == "disk");
            for (i, d) in self.disks.iter().enumerate() {
                let mut el = if i < existing.len() {
                    std::mem::replace(&mut existing[i], Element::new("disk"))
                } else {
                    Element::new("disk")
                };
                d.apply_to(&mut el);
                disks.push(el);
            }
        }
        set_text(
            &mut root,
            "active",
            &self.active.map(|a| if a { "1".into() } else { "0".into() }),
        );
        root
    }

    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_disk_only_request() {
        let mut s = SnapshotXml::new("before-upgrade");
        s.description = Some("pre".into());
        s.disks.push(SnapshotDisk {
            name: "vda".into(),
            snapshot: Some("external".into()),
            disk_type: None,
            source: None,
            driver: None,
        });
        s.disks.push(SnapshotDisk {
            name: "sda".into(),
            snapshot: Some("no".into()),
            disk_type: None,
            source: None,
            driver: None,
        });
        assert_eq!(
            s.to_xml(),
            "<domainsnapshot><name>before-upgrade</name><description>pre</description>\
<disks><disk name='vda' snapshot='external'/><disk name='sda' snapshot='no'/></disks></domainsnapshot>"
        );
        let back = SnapshotXml::parse(&s.to_xml()).unwrap();
        assert_eq!(back.disks, s.disks);
    }
}
