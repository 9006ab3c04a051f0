//! `ensure_network`: make a network match a spec with the smallest change
//! (live updates, else a redefinition and, when allowed, a restart), read
//! back to see that libvirt took it.
use crate::runtime::ErrorKind;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};

use super::lifecycle::{
    define_xml, restart, set_autostart, start_with, stop_network, undo_redefine,
};
use super::live::{changed_keys, live_changes, not_taken, overlay};
use super::occupancy::{check_clash, remember};
use super::spec::{spec_of, NetworkSpec};
use super::update::apply_live;
use super::validate;
use super::{config_xml, lookup, Network};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::Host;
use crate::runtime::journal;
use crate::xml::network::{NetworkDef, NetworkDoc};

/// Which of a network's documents a change should show in.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Config {
    /// The one the next start uses (`--inactive`).
    Persistent,
    /// The running one.
    Live,
}

/// Read back what a redefinition or restart changed: every key that differs
/// between `before` and `target` must now be as in `target`. A driver that
/// keeps no separate persistent config of a running network (the test
/// driver) drops a redefinition silently; that is an error, not "updated".
pub(super) fn check_taken(
    ctx: &NativeCallContext,
    net: &Network,
    before: &NetworkDef,
    target: &NetworkDef,
    which: Config,
) -> ScriptResult<()> {
    let xml = match which {
        Config::Persistent => config_xml(&net.raw),
        Config::Live => net.raw.xml_desc(0),
    }
    .script(ctx)?;
    let now = NetworkDef::parse(&xml).at(ctx)?;
    let missing = not_taken(before, target, &now);
    if missing.is_empty() {
        return Ok(());
    }
    let keys = missing.join(", ");
    Err(ScriptError::new(
        ErrorKind::NotApplied,
        format!(
            "network '{}': libvirt kept the old {keys} in its {} config ({})",
            net.name(),
            if which == Config::Live { "running" } else { "persistent" },
            if which == Config::Live {
                "the restart did not bring the new config up"
            } else {
                "the redefinition did not take; a driver that keeps no separate persistent config of a running network, like the test driver, drops it: stop the network, change it, start it"
            }
        ),
    )
    .with("field", keys)
    .with("value", net.name())
    .at(ctx))
}

/// `ensure_network` on an existing network: bring its config to `desired`.
fn converge(
    ctx: &NativeCallContext,
    net: &Network,
    spec: &NetworkSpec,
    desired: &NetworkDef,
    changes: &mut Array,
) -> ScriptResult<bool> {
    let xml = config_xml(&net.raw).script(ctx)?;
    let mut doc = NetworkDoc::parse(&xml).at(ctx)?;
    let actual = doc.def().clone();
    if let (Some(want), Some(have)) = (&desired.uuid, &actual.uuid) {
        if !want.eq_ignore_ascii_case(have) {
            return Err(ScriptError::invalid(
                "uuid",
                want,
                format!("network '{}' already exists with uuid {have}", actual.name),
            )
            .at(ctx));
        }
    }
    let target = overlay(&actual, desired);
    let updates = live_changes(&actual, &target);
    if matches!(&updates, Some(u) if u.is_empty()) {
        return Ok(false);
    }
    validate::network(&target)
        .map_err(|e| spec.field_name(e))
        .at(ctx)?;
    check_clash(ctx, &net.host, &target, Some(spec), false)?;
    let active = net.raw.is_active().script(ctx)?;
    match updates {
        Some(updates) => {
            for u in &updates {
                apply_live(ctx, net, u)?;
                changes.push(u.description.clone().into());
            }
            remember(&net.host, &target);
            Ok(false)
        }
        None => {
            let keys = changed_keys(&actual, &target).join(", ");
            doc.set_def(target.clone());
            net.host
                .conn()
                .define_network_xml(&doc.to_xml())
                .script(ctx)?;
            journal::record(
                "define_network",
                format!("{} (redefined: {keys})", net.label()),
                Some(undo_redefine(net.host.clone(), xml)),
            );
            remember(&net.host, &target);
            check_taken(ctx, net, &actual, &target, Config::Persistent)?;
            changes.push(format!("redefined ({keys})").into());
            if active {
                if spec.restart == Some(true) {
                    restart(ctx, net)?;
                    check_taken(ctx, net, &actual, &target, Config::Live)?;
                    changes.push("restarted".into());
                } else {
                    changes.push(
                        format!("restart needed for {keys} to take effect (pass restart: true)")
                            .into(),
                    );
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// `ensure_network`'s steps (see there); the caller makes them one unit.
fn ensure(ctx: &NativeCallContext, host: &Host, spec: &Map) -> ScriptResult<Map> {
    let (spec, desired) = spec_of(ctx, spec)?;
    let mut changes = Array::new();
    let mut created = false;
    let mut restart_needed = false;
    let net = match lookup(host, &desired.name).script(ctx)? {
        None => {
            check_clash(ctx, host, &desired, Some(&spec), true)?;
            created = true;
            changes.push("defined".into());
            define_xml(ctx, host, &desired.to_xml(), &desired)?
        }
        Some(raw) => {
            let net = super::Network {
                host: host.clone(),
                raw: raw.into(),
            };
            restart_needed = converge(ctx, &net, &spec, &desired, &mut changes)?;
            net
        }
    };
    if let Some(on) = spec.autostart {
        if net.raw.autostart().script(ctx)? != on {
            set_autostart(ctx, &net, on)?;
            changes.push(format!("autostart {}", if on { "on" } else { "off" }).into());
        }
    }
    let want_active = spec.active.unwrap_or(true);
    if net.raw.is_active().script(ctx)? != want_active {
        if want_active {
            start_with(ctx, &net, spec.cleanup_stale == Some(true))?;
            changes.push("started".into());
        } else {
            stop_network(ctx, &net)?;
            changes.push("stopped".into());
        }
    }
    let action = match (created, changes.is_empty()) {
        (true, _) => "created",
        (false, true) => "unchanged",
        (false, false) => "updated",
    };
    let mut m = Map::new();
    m.insert("action".into(), action.into());
    m.insert("changes".into(), changes.into());
    m.insert("restart_needed".into(), restart_needed.into());
    m.insert("network".into(), Dynamic::from(net));
    Ok(m)
}

#[export_module(manifest)]
pub mod network_converge_api {
    use super::*;

    /// Make the network match the spec, idempotently: define (and start) it if
    /// absent; otherwise compare the spec with its config and make the smallest
    /// change — live updates (DHCP hosts and ranges, DNS records, forward
    /// interfaces, port groups) without a restart where libvirt allows, else a
    /// redefinition that takes effect at the next start, or at once when the
    /// spec says `restart: true`. Only keys in the spec are compared (libvirt's
    /// defaults stay). `autostart` and `active` (default true) are ensured too.
    /// It is one unit: when a step fails, the steps before it are undone. A
    /// start that finds the bridge device already there with no active
    /// network using it (a daemon killed mid-start leaves one) is an error
    /// saying so; `cleanup_stale: true` removes that bridge and starts.
    /// Returns `#{ action: "created"|"updated"|"unchanged", changes: [...],
    /// restart_needed, network }`; a second run changes nothing.
    ///
    /// ```rhai
    /// let spec = #{ name: "lab", forward: "nat", ip: "192.168.10.1/24",
    ///               dhcp: ["192.168.10.2", "192.168.10.254"] };
    /// assert_eq(HOST.ensure_network(spec).action, "created");
    /// let before = mutation_count();
    /// assert_eq(HOST.ensure_network(spec).action, "unchanged");
    /// assert_eq(mutation_count(), before);
    /// spec.dhcp_hosts = [#{ mac: "52:54:00:00:00:10", ip: "192.168.10.10", name: "web" }];
    /// let r = HOST.ensure_network(spec);
    /// assert_eq(r.action, "updated");
    /// assert_eq(r.changes, ["DHCP host 52:54:00:00:00:10 added"]);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn ensure_network(ctx: NativeCallContext, host: &mut Host, spec: Map) -> ScriptResult<Map> {
        // One unit: a define that cannot start, or the third of five live
        // updates failing, leaves the network as it was.
        crate::api::control::atomically(|| ensure(&ctx, host, &spec))
    }
}
