//! Script objects as table rows, so the REPL prints an array of them the way
//! `virsh net-list --all`, `vol-list` and `list --all` do.
//!
//! To make a type print as a table: implement [`TableRow`] for it (next to the
//! type, or below) and add ONE line `table_for::<Type>,` to [`KINDS`]. Columns
//! go identifying first, as virsh's lists (`Name, State, ...`); the REPL sorts
//! the rows by name and fits them to the terminal (src/output/table.rs).
//!
//! Arrays of maps (`vm.disks()`, `net.leases()`) print as tables too, their
//! columns in the order of their entry in [`MAP_COLUMNS`].
use rhai::Dynamic;

use super::{Host, Network, Pool, Vm, Volume};

/// A script object that can be one row of a table.
pub trait TableRow: Clone + Send + Sync + 'static {
    /// Column headings, in order (`Name`, `State`, `Autostart`, ...).
    fn columns() -> &'static [&'static str];
    /// This object's cells, one per column. Must not fail: show `-` for what
    /// cannot be read (an object deleted meanwhile).
    fn row(&self) -> Vec<String>;
}

/// Headings and rows, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The rows of `items` if every one of them is a `T`.
pub fn table_for<T: TableRow>(items: &[Dynamic]) -> Option<Table> {
    if items.is_empty() || !items.iter().all(|item| item.is::<T>()) {
        return None;
    }
    let rows = items
        .iter()
        .filter_map(|item| item.read_lock::<T>().map(|value| value.row()))
        .collect();
    Some(Table {
        columns: T::columns().iter().map(|c| (*c).to_owned()).collect(),
        rows,
    })
}

/// Tries one type on an array: [`table_for::<T>`].
pub type TableFn = fn(&[Dynamic]) -> Option<Table>;

/// Every type that prints as a table: one line per type.
pub static KINDS: &[TableFn] = &[
    table_for::<Host>,
    table_for::<super::Network>,
    table_for::<super::Pool>,
    table_for::<super::Volume>,
    table_for::<super::Vm>,
    table_for::<super::Snapshot>,
];

/// A table of `items` when they are all objects of one known type.
pub fn table_of(items: &[Dynamic]) -> Option<Table> {
    KINDS.iter().find_map(|kind| kind(items))
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

impl TableRow for Host {
    fn columns() -> &'static [&'static str] {
        &["URI", "Hostname", "Libvirt", "Alive"]
    }

    fn row(&self) -> Vec<String> {
        let conn = self.conn();
        vec![
            self.uri().to_owned(),
            conn.hostname().unwrap_or_else(|_| "-".into()),
            conn.lib_version()
                .map(super::host::version_string)
                .unwrap_or_else(|_| "-".into()),
            yes_no(conn.is_alive().unwrap_or(false)).to_owned(),
        ]
    }
}

/// `yes`/`no`, as virsh prints booleans in its lists.
pub fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

impl TableRow for Pool {
    /// As `virsh pool-list --all --details`.
    fn columns() -> &'static [&'static str] {
        &[
            "Name",
            "State",
            "Autostart",
            "Persistent",
            "Capacity",
            "Allocation",
            "Available",
        ]
    }

    fn row(&self) -> Vec<String> {
        let size = |v: u64| crate::runtime::units::format_size(v);
        let (state, capacity, allocation, available) = match self.raw.info() {
            Ok(i) => (
                if self.raw.is_active().unwrap_or(false) {
                    "active"
                } else {
                    "inactive"
                }
                .to_owned(),
                size(i.capacity),
                size(i.allocation),
                size(i.available),
            ),
            Err(_) => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        vec![
            self.name(),
            state,
            self.raw
                .autostart()
                .map(|a| yes_no(a).to_owned())
                .unwrap_or_else(|_| "-".into()),
            self.raw
                .is_persistent()
                .map(|a| yes_no(a).to_owned())
                .unwrap_or_else(|_| "-".into()),
            capacity,
            allocation,
            available,
        ]
    }
}

impl TableRow for Volume {
    /// As `virsh vol-list --details`.
    fn columns() -> &'static [&'static str] {
        &["Name", "Path", "Capacity", "Allocation"]
    }

    fn row(&self) -> Vec<String> {
        let info = self.raw.info().ok();
        vec![
            self.name(),
            self.raw.path().unwrap_or_else(|_| "-".into()),
            info.as_ref()
                .map(|i| crate::runtime::units::format_size(i.capacity))
                .unwrap_or_else(|| "-".into()),
            info.as_ref()
                .map(|i| crate::runtime::units::format_size(i.allocation))
                .unwrap_or_else(|| "-".into()),
        ]
    }
}

impl TableRow for Vm {
    /// As `virsh list --all` with autostart and persistence, the name first
    /// (the rows are sorted by it; the Id is blank for a VM that is off).
    fn columns() -> &'static [&'static str] {
        &["Name", "State", "Id", "Autostart", "Persistent"]
    }

    fn row(&self) -> Vec<String> {
        let id = self
            .raw
            .id()
            .map(|i| i.to_string())
            .unwrap_or_else(|| "-".into());
        vec![
            self.name(),
            self.state_name(),
            id,
            self.raw
                .autostart()
                .map(|a| yes_no(a).to_owned())
                .unwrap_or_else(|_| "-".into()),
            self.raw
                .is_persistent()
                .map(|a| yes_no(a).to_owned())
                .unwrap_or_else(|_| "-".into()),
        ]
    }
}

impl TableRow for Network {
    /// As `virsh net-list --all`, with the bridge.
    fn columns() -> &'static [&'static str] {
        &["Name", "State", "Autostart", "Persistent", "Bridge"]
    }

    fn row(&self) -> Vec<String> {
        let flag = |r: Result<bool, virt::error::Error>| {
            r.map(|b| yes_no(b).to_owned())
                .unwrap_or_else(|_| "-".into())
        };
        vec![
            self.raw.name().unwrap_or_else(|_| "-".into()),
            match self.raw.is_active() {
                Ok(true) => "active".into(),
                Ok(false) => "inactive".into(),
                Err(_) => "-".into(),
            },
            flag(self.raw.autostart()),
            flag(self.raw.is_persistent()),
            self.raw.bridge_name().unwrap_or_else(|_| "-".into()),
        ]
    }
}

impl TableRow for super::Snapshot {
    /// As `virsh snapshot-list --parent`, with whether it is the current one.
    fn columns() -> &'static [&'static str] {
        &["Name", "Creation Time", "State", "Parent", "Current"]
    }

    fn row(&self) -> Vec<String> {
        let d = self.definition().ok();
        let created = d
            .as_ref()
            .and_then(|d| d.creation_time)
            .map(|t| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
                )
                .to_string()
            })
            .unwrap_or_else(|| "-".into());
        vec![
            self.name(),
            created,
            d.as_ref()
                .and_then(|d| d.state.clone())
                .unwrap_or_else(|| "-".into()),
            d.and_then(|d| d.parent).unwrap_or_else(|| "-".into()),
            yes_no(self.is_current()).to_owned(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
