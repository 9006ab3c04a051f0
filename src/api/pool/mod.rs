//! `Pool` script object: storage pools (`virsh pool-*`).
mod object;
use crate::runtime::ErrorKind;
use std::time::{Duration, Instant};

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use virt::error::Error;
use virt::storage_pool::StoragePool;
use virt::sys;

use super::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use super::Host;
use crate::runtime::journal;
use crate::xml::storage::{Permissions, PoolXml, SourceHost};

/// A libvirt object handle plus the host it came from.
#[derive(Clone)]
pub struct Pool {
    pub host: Host,
    pub raw: std::sync::Arc<virt::storage_pool::StoragePool>,
}

impl Pool {
    pub fn name(&self) -> String {
        self.raw.name().unwrap_or_default()
    }

    /// The pool's persistent definition (its live one when it has none).
    pub fn definition(&self) -> Result<PoolXml, ScriptError> {
        let xml = self.inactive_xml().map_err(|e| ScriptError::libvirt(&e))?;
        PoolXml::parse(&xml).map_err(|e| {
            ScriptError::new(ErrorKind::Xml, format!("cannot read the pool's XML: {e}"))
        })
    }

    pub fn is_active(&self) -> bool {
        self.raw.is_active().unwrap_or(false)
    }

    /// The persistent definition's XML; drivers without `VIR_STORAGE_XML_INACTIVE`
    /// (the test driver) give the live one.
    pub fn inactive_xml(&self) -> Result<String, Error> {
        match self.raw.xml_desc(sys::VIR_STORAGE_XML_INACTIVE) {
            Err(e) if is_code(&e, sys::VIR_ERR_INVALID_ARG) => self.raw.xml_desc(0),
            other => other,
        }
    }
}

/// libvirt refuses some volume operations while a pool has a job running
/// ("pool 'x' has asynchronous jobs running", "volume 'y' is still being
/// allocated"): retry `op` with backoff (50 ms doubling to 1 s, 30 s in all),
/// giving up at once when the script is being stopped. Any other error is
/// returned as is.
pub fn with_pool_retry<T>(mut op: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut delay = Duration::from_millis(50);
    loop {
        match op() {
            Err(e)
                if is_pool_busy(&e)
                    && Instant::now() + delay < deadline
                    && crate::runtime::stop::requested().is_none() =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Create something in `pool` (a volume, a clone) one at a time per pool within
/// this process, then with [`with_pool_retry`] for other clients' jobs. libvirt
/// runs one allocation job per pool; waiting on a lock here lets parallel
/// provisioning go on the moment the pool is free instead of sleeping in backoff.
pub fn create_in_pool<T>(
    pool: &StoragePool,
    op: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    static LOCKS: std::sync::Mutex<Vec<(String, std::sync::Arc<std::sync::Mutex<()>>)>> =
        std::sync::Mutex::new(Vec::new());
    let key = pool
        .uuid_string()
        .or_else(|_| pool.name())
        .unwrap_or_default();
    let lock = {
        let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        match locks.iter().find(|(k, _)| *k == key) {
            Some((_, l)) => l.clone(),
            None => {
                let l = std::sync::Arc::new(std::sync::Mutex::new(()));
                locks.push((key, l.clone()));
                l
            }
        }
    };
    let _turn = lock.lock().unwrap_or_else(|e| e.into_inner());
    with_pool_retry(op)
}

/// Whether an error is libvirt's "busy, try again" for pools and volumes.
pub fn is_pool_busy(e: &Error) -> bool {
    let m = e.message();
    m.contains("asynchronous jobs running") || m.contains("is still being allocated")
}

pub(crate) fn is_code(e: &Error, code: u32) -> bool {
    e.code().to_raw() as i64 == code as i64
}

// ------------------------------------------------------------ script input

/// Reads a script's option map, refusing unknown keys and wrong types with an
/// error that names the key.
pub(crate) struct Spec<'a> {
    map: &'a Map,
    prefix: &'a str,
}

impl<'a> Spec<'a> {
    pub fn new(map: &'a Map, prefix: &'a str, allowed: &[&str]) -> Result<Spec<'a>, ScriptError> {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(ScriptError::invalid(
                    &format!("{prefix}{key}"),
                    map[key].to_string(),
                    crate::runtime::suggest::unknown_key("", key, allowed),
                ));
            }
        }
        Ok(Spec { map, prefix })
    }

    pub fn field(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn get(&self, key: &str) -> Option<&'a Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, ScriptError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(v) => Err(ScriptError::invalid(
                &self.field(key),
                v.to_string(),
                format!("expected a string, not {}", v.type_name()),
            )),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ScriptError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).map_err(|t| {
                ScriptError::invalid(
                    &self.field(key),
                    v.to_string(),
                    format!("expected true or false, not {t}"),
                )
            }),
        }
    }

    /// A size: `"10G"`, `"512M"`, `"1.5T"`, `"2GB"` or a number of bytes.
    pub fn size(&self, key: &str) -> Result<Option<u64>, ScriptError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => crate::api::args::size(
                &self.field(key),
                v,
                crate::api::args::NumberUnit::Bytes,
                true,
            )
            .map(Some),
        }
    }

    /// A string or an array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, ScriptError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) if v.is_string() => Ok(vec![v.to_string()]),
            Some(v) if v.is_array() => v
                .clone()
                .into_array()
                .unwrap_or_default()
                .into_iter()
                .map(|item| {
                    if item.is_string() {
                        Ok(item.to_string())
                    } else {
                        Err(ScriptError::invalid(
                            &self.field(key),
                            item.to_string(),
                            "expected strings",
                        ))
                    }
                })
                .collect(),
            Some(v) => Err(ScriptError::invalid(
                &self.field(key),
                v.to_string(),
                "expected a string or an array of strings",
            )),
        }
    }

    pub fn map(&self, key: &str) -> Result<Option<Map>, ScriptError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().try_cast::<Map>().map(Some).ok_or_else(|| {
                ScriptError::invalid(&self.field(key), v.to_string(), "expected a map #{ ... }")
            }),
        }
    }
}

/// Names of pools, volumes and snapshots become file names: no `/`, no `..`,
/// not `.` (a volume `.` is the pool's directory), no control characters, not empty.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ScriptError> {
    super::policy::check_name_text(field, name)?;
    let problem = if name.trim().is_empty() {
        "must not be empty"
    } else if name == "." {
        "must not be '.' (that is the pool's own directory)"
    } else if name.contains('/') {
        "must not contain '/'"
    } else if name.contains("..") {
        "must not contain '..'"
    } else if name.contains('\0') {
        "must not contain NUL"
    } else if name.chars().any(char::is_control) {
        // libvirt would store a changed name (a \r read back as \n).
        "must not contain control characters"
    } else if name.starts_with('-') {
        "must not start with '-'"
    } else {
        return Ok(());
    };
    Err(ScriptError::invalid(field, name, problem))
}

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
struct PoolSpec {
    name: String,
    pool_type: String,
    path: Option<String>,
    devices: Vec<String>,
    source_dir: Option<String>,
    hosts: Vec<SourceHost>,
    format: Option<String>,
    source_name: Option<String>,
    permissions: Option<Permissions>,
    autostart: Option<bool>,
}

fn pool_spec(spec: &Map) -> Result<PoolSpec, ScriptError> {
    let s = Spec::new(
        spec,
        "",
        &["name", "type", "path", "source", "permissions", "autostart"],
    )?;
    let name = s
        .string("name")?
        .ok_or_else(|| ScriptError::invalid("name", "()", "a pool needs a name"))?;
    check_name("name", &name)?;
    let pool_type = s.string("type")?.unwrap_or_else(|| "dir".into());
    if !POOL_TYPES.contains(&pool_type.as_str()) {
        return Err(ScriptError::invalid(
            "type",
            &pool_type,
            format!("unknown pool type (known: {})", POOL_TYPES.join(", ")),
        ));
    }
    let path = s.string("path")?;
    if let Some(p) = &path {
        // Absolute, no '..', no control characters, not a system directory.
        super::policy::check_pool_path(&pool_type, p)?;
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
        autostart: s.bool("autostart")?,
    };
    if let Some(source) = s.map("source")? {
        let src = Spec::new(
            &source,
            "source.",
            &["device", "dir", "host", "port", "format", "name"],
        )?;
        out.devices = src.strings("device")?;
        out.source_dir = src.string("dir")?;
        let port = match src.get("port") {
            None => None,
            Some(v) => Some(
                v.as_int()
                    .ok()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| {
                        ScriptError::invalid("source.port", v.to_string(), "expected a port number")
                    })?,
            ),
        };
        out.hosts = src
            .strings("host")?
            .into_iter()
            .map(|name| SourceHost { name, port })
            .collect();
        out.format = src.string("format")?;
        out.source_name = src.string("name")?;
    }
    if let Some(perms) = s.map("permissions")? {
        let p = Spec::new(&perms, "permissions.", &["mode", "owner", "group", "label"])?;
        let text = |key: &str| -> Result<Option<String>, ScriptError> {
            match p.get(key) {
                None => Ok(None),
                Some(v) if v.is_int() || v.is_string() => Ok(Some(v.to_string())),
                Some(v) => Err(ScriptError::invalid(
                    &p.field(key),
                    v.to_string(),
                    "expected a string or a number",
                )),
            }
        };
        out.permissions = Some(Permissions {
            mode: text("mode")?,
            owner: text("owner")?,
            group: text("group")?,
            label: text("label")?,
        });
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

impl PoolSpec {
    /// Write what the spec asks for into a document; returns what changed.
    fn apply(&self, doc: &mut PoolXml) -> Vec<String> {
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

    fn document(&self) -> PoolXml {
        let mut doc = PoolXml::new(&self.pool_type, &self.name);
        self.apply(&mut doc);
        doc
    }
}

fn lookup(host: &Host, name: &str) -> Result<Option<Pool>, Error> {
    match host.conn().lookup_storage_pool_by_name(name) {
        Ok(raw) => Ok(Some(Pool {
            host: host.clone(),
            raw: raw.into(),
        })),
        Err(e) if is_code(&e, sys::VIR_ERR_NO_STORAGE_POOL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Look a pool up by name, or fail naming it.
pub(crate) fn require_pool(ctx: &NativeCallContext, host: &Host, name: &str) -> ScriptResult<Pool> {
    match lookup(host, name).script(ctx)? {
        Some(p) => Ok(p),
        None => Err(ScriptError::not_found(
            "name",
            name,
            format!("no storage pool named {name:?} on {}", host.uri()),
        )
        .at(ctx)),
    }
}

fn define(ctx: &NativeCallContext, host: &Host, doc: &PoolXml) -> ScriptResult<Pool> {
    let raw = host
        .conn()
        .define_storage_pool_xml(&doc.to_xml(), 0)
        .script(ctx)?;
    let undo = raw.clone();
    journal::record(
        "define_pool",
        format!("pool {}", doc.name),
        Some(Box::new(move || undo.undefine())),
    );
    Ok(Pool {
        host: host.clone(),
        raw: raw.into(),
    })
}

fn start(ctx: &NativeCallContext, pool: &Pool) -> ScriptResult<()> {
    with_pool_retry(|| pool.raw.create(0)).script(ctx)?;
    let undo = pool.raw.clone();
    journal::record(
        "start_pool",
        format!("pool {}", pool.name()),
        Some(Box::new(move || undo.destroy())),
    );
    Ok(())
}

fn build(ctx: &NativeCallContext, pool: &Pool) -> ScriptResult<()> {
    pool.raw.build(0).script(ctx)?;
    journal::record("build_pool", format!("pool {}", pool.name()), None);
    Ok(())
}

fn state_name(state: u32) -> &'static str {
    match state {
        sys::VIR_STORAGE_POOL_INACTIVE => "inactive",
        sys::VIR_STORAGE_POOL_BUILDING => "building",
        sys::VIR_STORAGE_POOL_RUNNING => "running",
        sys::VIR_STORAGE_POOL_DEGRADED => "degraded",
        sys::VIR_STORAGE_POOL_INACCESSIBLE => "inaccessible",
        _ => "unknown",
    }
}

/// Whether the pool's type keeps its volumes in a directory we may create.
fn builds_directory(pool_type: &str) -> bool {
    matches!(pool_type, "dir" | "fs" | "netfs")
}

#[export_module(manifest)]
pub mod pool_api {
    use super::*;

    pub type Pool = super::Pool;

    /// Every storage pool on the host, active or not (`virsh pool-list --all`),
    /// in libvirt's order (the REPL prints them as a table sorted by name).
    ///
    /// ```rhai
    /// let names = HOST.pools().map(|p| p.name);
    /// assert(names.contains("default-pool"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn pools(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Array> {
        let pools = host.conn().list_all_storage_pools(0).script(&ctx)?;
        let mut out: Vec<super::Pool> = pools
            .into_iter()
            .map(|raw| super::Pool {
                host: host.clone(),
                raw: raw.into(),
            })
            .collect();
        out.sort_by_key(|p| p.name());
        Ok(out.into_iter().map(Dynamic::from).collect())
    }

    /// The storage pool named `name`; an error naming it when there is none.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// assert_eq(pool.type, "dir");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn pool(ctx: NativeCallContext, host: &mut Host, name: &str) -> ScriptResult<Pool> {
        require_pool(&ctx, host, name)
    }

    /// The storage pool named `name`, or `()` when there is none.
    ///
    /// ```rhai
    /// assert(HOST.find_pool("nope") == ());
    /// assert(HOST.find_pool("default-pool") != ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn find_pool(ctx: NativeCallContext, host: &mut Host, name: &str) -> ScriptResult<Dynamic> {
        Ok(lookup(host, name)
            .script(&ctx)?
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT))
    }

    /// Define a persistent storage pool (`virsh pool-define-as`), inactive and not built.
    /// `#{ name, type: "dir", path }`; `type` is `dir` (default), `fs`, `netfs`, `logical`
    /// or another libvirt pool type; `source: #{ device, dir, host, port, format, name }`
    /// describes where the storage comes from (`fs`: `device`; `netfs`: `host` and `dir`;
    /// `logical`: `name`, the volume group); `permissions: #{ mode, owner, group, label }`;
    /// `autostart: true`. A `path` that is `/` or a system directory (`/etc`, `/usr`,
    /// `/var`..., for `dir`/`fs`/`netfs` pools also anything inside `/etc`, `/usr`,
    /// `/boot`, `/root`, `/dev`...) is refused (`kind: "refused"`).
    ///
    /// ```rhai
    /// let pool = HOST.define_pool(#{ name: "images", type: "dir", path: "/tmp/images" });
    /// pool.build();
    /// pool.start();
    /// assert(pool.active);
    /// let nfs = HOST.define_pool(#{ name: "nfs", type: "netfs", path: "/mnt/nfs",
    ///     source: #{ host: "nas.example.com", dir: "/export/vms", format: "nfs" } });
    /// assert(nfs.xml.contains("nas.example.com"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn define_pool(ctx: NativeCallContext, host: &mut Host, spec: Map) -> ScriptResult<Pool> {
        let spec = pool_spec(&spec).map_err(|e| e.at(&ctx))?;
        if lookup(host, &spec.name).script(&ctx)?.is_some() {
            return Err(ScriptError::invalid(
                "name",
                &spec.name,
                "a storage pool with this name already exists (use ensure_pool to converge it)",
            )
            .at(&ctx));
        }
        let pool = define(&ctx, host, &spec.document())?;
        if let Some(autostart) = spec.autostart {
            pool.raw.set_autostart(autostart).script(&ctx)?;
        }
        Ok(pool)
    }

    /// Make a pool exist, built and running, as `spec` says (the keys of `define_pool`),
    /// changing only what differs; a re-run changes nothing. Returns
    /// `#{ action: "created"|"updated"|"unchanged", changes: [...], pool }`.
    ///
    /// ```rhai
    /// let spec = #{ name: "images", type: "dir", path: "/tmp/vs-images" };
    /// let first = HOST.ensure_pool(spec);
    /// assert_eq(first.action, "created");
    /// let again = HOST.ensure_pool(spec);
    /// assert_eq(again.action, "unchanged");
    /// spec.path = "/tmp/vs-images2";
    /// let moved = HOST.ensure_pool(spec);
    /// assert_eq(moved.action, "updated");
    /// print(moved.changes);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn ensure_pool(ctx: NativeCallContext, host: &mut Host, spec: Map) -> ScriptResult<Map> {
        let spec = pool_spec(&spec).map_err(|e| e.at(&ctx))?;
        let mut changes: Vec<String> = Vec::new();
        let (pool, created) = match lookup(host, &spec.name).script(&ctx)? {
            None => {
                let pool = define(&ctx, host, &spec.document())?;
                changes.push("defined".into());
                (pool, true)
            }
            Some(pool) => {
                let mut doc = pool.definition().at(&ctx)?;
                if doc.pool_type != spec.pool_type {
                    return Err(ScriptError::invalid(
                        "type",
                        &spec.pool_type,
                        format!(
                            "pool {} exists with type {}; a pool's type cannot change",
                            spec.name, doc.pool_type
                        ),
                    )
                    .at(&ctx));
                }
                let edits = spec.apply(&mut doc);
                if !edits.is_empty() {
                    define(&ctx, host, &doc)?;
                    changes.extend(edits);
                    // A running pool picks up a new definition when it restarts.
                    if pool.is_active() {
                        pool.raw.destroy().script(&ctx)?;
                        journal::record("stop_pool", format!("pool {}", spec.name), None);
                        changes.push("restarted".into());
                    }
                }
                (pool, false)
            }
        };
        if !pool.is_active() {
            if builds_directory(&spec.pool_type) {
                build(&ctx, &pool)?;
            }
            start(&ctx, &pool)?;
            if !created && !changes.iter().any(|c| c == "restarted") {
                changes.push("started".into());
            }
        }
        if let Some(want) = spec.autostart {
            if pool.raw.autostart().script(&ctx)? != want {
                pool.raw.set_autostart(want).script(&ctx)?;
                journal::record("autostart_pool", format!("pool {}", spec.name), None);
                changes.push(format!("autostart: {want}"));
            }
        }
        let action = if created {
            "created"
        } else if changes.is_empty() {
            "unchanged"
        } else {
            "updated"
        };
        let mut out = Map::new();
        out.insert("action".into(), action.into());
        out.insert(
            "changes".into(),
            changes
                .into_iter()
                .map(Dynamic::from)
                .collect::<Array>()
                .into(),
        );
        out.insert("pool".into(), Dynamic::from(pool));
        Ok(out)
    }

    /// The pool's name.
    ///
    /// ```rhai
    /// assert_eq(HOST.pool("default-pool").name, "default-pool");
    /// ```
    #[rhai_fn(get = "name", pure)]
    pub fn name(pool: &mut Pool) -> String {
        pool.name()
    }

    /// The host the pool is on.
    ///
    /// ```rhai
    /// assert_eq(HOST.pool("default-pool").host.uri, HOST.uri);
    /// ```
    #[rhai_fn(get = "host", pure)]
    pub fn host(pool: &mut Pool) -> Host {
        pool.host.clone()
    }

    /// The pool's UUID.
    ///
    /// ```rhai
    /// assert_eq(HOST.pool("default-pool").uuid.len(), 36);
    /// ```
    #[rhai_fn(get = "uuid", pure, return_raw)]
    pub fn uuid(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<String> {
        pool.raw.uuid_string().script(&ctx)
    }

    /// The pool's type: `dir`, `fs`, `netfs`, `logical`, ...
    ///
    /// ```rhai
    /// assert_eq(HOST.pool("default-pool").type, "dir");
    /// ```
    #[rhai_fn(get = "type", pure, return_raw)]
    pub fn pool_type(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<String> {
        Ok(pool.definition().at(&ctx)?.pool_type)
    }

    /// The pool's target path (the directory of a `dir` pool), or `""`.
    ///
    /// ```rhai
    /// assert_eq(HOST.pool("default-pool").path, "/default-pool");
    /// ```
    #[rhai_fn(get = "path", pure, return_raw)]
    pub fn path(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<String> {
        Ok(pool.definition().at(&ctx)?.target.path.unwrap_or_default())
    }

    /// Whether the pool is running.
    ///
    /// ```rhai
    /// assert(HOST.pool("default-pool").active);
    /// ```
    #[rhai_fn(get = "active", pure, return_raw)]
    pub fn active(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<bool> {
        pool.raw.is_active().script(&ctx)
    }

    /// Whether the pool has a persistent definition.
    ///
    /// ```rhai
    /// assert(HOST.pool("default-pool").persistent);
    /// ```
    #[rhai_fn(get = "persistent", pure, return_raw)]
    pub fn persistent(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<bool> {
        pool.raw.is_persistent().script(&ctx)
    }

    /// Whether libvirt starts the pool when the host boots.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// pool.autostart = true;
    /// assert(pool.autostart);
    /// ```
    #[rhai_fn(get = "autostart", pure, return_raw)]
    pub fn autostart(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<bool> {
        pool.raw.autostart().script(&ctx)
    }

    /// Start the pool when the host boots (`virsh pool-autostart`), or not.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// pool.autostart = false;
    /// assert(!pool.autostart);
    /// ```
    #[rhai_fn(set = "autostart", pure, return_raw)]
    pub fn set_autostart(ctx: NativeCallContext, pool: &mut Pool, on: bool) -> ScriptResult<()> {
        let before = pool.raw.autostart().script(&ctx)?;
        pool.raw.set_autostart(on).script(&ctx)?;
        let undo = pool.raw.clone();
        journal::record(
            "autostart_pool",
            format!("pool {}", pool.name()),
            Some(Box::new(move || undo.set_autostart(before).map(|_| ()))),
        );
        Ok(())
    }

    /// Create what the pool needs on the host (`virsh pool-build`): a `dir` pool's directory,
    /// a filesystem, a volume group.
    ///
    /// ```rhai
    /// let pool = HOST.define_pool(#{ name: "b", path: "/tmp/b" });
    /// pool.build();
    /// pool.start();
    /// assert(pool.active);
    /// ```
    #[rhai_fn(name = "build", pure, return_raw)]
    pub fn build_pool(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<()> {
        build(&ctx, pool)
    }

    /// Start the pool (`virsh pool-start`).
    ///
    /// ```rhai
    /// let pool = HOST.define_pool(#{ name: "s", path: "/tmp/s" });
    /// pool.start();
    /// assert_eq(pool.info().state, "running");
    /// ```
    #[rhai_fn(name = "start", pure, return_raw)]
    pub fn start_pool(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<()> {
        start(&ctx, pool)
    }

    /// Stop the pool (`virsh pool-destroy`); its volumes stay where they are.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// pool.stop();
    /// assert(!pool.active);
    /// ```
    #[rhai_fn(name = "stop", pure, return_raw)]
    pub fn stop_pool(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<()> {
        with_pool_retry(|| pool.raw.destroy()).script(&ctx)?;
        let undo = pool.raw.clone();
        journal::record(
            "stop_pool",
            format!("pool {}", pool.name()),
            Some(Box::new(move || undo.create(0))),
        );
        Ok(())
    }

    /// Remove what `build` made (`virsh pool-delete`): a `dir` pool's directory, only
    /// when it is empty. The pool must be stopped. Returns `#{ removed: path }`.
    ///
    /// ```rhai
    /// let pool = HOST.define_pool(#{ name: "d", path: "/tmp/d" });
    /// pool.build();
    /// let r = pool.delete();
    /// assert_eq(r.removed, "/tmp/d");
    /// ```
    #[rhai_fn(name = "delete", pure, return_raw)]
    pub fn delete_pool(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<Map> {
        let doc = pool.definition().at(&ctx)?;
        let path = doc.target.path.clone().unwrap_or_default();
        if pool.is_active() {
            return Err(ScriptError::new(
                ErrorKind::Invalid,
                format!(
                    "pool {} is running: stop it before deleting its storage",
                    doc.name
                ),
            )
            .at(&ctx));
        }
        if builds_directory(&doc.pool_type) && is_local(&pool.host) {
            if let Ok(entries) = std::fs::read_dir(&path) {
                let names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                if !names.is_empty() {
                    return Err(ScriptError::new(
                        ErrorKind::InUse,
                        format!(
                            "pool {}: {path} is not empty ({}); delete its volumes first",
                            doc.name,
                            names.join(", ")
                        ),
                    )
                    .with("path", path)
                    .at(&ctx));
                }
            }
        }
        pool.raw.delete(0).script(&ctx)?;
        journal::record("delete_pool", format!("pool {}", doc.name), None);
        let mut out = Map::new();
        out.insert("removed".into(), path.into());
        out.insert("pool".into(), doc.name.into());
        Ok(out)
    }

    /// Remove the pool's definition (`virsh pool-undefine`); its storage stays.
    /// Returns `#{ undefined: name }`.
    ///
    /// ```rhai
    /// let pool = HOST.define_pool(#{ name: "u", path: "/tmp/u" });
    /// pool.undefine();
    /// assert(HOST.find_pool("u") == ());
    /// ```
    #[rhai_fn(name = "undefine", pure, return_raw)]
    pub fn undefine_pool(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<Map> {
        let xml = pool.inactive_xml().script(&ctx)?;
        pool.raw.undefine().script(&ctx)?;
        let conn = pool.host.clone();
        journal::record(
            "undefine_pool",
            format!("pool {}", pool.name()),
            Some(Box::new(move || {
                conn.conn().define_storage_pool_xml(&xml, 0).map(|_| ())
            })),
        );
        let mut out = Map::new();
        out.insert("undefined".into(), pool.name().into());
        Ok(out)
    }

    /// Rescan the pool's volumes (`virsh pool-refresh`).
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// pool.create_volume(#{ name: "r.img", capacity: "1M" });
    /// pool.refresh();
    /// assert_eq(pool.volumes().map(|v| v.name), ["r.img"]);
    /// ```
    #[rhai_fn(name = "refresh", pure, return_raw)]
    pub fn refresh(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<()> {
        with_pool_retry(|| pool.raw.refresh(0)).script(&ctx)
    }

    /// What `virsh pool-info` shows: `name`, `uuid`, `state` (`running`, `inactive`,
    /// `building`, `degraded`, `inaccessible`), `persistent`, `autostart`, and `capacity`,
    /// `allocation`, `available` in bytes.
    ///
    /// ```rhai
    /// let i = HOST.pool("default-pool").info();
    /// assert_eq(i.state, "running");
    /// assert(i.capacity >= i.available);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn info(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<Map> {
        let info = pool.raw.info().script(&ctx)?;
        let mut m = Map::new();
        m.insert("name".into(), pool.name().into());
        m.insert("uuid".into(), pool.raw.uuid_string().script(&ctx)?.into());
        m.insert("state".into(), state_name(info.state).into());
        m.insert(
            "persistent".into(),
            pool.raw.is_persistent().script(&ctx)?.into(),
        );
        m.insert(
            "autostart".into(),
            pool.raw.autostart().script(&ctx)?.into(),
        );
        m.insert("capacity".into(), (info.capacity as i64).into());
        m.insert("allocation".into(), (info.allocation as i64).into());
        m.insert("available".into(), (info.available as i64).into());
        Ok(m)
    }

    /// The pool's XML as libvirt reports it (`virsh pool-dumpxml`).
    ///
    /// ```rhai
    /// assert(HOST.pool("default-pool").xml.contains("<pool type='dir'>"));
    /// ```
    #[rhai_fn(get = "xml", pure, return_raw)]
    pub fn xml(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<String> {
        pool.raw.xml_desc(0).script(&ctx)
    }

    /// `Pool(name, running)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(pool: &mut Pool) -> String {
        format!(
            "Pool({}, {})",
            pool.name(),
            if pool.is_active() {
                "running"
            } else {
                "inactive"
            }
        )
    }
}

/// Whether the connection's host is this machine (no host name in the URI), so
/// that paths libvirt reports can be used directly.
pub fn is_local(host: &Host) -> bool {
    super::host::is_local_uri(host.uri())
}

/// A libvirt pool's target path (`<target><path>`: a `dir` pool's directory).
pub fn target_path(raw: &virt::storage_pool::StoragePool) -> Option<String> {
    raw.xml_desc(0)
        .ok()
        .and_then(|x| crate::xml::tree::Element::parse(&x).ok())
        .and_then(|t| t.path(&["target", "path"]).map(|p| p.text()))
}

/// Map a `virt` storage pool into the script type.
pub fn wrap(host: &Host, raw: StoragePool) -> Pool {
    Pool {
        host: host.clone(),
        raw: raw.into(),
    }
}
