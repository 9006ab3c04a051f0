//! Making a planned clone: the volumes, the NVRAM, the definition; what was
//! made is removed again when a later step fails.
use crate::runtime::ErrorKind;
use std::sync::Arc;

use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};
use virt::storage_vol::StorageVol;
use virt::sys;

use crate::api::error::{LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::pool::with_pool_retry;
use crate::api::vm::Vm;
use crate::api::volume::{clone_volume, delete_quietly, CloneHow, CloneMode};
use crate::runtime::journal;
use crate::xml::clone::{apply_clone, NewDiskSource};

use super::{ClonePlan, NvramJob};

/// What a clone made so far, removed again when a later step fails.
#[derive(Default)]
pub struct Made {
    volumes: Vec<Arc<StorageVol>>,
    files: Vec<String>,
    domain: Option<virt::domain::Domain>,
    host: Option<crate::api::Host>,
    what: String,
    started: bool,
}

impl Made {
    /// Remove everything made (best effort, in reverse order).
    pub fn undo(self) {
        if let Some(dom) = self.domain {
            let _ = dom.destroy();
            if dom.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM).is_err() {
                let _ = dom.undefine();
            }
        }
        for vol in self.volumes.iter().rev() {
            delete_quietly(vol);
        }
        for f in self.files {
            let _ = std::fs::remove_file(f);
        }
    }

    /// Record the finished clone in the journal (one change, undone as a
    /// whole) and hand out the new VM.
    pub fn commit(self) -> Vm {
        let Made {
            volumes,
            files,
            domain,
            host,
            what,
            started,
        } = self;
        let (Some(dom), Some(host)) = (domain, host) else {
            unreachable!("a committed clone has its domain");
        };
        let name = dom.name().unwrap_or_default();
        let undo_dom = dom.clone();
        journal::record(
            "clone_vm",
            what,
            Some(Box::new(move || {
                let _ = undo_dom.destroy();
                if undo_dom
                    .undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM)
                    .is_err()
                {
                    undo_dom.undefine()?;
                }
                for vol in volumes.iter().rev() {
                    with_pool_retry(|| vol.delete(0))?;
                }
                for f in files {
                    let _ = std::fs::remove_file(f);
                }
                Ok(())
            })),
        );
        if started {
            let undo = dom.clone();
            journal::record(
                "start_vm",
                format!("vm {name}"),
                Some(Box::new(move || undo.destroy())),
            );
        }
        Vm {
            host,
            raw: dom.into(),
        }
    }
}

/// Make the planned clone; on any failure remove everything it made. The
/// result is recorded in the journal by [`Made::commit`].
pub fn execute(ctx: &NativeCallContext, mut plan: ClonePlan) -> ScriptResult<Made> {
    let described: Vec<String> = plan
        .disks
        .iter()
        .map(|d| format!("{}/{}", d.pool.name(), d.name))
        .collect();
    let mut made = Made {
        host: Some(plan.src.host.clone()),
        what: format!(
            "vm {} from {} (volumes: {})",
            plan.edits.name,
            plan.edits.old_name,
            if described.is_empty() {
                "none".into()
            } else {
                described.join(", ")
            }
        ),
        started: plan.start,
        ..Made::default()
    };
    match execute_steps(ctx, &mut plan, &mut made) {
        Ok(()) => Ok(made),
        Err(e) => {
            made.undo();
            Err(e)
        }
    }
}

fn execute_steps(
    ctx: &NativeCallContext,
    plan: &mut ClonePlan,
    made: &mut Made,
) -> ScriptResult<()> {
    let host = plan.src.host.clone();
    for job in &plan.disks {
        if let Some(reason) = crate::runtime::stop::requested() {
            return Err(crate::api::error::stopped(ctx, reason));
        }
        let (vol, _) = clone_volume(
            ctx,
            &job.src,
            &job.src_doc,
            &job.pool,
            &job.name,
            CloneHow {
                sparse: job.sparse,
                key: "storage",
                ..CloneHow::mode(job.mode)
            },
        )
        .map_err(|e| with_disk(*e, &job.target))?;
        made.volumes.push(vol.raw.clone());
        let path = vol.raw.path().script(ctx)?;
        let format = vol
            .definition()
            .ok()
            .and_then(|d| d.target.format)
            .unwrap_or_else(|| "raw".into());
        plan.edits.disks.push((
            job.index,
            NewDiskSource {
                path,
                pool: job.pool.name(),
                volume: job.name.clone(),
                format,
            },
        ));
    }
    if let Some((job, new_path)) = &plan.nvram {
        match job {
            NvramJob::Volume {
                src,
                src_doc,
                pool,
                name,
            } => {
                let (vol, _) = clone_volume(ctx, src, src_doc, pool, name, CloneHow::mode(CloneMode::Full))?;
                made.volumes.push(vol.raw.clone());
            }
            NvramJob::File { from, to } => {
                std::fs::copy(from, to).map_err(|e| {
                    ScriptError::new(
                        ErrorKind::Io,
                        format!("cannot copy the NVRAM {from} to {to}: {e}"),
                    )
                    .with("field", "nvram")
                    .with("value", to.clone())
                    .at(ctx)
                })?;
                made.files.push(to.clone());
                // Same owner and mode as the source (QEMU runs as another user).
                if let Ok(meta) = std::fs::metadata(from) {
                    use std::os::unix::fs::MetadataExt;
                    let _ = std::fs::set_permissions(to, meta.permissions());
                    let _ = std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()));
                }
            }
            NvramJob::Fresh => {
                let _ = new_path;
            }
        }
    }
    let mut tree = plan.tree.clone();
    apply_clone(&mut tree, &plan.edits);
    let dom = host.conn().define_domain_xml(&tree.to_xml()).script(ctx)?;
    made.domain = Some(dom.clone());
    if plan.start {
        dom.create().script(ctx)?;
    }
    Ok(())
}

/// Say which disk a volume error was about.
fn with_disk(err: EvalAltResult, target: &str) -> Box<EvalAltResult> {
    match err {
        EvalAltResult::ErrorRuntime(value, pos) => {
            let value = match value.read_lock::<Map>().map(|m| m.clone()) {
                Some(mut m) => {
                    let msg = m.get("message").map(|v| v.to_string()).unwrap_or_default();
                    m.insert(
                        "message".into(),
                        format!("cloning disk {target}: {msg}").into(),
                    );
                    m.insert("disk".into(), target.to_owned().into());
                    Dynamic::from(m)
                }
                None => value,
            };
            Box::new(EvalAltResult::ErrorRuntime(value, pos))
        }
        other => Box::new(other),
    }
}
