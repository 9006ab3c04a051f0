//! `run --plan`: rehearse a script on a copy of the target host — libvirt's
//! test driver loaded with the host's networks, pools, volumes and VMs — and
//! report what the script would change, without touching the host.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use virt::connect::Connect;

use crate::xml::tree::Element;

/// One libvirt object as the plan compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub xml: String,
    pub active: bool,
    pub autostart: bool,
}

/// Every object on a host, keyed `network/NAME`, `pool/NAME`,
/// `volume/POOL/NAME`, `domain/NAME`.
pub type Inventory = BTreeMap<String, ObjectState>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Changed,
    Removed,
}

#[derive(Debug, Clone)]
pub struct PlannedChange {
    pub kind: ChangeKind,
    pub object: String,
    /// For changes: state changes and a unified diff of the XML.
    pub detail: String,
    pub before: Option<ObjectState>,
    pub after: Option<ObjectState>,
}

/// Objects removed by someone else while we list them are simply not there.
fn vanished(err: &virt::error::Error) -> bool {
    use virt::error::ErrorNumber::*;
    [NoNetwork, NoStorageVolume, NoStoragePool, NoDomain]
        .into_iter()
        .any(|n| err.code() == n.into())
}

/// Keep `Ok`, drop objects that vanished meanwhile, pass on other errors.
fn present<T>(result: Result<T, virt::error::Error>) -> Result<Option<T>, virt::error::Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if vanished(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Read every object of interest from a host.
pub fn inventory(conn: &Connect) -> Result<Inventory, virt::error::Error> {
    let mut inv = Inventory::new();
    for net in conn.list_all_networks(0)? {
        let Some((key, state)) = present(network_state(&net))? else {
            continue;
        };
        inv.insert(key, state);
    }
    for pool in conn.list_all_storage_pools(0)? {
        let Some(entries) = present(pool_states(&pool))? else {
            continue;
        };
        inv.extend(entries);
    }
    for dom in conn.list_all_domains(0)? {
        let Some((key, state)) = present(domain_state(&dom))? else {
            continue;
        };
        inv.insert(key, state);
    }
    Ok(inv)
}

fn network_state(
    net: &virt::network::Network,
) -> Result<(String, ObjectState), virt::error::Error> {
    let persistent = net.is_persistent()?;
    let flags = if persistent {
        virt::sys::VIR_NETWORK_XML_INACTIVE
    } else {
        0
    };
    Ok((
        format!("network/{}", net.name()?),
        ObjectState {
            // The test driver (the rehearsal) has no INACTIVE flag for networks.
            xml: net.xml_desc(flags).or_else(|_| net.xml_desc(0))?,
            active: net.is_active()?,
            autostart: net.autostart().unwrap_or(false),
        },
    ))
}

fn pool_states(
    pool: &virt::storage_pool::StoragePool,
) -> Result<Vec<(String, ObjectState)>, virt::error::Error> {
    let pool_name = pool.name()?;
    let active = pool.is_active()?;
    let mut out = vec![(
        format!("pool/{pool_name}"),
        ObjectState {
            xml: pool
                .xml_desc(virt::sys::VIR_STORAGE_XML_INACTIVE)
                .or_else(|_| pool.xml_desc(0))?,
            active,
            autostart: pool.autostart().unwrap_or(false),
        },
    )];
    if active {
        for vol in pool.list_all_volumes(0)? {
            let state = present(vol.name().and_then(|name| Ok((name, vol.xml_desc(0)?))))?;
            if let Some((name, xml)) = state {
                out.push((
                    format!("volume/{pool_name}/{name}"),
                    ObjectState {
                        xml,
                        active: true,
                        autostart: false,
                    },
                ));
            }
        }
    }
    Ok(out)
}

fn domain_state(dom: &virt::domain::Domain) -> Result<(String, ObjectState), virt::error::Error> {
    let persistent = dom.is_persistent()?;
    let flags = if persistent {
        virt::sys::VIR_DOMAIN_XML_INACTIVE
    } else {
        0
    };
    Ok((
        format!("domain/{}", dom.name()?),
        ObjectState {
            xml: dom.xml_desc(flags).or_else(|_| dom.xml_desc(0))?,
            active: dom.is_active()?,
            autostart: dom.autostart().unwrap_or(false),
        },
    ))
}

/// A test-driver node document holding a copy of `inv`'s objects.
pub fn rehearsal_document(inv: &Inventory) -> Result<String, String> {
    let mut node = Element::new("node");
    let mut pools: BTreeMap<&str, Element> = BTreeMap::new();
    for (key, state) in inv {
        let parsed = Element::parse(&state.xml).map_err(|e| format!("{key}: {e}"))?;
        match key.split('/').next() {
            Some("network") => node.push(parsed),
            Some("pool") => {
                pools.insert(&key["pool/".len()..], parsed);
            }
            Some("domain") => node.push(rehearsal_domain(parsed, state.active)),
            _ => {}
        }
    }
    for (key, state) in inv {
        if let Some(rest) = key.strip_prefix("volume/") {
            let (pool, _) = rest.split_once('/').unwrap_or((rest, ""));
            if let (Some(pool), Ok(vol)) = (pools.get_mut(pool), Element::parse(&state.xml)) {
                pool.push(vol);
            }
        }
    }
    for pool in pools.into_values() {
        node.push(pool);
    }
    Ok(node.to_xml())
}

/// The test driver runs only `type='test'` domains; its own namespace sets the run state.
fn rehearsal_domain(mut dom: Element, active: bool) -> Element {
    dom.set_attr("type", "test");
    dom.set_attr("xmlns:test", "http://libvirt.org/schemas/domain/test");
    // virDomainState: 1 running, 5 shut off.
    dom.push(Element::new("test:runstate").with_text(if active { "1" } else { "5" }));
    dom
}

/// Open the rehearsal host from a node document written to `path`, with each
/// object's state (active, autostart) set as on the real host.
pub fn open_rehearsal(inv: &Inventory, path: &Path) -> Result<Connect, String> {
    let document = rehearsal_document(inv)?;
    std::fs::write(path, document).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let uri = format!("test://{}", path.display());
    let conn = Connect::open(Some(&uri)).map_err(|e| {
        format!(
            "the test driver refused the host's objects: {}",
            e.message()
        )
    })?;
    // The test driver starts every network and pool it loads; match the host.
    for (key, state) in inv {
        let result = if let Some(name) = key.strip_prefix("network/") {
            conn.lookup_network_by_name(name).and_then(|n| {
                if !state.active && n.is_active()? {
                    n.destroy()?;
                }
                n.set_autostart(state.autostart).map(|_| ())
            })
        } else if let Some(name) = key.strip_prefix("pool/") {
            conn.lookup_storage_pool_by_name(name).and_then(|p| {
                if !state.active && p.is_active()? {
                    p.destroy()?;
                }
                p.set_autostart(state.autostart).map(|_| ())
            })
        } else if let Some(name) = key.strip_prefix("domain/") {
            conn.lookup_domain_by_name(name)
                .and_then(|d| d.set_autostart(state.autostart).map(|_| ()))
        } else {
            Ok(())
        };
        result.map_err(|e| format!("{key}: {}", e.message()))?;
    }
    Ok(conn)
}

/// What differs between two inventories of the same host.
pub fn diff(before: &Inventory, after: &Inventory) -> Vec<PlannedChange> {
    let mut changes = Vec::new();
    for (key, old) in before {
        match after.get(key) {
            None => changes.push(PlannedChange {
                kind: ChangeKind::Removed,
                object: key.clone(),
                detail: String::new(),
                before: Some(old.clone()),
                after: None,
            }),
            Some(new) if new != old => {
                let mut detail = String::new();
                if old.active != new.active {
                    let _ = writeln!(
                        detail,
                        "  state: {} -> {}",
                        state(old.active),
                        state(new.active)
                    );
                }
                if old.autostart != new.autostart {
                    let _ = writeln!(
                        detail,
                        "  autostart: {} -> {}",
                        old.autostart, new.autostart
                    );
                }
                if old.xml != new.xml {
                    let text = similar::TextDiff::from_lines(&old.xml, &new.xml);
                    for line in text.unified_diff().context_radius(2).to_string().lines() {
                        let _ = writeln!(detail, "  {line}");
                    }
                }
                changes.push(PlannedChange {
                    kind: ChangeKind::Changed,
                    object: key.clone(),
                    detail,
                    before: Some(old.clone()),
                    after: Some(new.clone()),
                });
            }
            Some(_) => {}
        }
    }
    for key in after.keys().filter(|k| !before.contains_key(*k)) {
        changes.push(PlannedChange {
            kind: ChangeKind::Created,
            object: key.clone(),
            detail: String::new(),
            before: None,
            after: after.get(key).cloned(),
        });
    }
    changes
}

fn state(active: bool) -> &'static str {
    if active {
        "active"
    } else {
        "inactive"
    }
}

/// The plan as text, one object per line, changes followed by their details.
pub fn render(changes: &[PlannedChange]) -> String {
    if changes.is_empty() {
        return "plan: no changes\n".to_owned();
    }
    let mut out = String::new();
    for c in changes {
        let sign = match c.kind {
            ChangeKind::Created => "+ create",
            ChangeKind::Changed => "~ change",
            ChangeKind::Removed => "- remove",
        };
        let _ = writeln!(out, "{sign} {}", c.object.replace('/', " "));
        out.push_str(&c.detail);
    }
    let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    let _ = writeln!(
        out,
        "plan: {} to create, {} to change, {} to remove",
        count(ChangeKind::Created),
        count(ChangeKind::Changed),
        count(ChangeKind::Removed)
    );
    out
}

/// The plan as JSON (`run --plan --json`, and the report's `plan`), after
/// Terraform's `show -json`: every change with the object's kind and name,
/// the action, the state before and after, and a unified diff of the XML.
pub fn to_json(changes: &[PlannedChange]) -> serde_json::Value {
    use serde_json::json;
    let state = |s: &Option<ObjectState>| {
        s.as_ref()
            .map(|s| json!({ "active": s.active, "autostart": s.autostart }))
    };
    let items: Vec<serde_json::Value> = changes
        .iter()
        .map(|c| {
            let mut parts = c.object.splitn(3, '/');
            let kind = parts.next().unwrap_or_default();
            let (pool, name) = match (parts.next(), parts.next()) {
                (Some(pool), Some(name)) => (Some(pool), name),
                (Some(name), None) => (None, name),
                _ => (None, ""),
            };
            let xml =
                |s: &Option<ObjectState>| s.as_ref().map_or("", |s| s.xml.as_str()).to_owned();
            let (old, new) = (xml(&c.before), xml(&c.after));
            let diff = similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(2)
                .to_string();
            json!({
                "object": kind,
                "name": name,
                "pool": pool,
                "action": match c.kind {
                    ChangeKind::Created => "create",
                    ChangeKind::Changed => "change",
                    ChangeKind::Removed => "remove",
                },
                "before": state(&c.before),
                "after": state(&c.after),
                "diff": diff,
            })
        })
        .collect();
    let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    json!({
        "changes": items,
        "summary": {
            "create": count(ChangeKind::Created),
            "change": count(ChangeKind::Changed),
            "remove": count(ChangeKind::Removed),
        },
    })
}
