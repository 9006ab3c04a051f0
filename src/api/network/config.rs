//! Changing a network's persistent config in place: `edit` (the config as
//! a map), `apply` (restart into it), application metadata.
use crate::runtime::ErrorKind;

use rhai::plugin::*;
use rhai::{Dynamic, FnPtr, Map, NativeCallContext};

use super::converge::{check_taken, Config};
use super::lifecycle::{restart, undo_redefine};
use super::occupancy::{check_clash, remember};
use super::validate;
use super::{config_xml, to_map, xml_problem, Network};
use crate::api::args::{from_map, keys_of};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::metadata::metadata_arg;
use crate::runtime::journal;
use crate::xml::metadata as meta;
use crate::xml::network::{NetworkDef, NetworkDoc};
use crate::xml::tree::Element;

#[export_module(manifest)]
pub mod network_config_api {
    use super::*;

    /// Change the persistent config like `virsh net-edit`: the closure gets the
    /// config map (see `config`) and changes it in place (or returns a new map).
    /// The change is validated, and applied onto the XML so that parts not in
    /// the map are kept. Returns whether a restart is needed for it to take
    /// effect (the network is running and its live XML differs); `apply()` or
    /// `restart()` does that.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "lab", ip: "192.168.10.1/24",
    ///                                  dhcp: ["192.168.10.2", "192.168.10.254"] });
    /// let restart = net.edit(|cfg| {
    ///     cfg.ips[0].dhcp.ranges[0].start = "192.168.10.100";
    ///     cfg.bridge = #{ name: "virbr10", stp: false };
    /// });
    /// assert(!restart);   // not running: the next start uses it
    /// assert(net.xml_inactive.contains("start='192.168.10.100'"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn edit(ctx: NativeCallContext, net: &mut Network, f: FnPtr) -> ScriptResult<bool> {
        if !net.raw.is_persistent().script(&ctx)? {
            return Err(ScriptError::new(
                ErrorKind::Invalid,
                format!(
                    "network '{}' is transient: it has no persistent config to edit",
                    net.name()
                ),
            )
            .at(&ctx));
        }
        let xml = config_xml(&net.raw).script(&ctx)?;
        let mut doc = NetworkDoc::parse(&xml).at(&ctx)?;
        let cfg = to_map(&ctx, doc.def())?.into_shared();
        let returned: Dynamic = f.call_within_context(&ctx, (cfg.clone(),))?;
        let edited = if returned.is_map() {
            returned
        } else {
            cfg.flatten_clone()
        };
        let Some(map) = edited.try_cast::<Map>() else {
            return Err(
                ScriptError::new(ErrorKind::Invalid, "edit: the config must stay a map").at(&ctx),
            );
        };
        let new: NetworkDef = from_map(&ctx, "network config", &map, keys_of::<NetworkDef>())?;
        if new.name != doc.def().name {
            return Err(ScriptError::invalid(
                "name",
                &new.name,
                "a network cannot be renamed by editing; define a new one",
            )
            .at(&ctx));
        }
        if &new == doc.def() {
            return Ok(false);
        }
        let doc_before = doc.clone();
        validate::network(&new).at(&ctx)?;
        check_clash(&ctx, &net.host, &new, None, false)?;
        doc.set_def(new.clone());
        net.host
            .conn()
            .define_network_xml(&doc.to_xml())
            .script(&ctx)?;
        journal::record(
            "define_network",
            format!("{} (edited)", net.label()),
            Some(undo_redefine(net.host.clone(), xml)),
        );
        remember(&net.host, &new);
        check_taken(&ctx, net, doc_before.def(), &new, Config::Persistent)?;
        if !net.raw.is_active().script(&ctx)? {
            return Ok(false);
        }
        let live = NetworkDef::parse(&net.raw.xml_desc(0).script(&ctx)?).at(&ctx)?;
        Ok(live != new)
    }

    /// Make the persistent config live: restart the network if it is running
    /// and its live XML differs from the config. Returns whether it restarted.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// assert(!net.apply());   // nothing to apply
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn apply(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<bool> {
        if !net.raw.is_active().script(&ctx)? || !net.raw.is_persistent().script(&ctx)? {
            return Ok(false);
        }
        let parse = |xml: String| NetworkDef::parse(&xml).at(&ctx);
        let mut live = parse(net.raw.xml_desc(0).script(&ctx)?)?;
        let config = parse(config_xml(&net.raw).script(&ctx)?)?;
        // A running NAT network shows the port range libvirt chose (1024-65535)
        // where its config names none: that is no difference to apply.
        if let (Some(lf), Some(cf)) = (live.forward.as_mut(), config.forward.as_ref()) {
            let chosen = crate::xml::network::Nat {
                port: Some(crate::xml::network::PortRange {
                    start: 1024,
                    end: 65535,
                }),
                ..Default::default()
            };
            if cf.nat.is_none() && lf.nat.as_ref() == Some(&chosen) {
                lf.nat = None;
            }
        }
        if live == config {
            return Ok(false);
        }
        restart(&ctx, net)?;
        Ok(true)
    }

    /// The application metadata element in XML namespace `ns_uri` from the
    /// network's persistent config (`<metadata>`), as XML without its namespace
    /// prefix, or `()` when there is none. Read it with `xml_parse`.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "tagged", ip: "192.168.40.1/24" });
    /// assert(net.metadata("https://example.org/owner") == ());
    /// net.set_metadata("https://example.org/owner", "<owner team='ops'/>");
    /// assert_eq(net.metadata("https://example.org/owner"), "<owner team='ops'/>");
    /// assert_eq(xml_parse(net.metadata("https://example.org/owner")).attrs.team, "ops");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn metadata(
        ctx: NativeCallContext,
        net: &mut Network,
        ns_uri: &str,
    ) -> ScriptResult<Dynamic> {
        let xml = config_xml(&net.raw).script(&ctx)?;
        let def = NetworkDef::parse(&xml).at(&ctx)?;
        Ok(meta::find(def.metadata.as_deref(), ns_uri)
            .map(|el| Dynamic::from(el.to_xml()))
            .unwrap_or(Dynamic::UNIT))
    }

    /// Store an application metadata element in namespace `ns_uri` in the
    /// network's persistent config, replacing the one there (`()` removes it).
    /// The element is written with the prefix it has (`<app:x xmlns:app=...>`),
    /// else `vs`. Other namespaces' elements stay. A running network keeps
    /// running (metadata needs no restart). Returns false when it already was so.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "tagged", ip: "192.168.40.1/24" });
    /// assert(net.set_metadata("https://example.org/owner", "<owner team='ops'/>"));
    /// assert(!net.set_metadata("https://example.org/owner", "<owner team='ops'/>"));
    /// assert(net.xml_inactive.contains("xmlns:vs=\"https://example.org/owner\""));
    /// assert(net.set_metadata("https://example.org/owner", ()));
    /// assert(net.metadata("https://example.org/owner") == ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn set_metadata(
        ctx: NativeCallContext,
        net: &mut Network,
        ns_uri: &str,
        xml: Dynamic,
    ) -> ScriptResult<bool> {
        let wanted = metadata_arg(&ctx, ns_uri, &xml)?;
        if !net.raw.is_persistent().script(&ctx)? {
            return Err(ScriptError::new(
                ErrorKind::Invalid,
                format!(
                    "network '{}' is transient: it has no persistent config to hold metadata",
                    net.name()
                ),
            )
            .at(&ctx));
        }
        let old_xml = config_xml(&net.raw).script(&ctx)?;
        let mut doc = NetworkDoc::parse(&old_xml).at(&ctx)?;
        let current = meta::find(doc.def().metadata.as_deref(), ns_uri);
        if current.as_ref().map(Element::normalized)
            == wanted.as_ref().map(|(_, el)| el.normalized())
        {
            return Ok(false);
        }
        let new_inner = meta::replace(
            doc.def().metadata.as_deref(),
            ns_uri,
            wanted
                .as_ref()
                .map(|(p, el)| (el, p.as_deref().unwrap_or(meta::DEFAULT_PREFIX))),
        )
        .map_err(xml_problem)
        .at(&ctx)?;
        doc.edit(|def| def.metadata = new_inner);
        net.host
            .conn()
            .define_network_xml(&doc.to_xml())
            .script(&ctx)?;
        let host = net.host.clone();
        journal::record(
            "set_metadata",
            format!("{} ({ns_uri})", net.label()),
            Some(Box::new(move || {
                host.conn().define_network_xml(&old_xml).map(|_| ())
            })),
        );
        // Read back: a driver may drop the redefinition of a running network.
        let stored = NetworkDef::parse(&config_xml(&net.raw).script(&ctx)?).at(&ctx)?;
        let now = meta::find(stored.metadata.as_deref(), ns_uri);
        if now.as_ref().map(Element::normalized) != wanted.as_ref().map(|(_, el)| el.normalized()) {
            return Err(ScriptError::new(
                ErrorKind::NotApplied,
                format!(
                    "network '{}': libvirt did not keep the metadata in {ns_uri} (a driver that keeps no separate persistent config of a running network, like the test driver, drops it: stop the network, set the metadata, start it)",
                    net.name()
                ),
            )
            .with("field", "metadata")
            .with("value", ns_uri.to_owned())
            .at(&ctx));
        }
        Ok(true)
    }
}
