//! Script objects as table rows, so the REPL prints an array of them the way
//! `virsh net-list --all`, `vol-list` and `list --all` do.
//!
//! Each object gives its columns and row in its `object.rs`
//! ([`super::object::ScriptObject`]); the REPL sorts the rows by name and fits
//! them to the terminal (src/output/table.rs).
//!
//! Arrays of maps (`vm.disks()`, `net.leases()`) print as tables too, their
//! columns in the order of their entry in [`MAP_COLUMNS`].
use rhai::Dynamic;

/// Headings and rows, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A table of `items` when they are all objects of one known type.
pub fn table_of(items: &[Dynamic]) -> Option<Table> {
    super::OBJECTS.iter().find_map(|kind| kind.table(items))
}

/// The column order of the maps a list-returning function gives, identifying
/// columns first (`virsh domblklist`: Target, Source): `(function, keys)`. An
/// array of maps uses the first entry whose first key every map has and whose
/// keys hold all of theirs.
pub static MAP_COLUMNS: &[(&str, &[&str])] = &[
    (
        "Vm.disks",
        &[
            "target",
            "source",
            "device",
            "type",
            "bus",
            "format",
            "cache",
            "readonly",
            "shareable",
            "boot_order",
        ],
    ),
    // `virsh domiflist`
    (
        "Vm.interfaces",
        &["interface", "type", "source", "model", "mac"],
    ),
    // `virsh domifaddr`
    (
        "Vm.addresses",
        &["interface", "mac", "family", "ip", "prefix", "source"],
    ),
    // `virsh net-dhcp-leases`
    (
        "Network.leases",
        &[
            "mac",
            "ip",
            "prefix",
            "hostname",
            "type",
            "expiry_time",
            "client_id",
            "interface",
            "iaid",
            "expiry",
        ],
    ),
];

/// The column order for maps with these keys (each map's key list), if one fits.
pub fn map_columns(maps: &[Vec<&str>]) -> Option<&'static [&'static str]> {
    MAP_COLUMNS.iter().map(|(_, cols)| *cols).find(|cols| {
        maps.iter()
            .all(|keys| keys.contains(&cols[0]) && keys.iter().all(|k| cols.contains(k)))
    })
}

/// `yes`/`no`, as virsh prints booleans in its lists.
pub fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Vm;

    #[test]
    fn hosts_make_a_table_and_mixed_arrays_do_not() {
        let host = crate::testing::private_host();
        let uri = host.uri().to_owned();
        let items = vec![Dynamic::from(host.clone()), Dynamic::from(host)];
        let table = table_of(&items).expect("two hosts are a table");
        assert_eq!(table.columns, ["URI", "Hostname", "Libvirt", "Alive"]);
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.rows[0][0], uri);
        assert_eq!(table.rows[0][3], "yes");
        let mixed = vec![items[0].clone(), Dynamic::from(1_i64)];
        assert!(table_of(&mixed).is_none());
        assert!(table_of(&[]).is_none());
    }

    #[test]
    fn snapshots_make_a_table_like_snapshot_list_parent() {
        let host = crate::testing::private_host();
        let dom = host.conn().lookup_domain_by_name("test").unwrap();
        let a = dom
            .create_snapshot_xml("<domainsnapshot><name>a</name></domainsnapshot>", 0)
            .unwrap();
        let b = dom
            .create_snapshot_xml("<domainsnapshot><name>b</name></domainsnapshot>", 0)
            .unwrap();
        let vm = Vm {
            host: host.clone(),
            raw: dom.into(),
        };
        let items: Vec<Dynamic> = [a, b]
            .into_iter()
            .map(|raw| {
                Dynamic::from(super::super::Snapshot {
                    vm: vm.clone(),
                    raw,
                })
            })
            .collect();
        let table = table_of(&items).expect("snapshots are a table");
        assert_eq!(
            table.columns,
            ["Name", "Creation Time", "State", "Parent", "Current"]
        );
        assert_eq!(table.rows[0][0], "a");
        assert_eq!(table.rows[0][3], "-");
        assert_eq!(table.rows[1][2], "running");
        assert_eq!(table.rows[1][3], "a");
        assert_eq!(table.rows[1][4], "yes");
        assert_eq!(table.rows[0][4], "no");
    }
}
