//! `define_pool` and `ensure_pool`: a spec made into a pool, or an existing
//! pool converged to it, changing only what differs.
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

use super::lifecycle::{build, builds_directory, start};
use super::spec::pool_spec;
use super::{lookup, Pool};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::Host;
use crate::runtime::journal;
use crate::xml::storage::PoolXml;

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

#[export_module(manifest)]
pub mod pool_define_api {
    use super::*;

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
        let spec = pool_spec(&spec).at(&ctx)?;
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
        let spec = pool_spec(&spec).at(&ctx)?;
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
}
