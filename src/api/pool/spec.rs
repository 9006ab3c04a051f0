//! What a script asks of a pool (`define_pool`, `ensure_pool`), read through
//! [`Fields`], and how it is written into a `<pool>` document.
use rhai::Map;

use super::{check_name, plain_text};
use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::xml::storage::{Permissions, PoolXml, SourceHost};

const POOL_TYPES: &[&str] = &[
    "dir",
    "fs",
    "netfs",
    "logical",
    "disk",
    "iscsi",
    "iscsi-direct",
    "scsi",
    "mpath",
    "rbd",
    "sheepdog",
    "gluster",
    "zfs",
    "vstorage",
];

/// What a script asks for in `define_pool` / `ensure_pool`.
pub(super) struct PoolSpec {
    pub name: String,
    pub pool_type: String,
    pub path: Option<String>,
    pub devices: Vec<String>,
    pub source_dir: Option<String>,
    pub hosts: Vec<SourceHost>,
    pub format: Option<String>,
    pub source_name: Option<String>,
    pub permissions: Option<Permissions>,
    pub autostart: Option<bool>,
}

/// Read a `define_pool` / `ensure_pool` spec: every key is asked for before
/// anything is judged, so an unknown key is refused first, as a typo.
pub(super) fn pool_spec(spec: &Map) -> Result<PoolSpec, ScriptError> {
    let f = Fields::new("", spec);
    let name = plain_text(&f, "name")?;
    let pool_type = f.string("type")?;
    let path = plain_text(&f, "path")?;
    let autostart = f.boolean("autostart")?;
    let source = f.map("source")?;
    let permissions = f.map("permissions")?;
    f.finish()?;
    let name = name.ok_or_else(|| ScriptError::invalid("name", "()", "a pool needs a name"))?;
    check_name("name", &name)?;
    let pool_type = pool_type.unwrap_or_else(|| "dir".into());
    if !POOL_TYPES.contains(&pool_type.as_str()) {
        return Err(ScriptError::invalid(
            "type",
            &pool_type,
            format!("unknown pool type (known: {})", POOL_TYPES.join(", ")),
        ));
    }
    if let Some(p) = &path {
        // Absolute, no '..', no control characters, not a system directory.
        crate::api::policy::check_pool_path(&pool_type, p)?;
    }
    let mut out = PoolSpec {
        name,
        pool_type,
        path,
        devices: Vec::new(),
        source_dir: None,
        hosts: Vec::new(),
        format: None,
        source_name: None,
        permissions: None,
        autostart,
    };
    if let Some(source) = source {
        let src = Fields::new("source", &source);
        out.devices = strings(&src, "device")?;
        out.source_dir = src.string("dir")?;
        let port = match src.int("port")? {
            None => None,
            Some(p) => Some(u16::try_from(p).map_err(|_| {
                ScriptError::invalid(&src.name("port"), p, "expected a port number")
            })?),
        };
        out.hosts = strings(&src, "host")?
            .into_iter()
            .map(|name| SourceHost { name, port })
            .collect();
        out.format = src.string("format")?;
        out.source_name = src.string("name")?;
        src.finish()?;
    }
    if let Some(perms) = permissions {
        let p = Fields::new("permissions", &perms);
        // Owners and groups are ids, so a number is as good as a string.
        let text = |key: &str| -> Result<Option<String>, ScriptError> {
            match p.raw(key) {
                None => Ok(None),
                Some(v) if v.is_int() || v.is_string() => Ok(Some(v.to_string())),
                Some(v) => Err(p.wrong(key, v, "a string or a number")),
            }
        };
        out.permissions = Some(Permissions {
            mode: text("mode")?,
            owner: text("owner")?,
            group: text("group")?,
            label: text("label")?,
        });
        p.finish()?;
    }
    // What each type cannot do without.
    let missing = |field: &str, why: &str| Err(ScriptError::invalid(field, "()", why));
    match out.pool_type.as_str() {
        "dir" if out.path.is_none() => return missing("path", "a dir pool needs a target path"),
        "fs" if out.devices.is_empty() => {
            return missing("source.device", "an fs pool needs a source device")
        }
        "fs" | "netfs" if out.path.is_none() => {
            return missing("path", "a filesystem pool needs a mount point (path)")
        }
        "netfs" if out.hosts.is_empty() || out.source_dir.is_none() => {
            return missing(
                "source",
                "a netfs pool needs source.host and source.dir (the exported directory)",
            )
        }
        "logical" if out.source_name.is_none() && out.devices.is_empty() => {
            return missing(
                "source.name",
                "a logical pool needs a volume group name (source.name) or devices",
            )
        }
        _ => {}
    }
    Ok(out)
}

/// A string or an array of strings (`source.device`, `source.host`).
fn strings(f: &Fields, key: &str) -> Result<Vec<String>, ScriptError> {
    let Some(v) = f.raw(key) else {
        return Ok(Vec::new());
    };
    if v.is_string() {
        return Ok(f.string(key)?.into_iter().collect());
    }
    let Some(items) = v.read_lock::<rhai::Array>().map(|a| a.clone()) else {
        return Err(f.wrong(key, v, "a string or an array of strings"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            if item.is_string() {
                Ok(item.to_string())
            } else {
                Err(ScriptError::invalid(
                    &format!("{}[{i}]", f.name(key)),
                    show(item),
                    format!("must be a string, not {}", item.type_name()),
                ))
            }
        })
        .collect()
}

impl PoolSpec {
    /// Write what the spec asks for into a document; returns what changed.
    pub fn apply(&self, doc: &mut PoolXml) -> Vec<String> {
        let mut changes = Vec::new();
        fn set<T: PartialEq + Clone + std::fmt::Debug>(
            changes: &mut Vec<String>,
            what: &str,
            slot: &mut T,
            want: T,
        ) {
            if *slot != want {
                let pretty = |v: &T| {
                    let d = format!("{v:?}");
                    match d.strip_prefix("Some(").and_then(|r| r.strip_suffix(')')) {
                        Some(inner) => inner.trim_matches('"').to_owned(),
                        None if d == "None" => "(none)".to_owned(),
                        None => d,
                    }
                };
                changes.push(format!("{what}: {} -> {}", pretty(slot), pretty(&want)));
                *slot = want;
            }
        }
        if let Some(p) = &self.path {
            set(&mut changes, "path", &mut doc.target.path, Some(p.clone()));
        }
        if !self.devices.is_empty() {
            set(
                &mut changes,
                "source.device",
                &mut doc.source.devices,
                self.devices.clone(),
            );
        }
        if let Some(d) = &self.source_dir {
            set(
                &mut changes,
                "source.dir",
                &mut doc.source.dir,
                Some(d.clone()),
            );
        }
        if !self.hosts.is_empty() {
            set(
                &mut changes,
                "source.host",
                &mut doc.source.hosts,
                self.hosts.clone(),
            );
        }
        if let Some(f) = &self.format {
            set(
                &mut changes,
                "source.format",
                &mut doc.source.format,
                Some(f.clone()),
            );
        }
        if let Some(n) = &self.source_name {
            set(
                &mut changes,
                "source.name",
                &mut doc.source.name,
                Some(n.clone()),
            );
        }
        if let Some(want) = &self.permissions {
            let mut merged = doc.target.permissions.clone().unwrap_or_default();
            for (slot, value) in [
                (&mut merged.mode, &want.mode),
                (&mut merged.owner, &want.owner),
                (&mut merged.group, &want.group),
                (&mut merged.label, &want.label),
            ] {
                if value.is_some() {
                    *slot = value.clone();
                }
            }
            set(
                &mut changes,
                "permissions",
                &mut doc.target.permissions,
                Some(merged),
            );
        }
        changes
    }

    pub fn document(&self) -> PoolXml {
        let mut doc = PoolXml::new(&self.pool_type, &self.name);
        self.apply(&mut doc);
        doc
    }
}
