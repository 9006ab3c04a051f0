//! `Pool` script object: storage pools (`virsh pool-*`). This file holds the
//! type, its lookups and what a script reads of a pool; the spec reader is in
//! [`spec`], defining and converging in [`define`], the state changes in
//! [`lifecycle`], and libvirt's busy-pool retries in [`retry`].
mod object;
pub mod define;
pub mod lifecycle;
pub mod retry;
pub mod spec;

use crate::runtime::ErrorKind;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use virt::error::Error;
use virt::storage_pool::StoragePool;
use virt::sys;

use super::args::Fields;
use super::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use super::Host;
use crate::runtime::journal;
use crate::xml::storage::PoolXml;

// Reached as `pool::…` from volumes and VMs.
pub use retry::{create_in_pool, is_pool_busy, with_pool_retry};

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

pub(crate) fn is_code(e: &Error, code: u32) -> bool {
    e.code().to_raw() as i64 == code as i64
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

/// A name or path as the script gave it, for [`check_name`] and the path
/// policy to judge: they refuse control characters showing the value escaped
/// (an error is printed on terminals), where `Fields::string` would show it raw.
pub(crate) fn plain_text(f: &Fields, key: &str) -> Result<Option<String>, ScriptError> {
    match f.raw(key) {
        None => Ok(None),
        Some(v) if v.is_string() => Ok(Some(v.to_string())),
        Some(v) => Err(f.wrong(key, v, "a string")),
    }
}

pub(crate) fn lookup(host: &Host, name: &str) -> Result<Option<Pool>, Error> {
    match host.conn().lookup_storage_pool_by_name(name) {
        Ok(raw) => Ok(Some(wrap(host, raw))),
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
        let mut out: Vec<super::Pool> = pools.into_iter().map(|raw| wrap(host, raw)).collect();
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
