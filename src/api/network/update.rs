//! Applying one live change (`virNetworkUpdate`) to a network's running
//! state and persistent config, journalled with its inverse.

use rhai::NativeCallContext;
use virt::sys;

use super::live::{LiveChange, UpdateCommand, UpdateSection};
use super::Network;
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::runtime::journal;
use crate::xml::tree::Element;

fn libvirt_section(s: UpdateSection) -> sys::virNetworkUpdateSection {
    match s {
        UpdateSection::IpDhcpHost => sys::VIR_NETWORK_SECTION_IP_DHCP_HOST,
        UpdateSection::IpDhcpRange => sys::VIR_NETWORK_SECTION_IP_DHCP_RANGE,
        UpdateSection::DnsHost => sys::VIR_NETWORK_SECTION_DNS_HOST,
        UpdateSection::DnsTxt => sys::VIR_NETWORK_SECTION_DNS_TXT,
        UpdateSection::DnsSrv => sys::VIR_NETWORK_SECTION_DNS_SRV,
        UpdateSection::ForwardInterface => sys::VIR_NETWORK_SECTION_FORWARD_INTERFACE,
        UpdateSection::Portgroup => sys::VIR_NETWORK_SECTION_PORTGROUP,
    }
}

/// The argument an update's record came from, for errors.
fn section_field(s: UpdateSection) -> &'static str {
    match s {
        UpdateSection::IpDhcpHost => "dhcp_host",
        UpdateSection::IpDhcpRange => "dhcp_range",
        UpdateSection::DnsHost => "dns_host",
        UpdateSection::DnsTxt => "dns_txt",
        UpdateSection::DnsSrv => "dns_srv",
        UpdateSection::ForwardInterface => "forward_interface",
        UpdateSection::Portgroup => "portgroup",
    }
}

fn libvirt_command(c: UpdateCommand) -> sys::virNetworkUpdateCommand {
    match c {
        UpdateCommand::Add => sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
        UpdateCommand::Delete => sys::VIR_NETWORK_UPDATE_COMMAND_DELETE,
        UpdateCommand::Modify => sys::VIR_NETWORK_UPDATE_COMMAND_MODIFY,
    }
}

/// `virNetworkUpdate` on the running network and its persistent config
/// (live + config when active and persistent; live only for a transient one;
/// config only when inactive), journalled with its inverse.
pub(super) fn apply_live(
    ctx: &NativeCallContext,
    net: &Network,
    change: &LiveChange,
) -> ScriptResult<()> {
    let active = net.raw.is_active().script(ctx)?;
    let persistent = net.raw.is_persistent().script(ctx)?;
    let mut flags = 0;
    if active {
        flags |= sys::VIR_NETWORK_UPDATE_AFFECT_LIVE;
    }
    if persistent {
        flags |= sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG;
    }
    let section = libvirt_section(change.section);
    let index = change.parent_index;
    let entry = change.xml.to_xml();
    net.raw
        .update(
            libvirt_command(change.command),
            section,
            index,
            &entry,
            flags,
        )
        .map_err(|e| {
            // libvirt's text names neither the record nor the network.
            let err = ScriptError::libvirt(&e);
            let message = format!(
                "network '{}': libvirt refused the update \"{}\": {}",
                net.name(),
                change.description,
                e.message()
            );
            err.with("message", message)
                .with("field", section_field(change.section))
                .with("value", entry.clone())
        })
        .at(ctx)?;
    let n = net.raw.clone();
    let (undo_cmd, undo_xml) = (libvirt_command(change.undo.0), change.undo.1.to_xml());
    journal::record(
        "update_network",
        format!("{}: {}", net.label(), change.description),
        Some(Box::new(move || {
            n.update(undo_cmd, section, index, &undo_xml, flags)
        })),
    );
    Ok(())
}

pub(super) fn live_change(
    command: UpdateCommand,
    section: UpdateSection,
    parent_index: i32,
    xml: Element,
    undo: (UpdateCommand, Element),
    description: String,
) -> LiveChange {
    LiveChange {
        command,
        section,
        parent_index,
        xml,
        undo,
        description,
    }
}
