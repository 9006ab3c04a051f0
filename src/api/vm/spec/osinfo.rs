//! `os: "debian11"` / `os: "detect"`: guest OS defaults from Debian's
//! `osinfo-db` (libosinfo's database, read as XML; no C library). The
//! database is `/usr/share/osinfo`, or `$OSINFO_SYSTEM_DIR` (libosinfo's own
//! variable). An index of short ids is built once per process by a text scan
//! of `os/*/*.xml`; an OS's file is parsed when it is asked for.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::api::error::ScriptError;
use crate::xml::osinfo::{OsinfoOs, Resources};

/// What a plan takes from the guest OS's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsProfile {
    /// The short id asked for (or the first one, for a detected OS).
    pub short_id: String,
    pub id: String,
    pub name: String,
    pub virtio_block: bool,
    pub virtio_scsi: bool,
    pub virtio_net: bool,
    /// The OS runs on x86's q35 chipset (osinfo's q35 device, and virtio 1.0
    /// where it has virtio-net): virt-install's `supports_chipset_q35`.
    pub q35: bool,
    /// A Windows family (`winnt`, `win9x`, `win16`): installs in stages.
    pub windows: bool,
    /// Recommended (else twice the minimum) RAM and storage in bytes, vCPUs.
    pub ram: Option<u64>,
    pub n_cpus: Option<u64>,
    pub storage: Option<u64>,
    /// virtio1.0-gpu (virt-install's `supports_virtiogpu`: virtio video).
    pub virtio_gpu: bool,
    /// virtio-rng (a default `<rng>` from /dev/urandom).
    pub virtio_rng: bool,
    /// virtio-balloon (a default `<memballoon model='virtio'>`).
    pub virtio_balloon: bool,
    /// qemu-xhci (a USB 3 controller, else the ICH9 USB 2 set).
    pub usb3: bool,
    /// Keeps its clock in local time (Windows, Solaris), else UTC.
    pub localtime: bool,
}

/// The database folder: `$OSINFO_SYSTEM_DIR`, else `/usr/share/osinfo`.
pub fn db_dir() -> PathBuf {
    std::env::var_os("OSINFO_SYSTEM_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/osinfo"))
}

/// Short id and URI id to file, for one database folder.
#[derive(Debug, Default)]
pub struct Index {
    by_short: BTreeMap<String, PathBuf>,
    by_id: HashMap<String, PathBuf>,
    /// Each file's `<volume-id>` patterns (a detection parses only files
    /// whose pattern matches) and the files with `<treeinfo>`.
    volume_ids: Vec<(PathBuf, Vec<String>)>,
    tree_files: Vec<PathBuf>,
}

/// The index of `dir`, built once per process.
pub fn index(dir: &Path) -> Result<Arc<Index>, String> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Index>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(ix) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(dir) {
        return Ok(ix.clone());
    }
    let ix = Arc::new(build_index(dir)?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(dir.to_owned(), ix.clone());
    Ok(ix)
}

fn os_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let os_dir = dir.join("os");
    let vendors = std::fs::read_dir(&os_dir)
        .map_err(|e| format!("the osinfo database is expected in {}: {e}", os_dir.display()))?;
    let mut files = Vec::new();
    for vendor in vendors.flatten() {
        let Ok(entries) = std::fs::read_dir(vendor.path()) else {
            continue;
        };
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "xml")),
        );
    }
    files.sort();
    Ok(files)
}

/// OS entries virtscript carries for releases newer than the osinfo-db a
/// host has (Debian 12's stops at debian11). A system entry of the same id
/// wins; these are read only when it has none.
const BUNDLED: &[(&str, &str)] = &[(
    "debian-12.xml",
    include_str!("../../../../data/osinfo/debian-12.xml"),
)];

/// Where an index entry of [`BUNDLED`] seems to live (it is never read from disk).
const BUNDLED_DIR: &str = "(bundled with virtscript)";

fn read_entry(path: &Path) -> Option<String> {
    match path.strip_prefix(BUNDLED_DIR) {
        Ok(name) => BUNDLED
            .iter()
            .find(|(n, _)| Path::new(n) == name)
            .map(|(_, text)| (*text).to_owned()),
        Err(_) => std::fs::read_to_string(path).ok(),
    }
}

fn build_index(dir: &Path) -> Result<Index, String> {
    let mut ix = Index::default();
    let system = os_files(dir)?;
    let bundled = BUNDLED
        .iter()
        .map(|(name, _)| Path::new(BUNDLED_DIR).join(name));
    for path in system.into_iter().chain(bundled) {
        let Some(text) = read_entry(&path) else {
            continue;
        };
        let known = |(id, _): (String, _)| ix.by_id.contains_key(&id);
        if path.starts_with(BUNDLED_DIR) && crate::xml::osinfo::scan_ids(&text).is_some_and(known) {
            continue; // The system database has its own entry.
        }
        let volume_ids = crate::xml::osinfo::scan_texts(&text, "volume-id");
        if !volume_ids.is_empty() {
            ix.volume_ids.push((path.clone(), volume_ids));
        }
        if text.contains("<treeinfo>") {
            ix.tree_files.push(path.clone());
        }
        if let Some((id, shorts)) = crate::xml::osinfo::scan_ids(&text) {
            for s in shorts {
                ix.by_short.entry(s).or_insert_with(|| path.clone());
            }
            ix.by_id.insert(id, path);
        }
    }
    if ix.by_short.is_empty() {
        return Err(format!("no OS entries in {}/os", dir.display()));
    }
    Ok(ix)
}

fn load(path: &Path) -> Option<OsinfoOs> {
    OsinfoOs::parse(&read_entry(path)?)
        .ok()
        .flatten()
}

const VIRTIO_BLOCK: &[&str] = &[
    "http://pcisig.com/pci/1af4/1001",
    "http://pcisig.com/pci/1af4/1042",
];
const VIRTIO_SCSI: &[&str] = &[
    "http://pcisig.com/pci/1af4/1004",
    "http://pcisig.com/pci/1af4/1048",
];
const VIRTIO_NET: &[&str] = &[
    "http://pcisig.com/pci/1af4/1000",
    "http://pcisig.com/pci/1af4/1041",
];
/// virtio1.0-net, virt-install's proxy for virtio 1.0 as a whole.
const VIRTIO1: &[&str] = &["http://pcisig.com/pci/1af4/1041"];
const CHIPSET_Q35: &[&str] = &["http://qemu.org/chipset/x86/q35"];
// The ids of virtinst/osdict.py's supports_virtiogpu, _virtiorng,
// _virtioballoon and _usb3.
const VIRTIO_GPU: &[&str] = &["http://pcisig.com/pci/1af4/1050"];
const VIRTIO_RNG: &[&str] = &[
    "http://pcisig.com/pci/1af4/1005",
    "http://pcisig.com/pci/1af4/1044",
];
const VIRTIO_BALLOON: &[&str] = &[
    "http://pcisig.com/pci/1af4/1002",
    "http://pcisig.com/pci/1af4/1045",
];
const USB3: &[&str] = &["http://pcisig.com/pci/1b36/0004"];

impl Index {
    /// The OS by short id.
    pub fn get(&self, short_id: &str) -> Option<OsinfoOs> {
        load(self.by_short.get(short_id)?)
    }

    /// The short id nearest to `word`.
    pub fn closest(&self, word: &str) -> Option<&str> {
        self.by_short
            .keys()
            .map(String::as_str)
            // The last of equally near ids: the newer release (debian11, not debian10).
            .rev()
            .min_by_key(|k| strsim::levenshtein(k, word))
    }

    /// The devices of `os` and of what it derives from or clones, nearest
    /// first (an OS's own `supported='false'` hides an inherited device).
    fn devices(&self, os: &OsinfoOs) -> HashMap<String, bool> {
        let mut out = HashMap::new();
        let mut seen = vec![os.id.clone()];
        let mut queue = std::collections::VecDeque::from([os.clone()]);
        while let Some(o) = queue.pop_front() {
            for (id, supported) in &o.devices {
                out.entry(id.clone()).or_insert(*supported);
            }
            for parent in o.derives_from.iter().chain(&o.clones) {
                if seen.contains(parent) {
                    continue;
                }
                seen.push(parent.clone());
                if let Some(p) = self.by_id.get(parent).and_then(|p| load(p)) {
                    queue.push_back(p);
                }
            }
        }
        out
    }

    /// The OS's family, or the nearest ancestor's.
    fn family_of(&self, os: &OsinfoOs) -> Option<String> {
        let mut current = os.clone();
        for _ in 0..32 {
            if let Some(f) = &current.family {
                return Some(f.clone());
            }
            current = current
                .derives_from
                .first()
                .and_then(|id| self.by_id.get(id))
                .and_then(|p| load(p))?;
        }
        None
    }

    /// The entry whose resources apply (`inherit='true'` follows derives-from).
    fn resources_of(&self, os: &OsinfoOs) -> OsinfoOs {
        let mut current = os.clone();
        for _ in 0..32 {
            if !current.inherits_resources {
                break;
            }
            let Some(parent) = current
                .derives_from
                .first()
                .and_then(|id| self.by_id.get(id))
                .and_then(|p| load(p))
            else {
                break;
            };
            // The parent's entries, then this OS's own (which come first in a lookup).
            let mut merged = parent;
            let (min, rec) = (current.minimum, current.recommended);
            merged.minimum = min.into_iter().chain(merged.minimum).collect();
            merged.recommended = rec.into_iter().chain(merged.recommended).collect();
            current = merged;
        }
        current
    }

    /// The profile of `os` for `arch`.
    pub fn profile(&self, os: &OsinfoOs, short_id: &str, arch: &str) -> OsProfile {
        let devices = self.devices(os);
        let any = |ids: &[&str]| ids.iter().any(|i| devices.get(*i) == Some(&true));
        let res = self.resources_of(os);
        OsProfile {
            short_id: short_id.to_owned(),
            id: os.id.clone(),
            name: os.name.clone().unwrap_or_else(|| short_id.to_owned()),
            virtio_block: any(VIRTIO_BLOCK),
            virtio_scsi: any(VIRTIO_SCSI),
            virtio_net: any(VIRTIO_NET),
            q35: any(CHIPSET_Q35) && (any(VIRTIO1) || !any(VIRTIO_NET)),
            windows: matches!(os.family.as_deref(), Some("winnt" | "win9x" | "win16")),
            ram: res.recommended_value(arch, |r: &Resources| r.ram),
            n_cpus: res.recommended_value(arch, |r: &Resources| r.n_cpus.map(u64::from)),
            storage: res.recommended_value(arch, |r: &Resources| r.storage),
            virtio_gpu: any(VIRTIO_GPU),
            virtio_rng: any(VIRTIO_RNG),
            virtio_balloon: any(VIRTIO_BALLOON),
            usb3: any(USB3),
            localtime: self.family_of(os).is_some_and(|f| {
                matches!(f.as_str(), "win9x" | "winnt" | "win16" | "solaris")
            }),
        }
    }

    /// The OSes with a `<volume-id>` pattern matching `volume_id`, parsed.
    fn media_candidates(&self, volume_id: &str) -> Vec<OsinfoOs> {
        self.volume_ids
            .iter()
            .filter(|(_, patterns)| {
                patterns.iter().any(|p| {
                    // Compiling ~2000 patterns costs more than reading the
                    // files: a pattern's leading literal must be there first.
                    // (One with an entity is checked after the parse.)
                    p.contains('&')
                        || (volume_id.contains(leading_literal(p).as_str())
                            && regex_matches(&Some(p.clone()), volume_id))
                })
            })
            .filter_map(|(path, _)| load(path))
            .collect()
    }

    /// The OSes with a `<treeinfo>`, parsed.
    fn tree_candidates(&self) -> Vec<OsinfoOs> {
        self.tree_files.iter().filter_map(|p| load(p)).collect()
    }
}

/// `os: "<short id>"` for `arch`: the profile, or an error naming `os`, the
/// value and the nearest short id.
pub fn lookup(value: &str, arch: &str) -> Result<OsProfile, ScriptError> {
    let dir = db_dir();
    let ix = index(&dir).map_err(|e| ScriptError::invalid("os", value, e))?;
    match ix.get(value) {
        Some(os) => Ok(ix.profile(&os, value, arch)),
        None => Err(ScriptError::invalid(
            "os",
            value,
            format!(
                "not an OS short id in the osinfo database ({}){}; \"detect\" identifies an install ISO",
                dir.display(),
                ix.closest(value)
                    .map(|c| format!("; did you mean \"{c}\"?"))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// The text every match of `pattern` contains: its leading run of literal
/// characters (empty for a pattern with a top-level alternative).
fn leading_literal(pattern: &str) -> String {
    let pattern = pattern.strip_prefix('^').unwrap_or(pattern);
    if pattern.contains('|') {
        return String::new();
    }
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '?' | '*' | '{' => {
                out.pop();
                break;
            }
            '\\' | '.' | '^' | '$' | '+' | '(' | ')' | '[' | ']' | '}' => break,
            c => out.push(c),
        }
    }
    out
}

fn regex_matches(pattern: &Option<String>, text: &str) -> bool {
    match pattern {
        None => true,
        Some(p) => regex::Regex::new(p).is_ok_and(|r| r.is_match(text)),
    }
}

/// `os: "detect"` with a `cdrom` ISO at `path` on this machine: the OS whose
/// install media osinfo-db recognises by the ISO's primary volume descriptor.
pub fn detect_iso(path: &Path, arch: &str) -> Result<OsProfile, ScriptError> {
    let shown = path.display().to_string();
    let info = crate::iso::read_volume_info(path)
        .map_err(|e| ScriptError::invalid("os", "detect", format!("cannot read the ISO {shown}: {e}")))?
        .ok_or_else(|| {
            ScriptError::invalid("os", "detect", format!("{shown} is not an ISO 9660 image"))
        })?;
    let ix = index(&db_dir()).map_err(|e| ScriptError::invalid("os", "detect", e))?;
    for os in ix.media_candidates(&info.volume_id) {
        let hit = os.media.iter().any(|m| {
            (m.arch == arch || m.arch == "all")
                && m.volume_id.is_some()
                && regex_matches(&m.volume_id, &info.volume_id)
                && regex_matches(&m.system_id, &info.system_id)
                && regex_matches(&m.publisher_id, &info.publisher_id)
                && regex_matches(&m.application_id, &info.application_id)
                && m.volume_size.is_none_or(|s| s == info.volume_size)
        });
        if hit {
            let short = os.short_ids.first().cloned().unwrap_or_default();
            return Ok(ix.profile(&os, &short, arch));
        }
    }
    Err(ScriptError::invalid(
        "os",
        "detect",
        format!(
            "the osinfo database knows no {arch} install media like {shown} (volume id \"{}\"); give os a short id like \"debian11\"",
            info.volume_id
        ),
    ))
}

/// A `.treeinfo`'s `[general]` (or `[release]`/`[tree]`) family, version, arch.
fn read_treeinfo(dir: &Path) -> Option<(String, String, String)> {
    let text = [".treeinfo", "treeinfo"]
        .iter()
        .find_map(|n| std::fs::read_to_string(dir.join(n)).ok())?;
    let mut section = String::new();
    let mut values: HashMap<(String, String), String> = HashMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            values.insert((section.clone(), k.trim().to_owned()), v.trim().to_owned());
        }
    }
    let get = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .find_map(|(s, k)| values.get(&(s.to_string(), k.to_string())).cloned())
    };
    Some((
        get(&[("general", "family"), ("release", "name")])?,
        get(&[("general", "version"), ("release", "version")])?,
        get(&[("general", "arch"), ("tree", "arch")]).unwrap_or_default(),
    ))
}

/// `os: "detect"` with a `location` tree on this machine: the OS whose
/// `<tree><treeinfo>` matches the tree's `.treeinfo`.
pub fn detect_tree(dir: &Path, arch: &str) -> Result<OsProfile, ScriptError> {
    let shown = dir.display().to_string();
    let (family, version, tree_arch) = read_treeinfo(dir).ok_or_else(|| {
        ScriptError::invalid(
            "os",
            "detect",
            format!("the tree {shown} has no .treeinfo naming its family and version: give os a short id"),
        )
    })?;
    let ix = index(&db_dir()).map_err(|e| ScriptError::invalid("os", "detect", e))?;
    for os in ix.tree_candidates() {
        let hit = os.trees.iter().any(|t| {
            t.family.is_some()
                && regex_matches(&t.family, &family)
                && regex_matches(&t.version, &version)
                && (tree_arch.is_empty() || regex_matches(&t.treeinfo_arch, &tree_arch))
        });
        if hit {
            let short = os.short_ids.first().cloned().unwrap_or_default();
            return Ok(ix.profile(&os, &short, arch));
        }
    }
    Err(ScriptError::invalid(
        "os",
        "detect",
        format!("the osinfo database knows no tree like {shown} ({family} {version} {tree_arch}); give os a short id"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The database Debian installs (osinfo-db; tools/libvirtd-netns.sh install).
    #[test]
    fn debian_entries_inherit_virtio_through_derives_from() {
        let ix = index(&db_dir()).unwrap();
        let os = ix.get("debian11").expect("debian11 in osinfo-db");
        assert!(
            os.devices.iter().all(|(id, _)| !VIRTIO_BLOCK.contains(&id.as_str())),
            "debian11 lists no virtio-block itself: the test needs the chain"
        );
        let p = ix.profile(&os, "debian11", "x86_64");
        assert!(p.virtio_block && p.virtio_net, "{p:?}");
        // What virt-install adds for debian11: virtio video, RNG, balloon, USB 3.
        assert!(p.virtio_gpu && p.virtio_rng && p.virtio_balloon && p.usb3, "{p:?}");
        assert!(!p.localtime);
        let win = ix.get("win10").expect("win10 in osinfo-db");
        assert!(ix.profile(&win, "win10", "x86_64").localtime);
        assert_eq!(ix.closest("debain11"), Some("debian11"));
        assert_eq!(leading_literal(r"^Debian 11.\d+"), "Debian 11");
        assert_eq!(leading_literal("Fedora-S?-dvd"), "Fedora-");
        assert_eq!(leading_literal("(a|b)"), "");
    }
}
