//! The clone intent log. Before a clone (or a whole `clone_many` batch) makes
//! anything, the source VM's definition records, in virtscript's own
//! metadata namespace, what is about to be made (each clone's name and UUID,
//! its volumes and NVRAM file) and by whom (`runtime::process::Identity`).
//! The record goes once the clones are complete, or once their undo ran.
//!
//! A record found by a later clone from the same VM means a run died midway
//! (libvirtd or virtscript killed) with no chance to undo: its half-copied
//! volumes are still there under their final names, and a re-run would
//! otherwise pick new names and leave them behind. When that run's process
//! is gone, its undo is finished first (VMs only when name AND UUID match),
//! saying what was removed.
//!
//! Why on the source VM: it lives on the daemon (so the record survives the
//! client and works for remote hosts), it is the object every re-run of the
//! clone starts from, and it is read there anyway.
use std::collections::BTreeSet;
use std::sync::Mutex;

use virt::domain::Domain as RawDomain;
use virt::sys;

use crate::api::error::ScriptError;
use crate::api::volume::partial;
use crate::api::vm::Vm;
use crate::runtime::log;
use crate::runtime::process::{self, Identity, Liveness};
use crate::xml::metadata::{self as meta, STATE_NS, STATE_PREFIX};
use crate::xml::tree::Element;

use super::{ClonePlan, NvramJob};

const KIND: i32 = sys::VIR_DOMAIN_METADATA_ELEMENT as i32;

/// The batches this process is making now. A record of this process that is
/// not among them belongs to a call that failed without its undo (the
/// connection was lost) and that a script may retry after reconnecting.
static ACTIVE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Held around each read-modify-write of a record, so that clones from one
/// source on several threads (`parallel`) do not drop each other's batch.
/// (Two processes cloning one source at the same instant can still race.)
static WRITING: Mutex<()> = Mutex::new(());

fn active() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A batch recorded on its source VM; [`Intent::end`] removes the record.
pub struct Intent {
    src: RawDomain,
    id: String,
}

fn read(dom: &RawDomain) -> Result<Option<Element>, virt::error::Error> {
    crate::api::vm::metadata_element(dom, STATE_NS, 0)
}

fn write(dom: &RawDomain, state: &Element) -> Result<(), virt::error::Error> {
    let flags = crate::api::vm::every_definition(dom)?;
    let empty = state.elements().next().is_none();
    let xml = (!empty).then(|| state.to_xml());
    let prefix = (!empty).then_some(STATE_PREFIX);
    dom.set_metadata(KIND, xml.as_deref(), prefix, Some(STATE_NS), flags)?;
    if empty && flags & sys::VIR_DOMAIN_AFFECT_CONFIG != 0 {
        drop_empty_metadata(dom)?;
    }
    Ok(())
}

/// libvirt keeps an empty `<metadata/>` once its last element is removed:
/// drop it, so a clone leaves its source's definition as it found it.
fn drop_empty_metadata(dom: &RawDomain) -> Result<(), virt::error::Error> {
    let xml = dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE)?;
    let Ok(mut tree) = Element::parse(&xml) else {
        return Ok(());
    };
    if meta::drop_empty(&mut tree) {
        dom.connect()?.define_domain_xml(&tree.to_xml())?;
    }
    Ok(())
}

fn owner(batch: &Element) -> Identity {
    let get = |k: &str| batch.attr(k).unwrap_or_default().to_owned();
    Identity {
        host: get("host"),
        boot: get("boot"),
        pid: get("pid").parse().unwrap_or(0),
        started: get("started").parse().unwrap_or(0),
    }
}

/// Whether the run that recorded `batch` has ended: its process is gone, or
/// it is this process and the call that made the batch has returned.
fn run_ended(batch: &Element) -> bool {
    match owner(batch).liveness() {
        Liveness::Gone => true,
        Liveness::Me => !active().contains(batch.attr("id").unwrap_or_default()),
        Liveness::Running | Liveness::Elsewhere => false,
    }
}

/// Record `plans` on their source before anything is made.
pub fn begin(src: &Vm, plans: &[ClonePlan]) -> Result<Intent, ScriptError> {
    let me = process::current();
    let id = uuid::Uuid::new_v4().to_string();
    let mut batch = Element::new("batch");
    batch.set_attr("id", id.clone());
    batch.set_attr("host", me.host.clone());
    batch.set_attr("boot", me.boot.clone());
    batch.set_attr("pid", me.pid.to_string());
    batch.set_attr("started", me.started.to_string());
    for plan in plans {
        let mut vm = Element::new("vm");
        vm.set_attr("name", plan.edits.name.clone());
        vm.set_attr("uuid", plan.edits.uuid.clone());
        batch.push(vm);
        for job in &plan.disks {
            batch.push(volume(&job.pool.name(), &job.name));
        }
        match &plan.nvram {
            Some((NvramJob::Volume { pool, name, .. }, _)) => batch.push(volume(&pool.name(), name)),
            Some((NvramJob::File { to, .. }, _)) => {
                let mut file = Element::new("file");
                file.set_attr("path", to.clone());
                batch.push(file);
            }
            _ => {}
        }
    }
    let dom = &src.raw;
    let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let mut state = read(dom)
        .map_err(|e| ScriptError::libvirt(&e))?
        .unwrap_or_else(|| Element::new("clones"));
    state.push(batch);
    write(dom, &state).map_err(|e| ScriptError::libvirt(&e))?;
    active().insert(id.clone());
    Ok(Intent {
        src: (*src.raw).clone(),
        id,
    })
}

fn volume(pool: &str, name: &str) -> Element {
    let mut v = Element::new("volume");
    v.set_attr("pool", pool);
    v.set_attr("name", name);
    v
}

impl Drop for Intent {
    fn drop(&mut self) {
        active().remove(&self.id);
    }
}

impl Intent {
    /// The batch is complete (or undone): forget it. A failure here is the
    /// run's failure: the clones are then not handed out, so that a batch is
    /// either recorded or complete, never both lost.
    pub fn end(self) -> Result<(), ScriptError> {
        let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut state) = read(&self.src).map_err(|e| ScriptError::libvirt(&e))? else {
            return Ok(());
        };
        state.remove_elements(|e| e.name == "batch" && e.attr("id") == Some(self.id.as_str()));
        write(&self.src, &state).map_err(|e| ScriptError::libvirt(&e))
    }
}

/// Finish the undo of batches from `src` whose run died; leave (and name)
/// those whose run may still be going.
pub fn recover(src: &Vm) -> Result<(), ScriptError> {
    let dom = &src.raw;
    let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut state) = read(dom).map_err(|e| ScriptError::libvirt(&e))? else {
        return Ok(());
    };
    let conn = src.host.conn();
    let mut finished = false;
    for batch in state.children_named("batch") {
        let who = owner(batch);
        let listed: Vec<String> = batch
            .elements()
            .filter_map(|e| e.attr("name").or(e.attr("path")).map(str::to_owned))
            .collect();
        if !run_ended(batch) {
            if who.liveness() != Liveness::Me {
                log::notice(&format!(
                    "virtscript: a clone of {} by {} is running or was interrupted; \
                     what it makes is left alone ({})",
                    src.name(),
                    who.describe(),
                    listed.join(", ")
                ));
            }
            continue;
        }
        let mut removed = Vec::new();
        for el in batch.elements() {
            match el.name.as_str() {
                "vm" => {
                    let (name, uuid) = (el.attr("name").unwrap_or(""), el.attr("uuid"));
                    let Ok(d) = conn.lookup_domain_by_name(name) else {
                        continue;
                    };
                    if d.uuid_string().ok().as_deref() != uuid {
                        continue; // Someone else's VM of that name: not ours to remove.
                    }
                    let _ = d.destroy();
                    if d.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM).is_err() {
                        d.undefine().map_err(|e| ScriptError::libvirt(&e))?;
                    }
                    removed.push(format!("VM {name}"));
                }
                "volume" => {
                    let (pool, name) = (el.attr("pool").unwrap_or(""), el.attr("name").unwrap_or(""));
                    let Ok(p) = conn.lookup_storage_pool_by_name(pool) else {
                        continue;
                    };
                    let _ = p.refresh(0);
                    if let Ok(v) = p.lookup_storage_vol_by_name(name) {
                        v.delete(0).map_err(|e| ScriptError::libvirt(&e))?;
                        removed.push(format!("volume {pool}/{name}"));
                    }
                    // The marker of its copy, when the copy was in flight.
                    if let Ok(m) = p.lookup_storage_vol_by_name(&partial::marker_name(name)) {
                        let _ = m.delete(0);
                    }
                }
                "file" => {
                    let path = el.attr("path").unwrap_or("");
                    if crate::api::pool::is_local(&src.host) && std::fs::remove_file(path).is_ok() {
                        removed.push(format!("file {path}"));
                    }
                }
                _ => {}
            }
        }
        log::notice(&format!(
            "virtscript: finished the undo of an interrupted clone of {} (by {}): {}",
            src.name(),
            who.describe(),
            if removed.is_empty() {
                "nothing of it was left".to_owned()
            } else {
                format!("removed {}", removed.join(", "))
            }
        ));
        finished = true;
    }
    if finished {
        state.remove_elements(|e| e.name == "batch" && run_ended(e));
        write(dom, &state).map_err(|e| ScriptError::libvirt(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(who: &Identity, id: &str) -> Element {
        let mut b = Element::new("batch");
        b.set_attr("id", id);
        b.set_attr("host", who.host.clone());
        b.set_attr("boot", who.boot.clone());
        b.set_attr("pid", who.pid.to_string());
        b.set_attr("started", who.started.to_string());
        b
    }

    #[test]
    fn a_batch_of_this_process_has_ended_once_its_call_returned() {
        let me = process::current();
        let batch = batch_of(me, "retry-1");
        assert!(run_ended(&batch), "no call of this process is making it");
        active().insert("retry-1".into());
        assert!(!run_ended(&batch), "a call of this process is making it now");
        active().remove("retry-1");
        let elsewhere = Identity {
            host: format!("{}-other", me.host),
            ..me.clone()
        };
        assert!(!run_ended(&batch_of(&elsewhere, "far")));
        let rebooted = Identity {
            boot: "another-boot".into(),
            ..me.clone()
        };
        assert!(run_ended(&batch_of(&rebooted, "old")));
    }
}
