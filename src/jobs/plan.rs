//! `run --plan`: rehearse a script on a copy of the target host — libvirt's
//! test driver loaded with the host's networks, pools, volumes and VMs — and
//! report what the script would change, without touching the host.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use virt::connect::Connect;

use crate::xml::tree::Element;

pub use crate::api::object::ObjectState;
use crate::api::object::Plan;
use crate::api::OBJECTS;

/// Every object on a host, keyed `network/NAME`, `pool/NAME`,
/// `volume/POOL/NAME`, `domain/NAME` (each object's `ScriptObject::PLAN`).
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

/// The objects that take part in the plan.
fn planned() -> impl Iterator<Item = Plan> {
    OBJECTS.iter().filter_map(|kind| kind.plan())
}

/// The plan part of the object a key names (`network/default`).
fn plan_of(key: &str) -> Option<Plan> {
    let kind = key.split('/').next()?;
    planned().find(|plan| plan.key == kind)
}

/// Read every object of interest from a host.
pub fn inventory(conn: &Connect) -> Result<Inventory, virt::error::Error> {
    let mut inv = Inventory::new();
    for plan in planned() {
        inv.extend((plan.states)(conn)?);
    }
    Ok(inv)
}

/// A test-driver node document holding a copy of `inv`'s objects: each at
/// the top or inside its parent (a volume in its pool), in key order.
pub fn rehearsal_document(inv: &Inventory) -> Result<String, String> {
    let mut top: BTreeMap<&str, Element> = BTreeMap::new();
    for (key, state) in inv {
        let Some(plan) = plan_of(key).filter(|p| (p.parent)(key).is_none()) else {
            continue;
        };
        let parsed = Element::parse(&state.xml).map_err(|e| format!("{key}: {e}"))?;
        top.insert(key, (plan.rehearsal)(parsed, state));
    }
    for (key, state) in inv {
        let Some((plan, parent)) = plan_of(key).and_then(|p| Some((p, (p.parent)(key)?))) else {
            continue;
        };
        // A child whose XML the test driver could not take is left out.
        if let (Some(parent), Ok(child)) =
            (top.get_mut(parent.as_str()), Element::parse(&state.xml))
        {
            parent.push((plan.rehearsal)(child, state));
        }
    }
    let mut node = Element::new("node");
    for element in top.into_values() {
        node.push(element);
    }
    Ok(node.to_xml())
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
        let Some(plan) = plan_of(key) else {
            continue;
        };
        let name = &key[plan.key.len() + 1..];
        (plan.restore)(&conn, name, state).map_err(|e| format!("{key}: {}", e.message()))?;
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
