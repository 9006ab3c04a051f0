//! Install phases, as virt-install runs them: the persistent definition is the
//! final one, and the install boot is started as a live definition over it
//! (`virDomainCreateXML` with the same name and UUID over the inactive
//! persistent domain: libvirt runs the given XML and keeps the persistent
//! one for the next start). `define_vm` records the install boot in the VM's
//! metadata (namespace `xml::install::NS`); the first `vm.start()` runs it.
use rhai::NativeCallContext;
use virt::connect::Connect;
use virt::domain::Domain as RawDomain;
use virt::sys;

use crate::api::error::{LibvirtResultExt, ScriptError, ScriptResult};
use crate::runtime::journal;
use crate::xml::domain::Domain;
use crate::xml::install::{self, InstallPhase};
use crate::xml::metadata;

/// Start the install boot `install_xml` over the defined VM `dom` (same name
/// and UUID), journalled as a start (undone by destroying it).
pub fn start_install(
    conn: &Connect,
    dom: &RawDomain,
    install_xml: &str,
    ctx: &NativeCallContext,
) -> ScriptResult<()> {
    conn.create_domain_xml(install_xml, 0).script(ctx)?;
    let name = dom.name().unwrap_or_default();
    let undo = dom.clone();
    journal::record(
        "start_vm",
        format!("vm {name} (install boot)"),
        Some(Box::new(move || undo.destroy())),
    );
    Ok(())
}

/// Remove the volumes (or, on the test driver, private files) made only for
/// the install boot, now that it has started (or could not).
pub fn remove_scratch(conn: &Connect, paths: &[String]) {
    for path in paths {
        match conn.lookup_storage_vol_by_path(path) {
            Ok(vol) => {
                if vol.delete(0).is_ok() {
                    journal::record("delete_volume", format!("volume {path} (installer)"), None);
                }
            }
            Err(_) => {
                if conn.uri().unwrap_or_default().starts_with("test:") {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

/// The install phase a defined VM has recorded, if any.
pub fn recorded(dom: &RawDomain) -> Option<InstallPhase> {
    let el = crate::api::vm::metadata_element(dom, install::NS, sys::VIR_DOMAIN_AFFECT_CONFIG)
        .ok()??;
    Some(InstallPhase::from_element(&el))
}

/// `vm.start()` of a VM with a recorded install phase: the persistent
/// definition with the phase on it and the record left out, started over
/// the persistent one; then the record is cleared (the install boot is
/// used up) and the installer files made for it are removed.
pub fn start_recorded(
    conn: &Connect,
    dom: &RawDomain,
    phase: &InstallPhase,
    ctx: &NativeCallContext,
) -> ScriptResult<()> {
    let inactive = dom
        .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE)
        .script(ctx)?;
    let (mut d, mut tree) = Domain::parse(&inactive).map_err(|e| {
        ScriptError::new(
            crate::runtime::ErrorKind::Xml,
            format!("cannot read the VM's definition: {e}"),
        )
        .at(ctx)
    })?;
    phase.apply(&mut d);
    d.apply_to(&mut tree);
    if let Some(md) = tree.child_mut("metadata") {
        md.remove_elements(|e| metadata::in_namespace(e, install::NS));
    }
    metadata::drop_empty(&mut tree);
    let started = start_install(conn, dom, &tree.to_xml(), ctx);
    if started.is_ok() {
        clear_record(dom, ctx)?;
    }
    remove_scratch(conn, &phase.scratch);
    started
}

/// Drop the install-phase record from the persistent definition.
fn clear_record(dom: &RawDomain, ctx: &NativeCallContext) -> ScriptResult<()> {
    let kind = sys::VIR_DOMAIN_METADATA_ELEMENT as i32;
    dom.set_metadata(
        kind,
        None,
        None,
        Some(install::NS),
        sys::VIR_DOMAIN_AFFECT_CONFIG,
    )
    .script(ctx)?;
    journal::record(
        "set_metadata",
        format!("vm {} (install phase used)", dom.name().unwrap_or_default()),
        None,
    );
    Ok(())
}
