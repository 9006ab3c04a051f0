//! A pool's state changes (`virsh pool-build`, `pool-start`, `pool-destroy`,
//! `pool-delete`, `pool-undefine`, `pool-refresh`), each recorded in the
//! journal with its undo where there is one.
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};

use super::{is_local, with_pool_retry, Pool};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::runtime::journal;
use crate::runtime::ErrorKind;

pub(super) fn start(ctx: &NativeCallContext, pool: &Pool) -> ScriptResult<()> {
    with_pool_retry(|| pool.raw.create(0)).script(ctx)?;
    let undo = pool.raw.clone();
    journal::record(
        "start_pool",
        format!("pool {}", pool.name()),
        Some(Box::new(move || undo.destroy())),
    );
    Ok(())
}

pub(super) fn build(ctx: &NativeCallContext, pool: &Pool) -> ScriptResult<()> {
    pool.raw.build(0).script(ctx)?;
    journal::record("build_pool", format!("pool {}", pool.name()), None);
    Ok(())
}

/// Whether the pool's type keeps its volumes in a directory we may create.
pub(super) fn builds_directory(pool_type: &str) -> bool {
    matches!(pool_type, "dir" | "fs" | "netfs")
}
#[export_module(manifest)]
pub mod pool_lifecycle_api {
    use super::*;

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
}
