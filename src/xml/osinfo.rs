//! libosinfo's OS documents (`osinfo-db`: `os/<vendor>/<os>.xml`), read
//! without the C library: the OS's ids and relations, recommended resources,
//! the devices it supports, and how its install media and trees are
//! recognised. Read only.
use super::tree::{Element, TreeError};

/// `<resources arch>`'s `<minimum>` or `<recommended>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resources {
    /// `all` or an architecture.
    pub arch: String,
    pub n_cpus: Option<u32>,
    /// Bytes.
    pub ram: Option<u64>,
    /// Bytes.
    pub storage: Option<u64>,
}

/// `<media arch>` with its `<iso>` identification (each a regular expression,
/// except `volume_size`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    pub arch: String,
    pub volume_id: Option<String>,
    pub system_id: Option<String>,
    pub publisher_id: Option<String>,
    pub application_id: Option<String>,
    pub volume_size: Option<u64>,
}

/// `<tree arch>` with its `<treeinfo>` identification (a `.treeinfo`'s
/// `[general]` family, version, arch).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    pub arch: String,
    pub family: Option<String>,
    pub version: Option<String>,
    pub treeinfo_arch: Option<String>,
    pub variant: Option<String>,
}

/// One `<os>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsinfoOs {
    /// The URI id (`http://debian.org/debian/11`).
    pub id: String,
    /// The short ids (`debian11`, `debianbullseye`).
    pub short_ids: Vec<String>,
    /// The name without a language.
    pub name: Option<String>,
    pub family: Option<String>,
    pub distro: Option<String>,
    pub version: Option<String>,
    pub derives_from: Vec<String>,
    pub clones: Vec<String>,
    pub upgrades: Vec<String>,
    pub minimum: Vec<Resources>,
    pub recommended: Vec<Resources>,
    /// `<resources inherit='true'/>`: the resources are those of `derives_from`.
    pub inherits_resources: bool,
    /// `<devices><device id supported>`: (device id, supported).
    pub devices: Vec<(String, bool)>,
    pub media: Vec<Media>,
    pub trees: Vec<Tree>,
}

fn child_text(el: &Element, name: &str) -> Option<String> {
    el.children_named(name)
        .find(|e| e.attr("xml:lang").is_none())
        .map(|e| e.text().trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn ids(el: &Element, name: &str) -> Vec<String> {
    el.children_named(name)
        .filter_map(|e| e.attr("id").map(str::to_owned))
        .collect()
}

impl Resources {
    fn from_element(arch: &str, el: &Element) -> Resources {
        let num = |n: &str| child_text(el, n).and_then(|t| t.parse::<u64>().ok());
        Resources {
            arch: arch.to_owned(),
            n_cpus: num("n-cpus").and_then(|n| u32::try_from(n).ok()),
            ram: num("ram"),
            storage: num("storage"),
        }
    }
}

impl OsinfoOs {
    /// The first `<os>` of an osinfo document.
    pub fn parse(xml: &str) -> Result<Option<OsinfoOs>, TreeError> {
        let root = Element::parse(xml)?;
        Ok(if root.name == "os" {
            Some(OsinfoOs::from_element(&root))
        } else {
            root.child("os").map(OsinfoOs::from_element)
        })
    }

    pub fn from_element(os: &Element) -> OsinfoOs {
        let mut out = OsinfoOs {
            id: os.attr("id").unwrap_or_default().to_owned(),
            short_ids: os
                .children_named("short-id")
                .map(|e| e.text().trim().to_owned())
                .collect(),
            name: child_text(os, "name"),
            family: child_text(os, "family"),
            distro: child_text(os, "distro"),
            version: child_text(os, "version"),
            derives_from: ids(os, "derives-from"),
            clones: ids(os, "clones"),
            upgrades: ids(os, "upgrades"),
            ..OsinfoOs::default()
        };
        for r in os.children_named("resources") {
            let arch = r.attr("arch").unwrap_or("all");
            if r.attr("inherit") == Some("true") {
                out.inherits_resources = true;
            }
            for m in r.children_named("minimum") {
                out.minimum.push(Resources::from_element(arch, m));
            }
            for m in r.children_named("recommended") {
                out.recommended.push(Resources::from_element(arch, m));
            }
        }
        out.devices = os
            .children_named("devices")
            .flat_map(|d| d.children_named("device"))
            .filter_map(|d| {
                let id = d.attr("id")?.to_owned();
                Some((id, d.attr("supported") != Some("false")))
            })
            .collect();
        for m in os.children_named("media") {
            let Some(iso) = m.child("iso") else { continue };
            out.media.push(Media {
                arch: m.attr("arch").unwrap_or("all").to_owned(),
                volume_id: child_text(iso, "volume-id"),
                system_id: child_text(iso, "system-id"),
                publisher_id: child_text(iso, "publisher-id"),
                application_id: child_text(iso, "application-id"),
                volume_size: child_text(iso, "volume-size").and_then(|s| s.parse().ok()),
            });
        }
        for t in os.children_named("tree") {
            let Some(info) = t.child("treeinfo") else {
                continue;
            };
            out.trees.push(Tree {
                arch: t.attr("arch").unwrap_or("all").to_owned(),
                family: child_text(info, "family"),
                version: child_text(info, "version"),
                treeinfo_arch: child_text(info, "arch"),
                variant: child_text(info, "variant"),
            });
        }
        out
    }

    /// The value of a resource for `arch` (its own entry, else `all`) from `list`.
    fn resource<T>(
        list: &[Resources],
        arch: &str,
        get: impl Fn(&Resources) -> Option<T>,
    ) -> Option<T> {
        [arch, "all"]
            .iter()
            .find_map(|a| list.iter().filter(|r| r.arch == *a).find_map(&get))
    }

    /// virt-install's rule: the recommended value for `arch` (or `all`),
    /// else twice the minimum.
    pub fn recommended_value(
        &self,
        arch: &str,
        get: impl Fn(&Resources) -> Option<u64> + Copy,
    ) -> Option<u64> {
        OsinfoOs::resource(&self.recommended, arch, get)
            .filter(|v| *v > 0)
            .or_else(|| {
                OsinfoOs::resource(&self.minimum, arch, get)
                    .filter(|v| *v > 0)
                    .map(|v| v.saturating_mul(2))
            })
    }
}

/// The texts of every `<tag>` element of a document, found by text search
/// (no parse; entities left as they are): `<volume-id>`s for an index.
pub fn scan_texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut text = xml;
    while let Some(start) = text.find(&open) {
        let after = &text[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        out.push(after[..end].trim().to_owned());
        text = &after[end..];
    }
    out
}

/// A cheap look at an osinfo document for an index: the `<os id>` and its
/// `<short-id>`s, found by text search (no parse).
pub fn scan_ids(xml: &str) -> Option<(String, Vec<String>)> {
    let at = xml.find("<os id=")? + "<os id=".len();
    let quote = xml[at..].chars().next()?;
    let rest = &xml[at + 1..];
    let id = rest[..rest.find(quote)?].to_owned();
    Some((id, scan_texts(rest, "short-id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0"?>
<libosinfo version="0.0.1">
  <!-- a comment -->
  <os id="http://example.org/ex/2">
    <short-id>ex2</short-id>
    <short-id>exfoo</short-id>
    <name>Example 2</name>
    <name xml:lang="de">Beispiel 2</name>
    <family>linux</family>
    <version>2</version>
    <upgrades id="http://example.org/ex/1"/>
    <derives-from id="http://example.org/ex/1"/>
    <resources arch="all">
      <minimum><n-cpus>1</n-cpus><ram>536870912</ram><storage>5368709120</storage></minimum>
      <recommended><ram>1073741824</ram><storage>10737418240</storage></recommended>
    </resources>
    <resources arch="x86_64"><recommended><n-cpus>4</n-cpus></recommended></resources>
    <devices>
      <device id="http://pcisig.com/pci/1af4/1001"/>
      <device id="http://pcisig.com/pci/1af4/1050" supported="false"/>
    </devices>
    <media arch="x86_64">
      <iso><volume-id>Example 2\.\d+ amd64</volume-id><system-id>LINUX</system-id></iso>
      <kernel>install/vmlinuz</kernel>
    </media>
    <tree arch="x86_64">
      <treeinfo><family>Example</family><version>2</version><arch>x86_64</arch></treeinfo>
    </tree>
  </os>
</libosinfo>"#;

    #[test]
    fn reads_ids_resources_devices_media_and_trees() {
        let os = OsinfoOs::parse(DOC).unwrap().unwrap();
        assert_eq!(os.id, "http://example.org/ex/2");
        assert_eq!(os.short_ids, ["ex2", "exfoo"]);
        assert_eq!(os.name.as_deref(), Some("Example 2"));
        assert_eq!(os.derives_from, ["http://example.org/ex/1"]);
        assert_eq!(os.upgrades, ["http://example.org/ex/1"]);
        assert_eq!(
            os.devices,
            [
                ("http://pcisig.com/pci/1af4/1001".to_owned(), true),
                ("http://pcisig.com/pci/1af4/1050".to_owned(), false)
            ]
        );
        let ram = |r: &Resources| r.ram;
        let cpus = |r: &Resources| r.n_cpus.map(u64::from);
        assert_eq!(os.recommended_value("x86_64", ram), Some(1 << 30));
        assert_eq!(
            os.recommended_value("x86_64", cpus),
            Some(4),
            "the arch's own entry first"
        );
        assert_eq!(
            os.recommended_value("aarch64", cpus),
            Some(2),
            "else twice the minimum"
        );
        assert_eq!(
            os.media[0].volume_id.as_deref(),
            Some(r"Example 2\.\d+ amd64")
        );
        assert_eq!(os.media[0].system_id.as_deref(), Some("LINUX"));
        assert_eq!(os.trees[0].family.as_deref(), Some("Example"));
        assert_eq!(
            scan_ids(DOC),
            Some((
                "http://example.org/ex/2".into(),
                vec!["ex2".into(), "exfoo".into()]
            ))
        );
    }
}
