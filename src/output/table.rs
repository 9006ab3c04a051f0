//! How a value is shown (a run's result, the REPL): arrays of objects (and
//! of maps) as aligned tables like `virsh net-list --all` (identifying columns
//! first, rows sorted by name, fitted to the terminal), maps pretty-printed
//! and aligned, the rest as Rhai's `to_debug` text. The array itself keeps
//! libvirt's order.
use rhai::{Array, Dynamic, Map};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::api::table::{map_columns, table_of, Table};

/// Text for a value; `debug` renders a single value the way `to_debug` does
/// (it knows the script objects); `width` is the terminal's, to fit tables in
/// (`None`: not a terminal, nothing is cut). `None` for unit: nothing is printed.
pub fn display(
    value: &Dynamic,
    debug: &dyn Fn(&Dynamic) -> String,
    width: Option<usize>,
) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    if let Some(array) = value.read_lock::<Array>() {
        if let Some(mut table) = table_of(&array).or_else(|| maps_table(&array)) {
            sort_by_name(&mut table);
            let rows = table.rows.len();
            let (mut text, hidden) = match width {
                Some(width) => fit_table(&table, width),
                None => (render_table(&table), Vec::new()),
            };
            let count = format!("{rows} {}", if rows == 1 { "row" } else { "rows" });
            if hidden.is_empty() {
                text.push_str(&format!("({count})\n"));
            } else {
                text.push_str(&format!(
                    "({count}; not shown for the width: {}; :json shows all)\n",
                    hidden.join(", ")
                ));
            }
            return Some(text);
        }
    }
    let mut out = String::new();
    pretty(&mut out, value, 0, debug);
    out.push('\n');
    Some(out)
}

/// An array of maps as a table: the union of their keys as columns, in the
/// order of their function's entry in `MAP_COLUMNS` (`vm.disks()`: target,
/// source, ...), else `name` first; nested values written inline.
pub fn maps_table(items: &[Dynamic]) -> Option<Table> {
    if items.is_empty() || !items.iter().all(|i| i.is_map()) {
        return None;
    }
    let mut columns: Vec<String> = Vec::new();
    let mut key_lists: Vec<Vec<String>> = Vec::new();
    for item in items {
        let map = item.read_lock::<Map>()?;
        key_lists.push(map.keys().map(|k| k.to_string()).collect());
        for key in map.keys() {
            if !columns.iter().any(|c| c == key.as_str()) {
                columns.push(key.to_string());
            }
        }
    }
    let keys: Vec<Vec<&str>> = key_lists
        .iter()
        .map(|k| k.iter().map(String::as_str).collect())
        .collect();
    if let Some(order) = map_columns(&keys) {
        let rank = |c: &String| order.iter().position(|o| o == c);
        columns.sort_by_key(rank);
    } else if let Some(i) = columns.iter().position(|c| c == "name") {
        let name = columns.remove(i);
        columns.insert(0, name);
    }
    let rows = items
        .iter()
        .filter_map(|item| {
            let map = item.read_lock::<Map>()?;
            Some(
                columns
                    .iter()
                    .map(|c| map.get(c.as_str()).map(cell).unwrap_or_else(|| "-".into()))
                    .collect(),
            )
        })
        .collect();
    Some(Table { columns, rows })
}

/// A value in a table cell: strings without quotes, booleans as yes/no like virsh.
fn cell(value: &Dynamic) -> String {
    if value.is_unit() {
        "-".into()
    } else if let Ok(b) = value.as_bool() {
        crate::api::table::yes_no(b).into()
    } else if value.is_string() {
        value.to_string()
    } else {
        let mut out = String::new();
        inline(&mut out, value, &|v| format!("{v:?}"));
        out
    }
}

/// Rows in name order, as `virsh list`/`net-list` print them (case-insensitive,
/// then exact); tables without a name column (disks) keep their order.
pub fn sort_by_name(table: &mut Table) {
    let Some(i) = table
        .columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case("name"))
    else {
        return;
    };
    table.rows.sort_by(|a, b| {
        let (a, b) = (a.get(i), b.get(i));
        let lower = |s: Option<&String>| s.map(|s| s.to_lowercase());
        lower(a).cmp(&lower(b)).then_with(|| a.cmp(&b))
    });
}

/// A cell as it can be shown on one line: newlines, tabs and other control
/// characters (escape sequences too) written as `\n`, `\t`, `\u{1b}`.
pub fn escape_cell(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// virsh's list layout: a leading space, columns separated by three spaces,
/// a dashed rule under the headings. Nothing is cut.
pub fn render_table(table: &Table) -> String {
    let table = escaped(table);
    let widths = natural_widths(&table);
    layout(&table, &widths)
}

/// The table in at most `width` columns: the widest columns are cut first
/// (with `…`, down to a floor), then the last (least identifying) columns are
/// left out; returns the text and the headings left out.
pub fn fit_table(table: &Table, width: usize) -> (String, Vec<String>) {
    let mut table = escaped(table);
    let mut hidden = Vec::new();
    loop {
        let mut widths = natural_widths(&table);
        let floors: Vec<usize> = table
            .columns
            .iter()
            .zip(&widths)
            .map(|(heading, &w)| w.min(heading.width().max(MIN_COLUMN)))
            .collect();
        while total_width(&widths) > width {
            let widest = (0..widths.len())
                .filter(|&i| widths[i] > floors[i])
                .max_by_key(|&i| (widths[i], std::cmp::Reverse(i)));
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
        if total_width(&widths) <= width || table.columns.len() == 1 {
            if table.columns.len() == 1 {
                // one column left: cut it to the screen
                widths[0] = widths[0].min(width.saturating_sub(2).max(1));
            }
            let cut = cut_to(&table, &widths);
            hidden.reverse();
            return (layout(&cut, &widths), hidden);
        }
        hidden.push(table.columns.pop().unwrap_or_default());
        for row in &mut table.rows {
            row.truncate(table.columns.len());
        }
    }
}

/// Columns are not cut narrower than this (or their heading).
const MIN_COLUMN: usize = 8;

fn escaped(table: &Table) -> Table {
    Table {
        columns: table.columns.iter().map(|c| escape_cell(c)).collect(),
        rows: table
            .rows
            .iter()
            .map(|r| r.iter().map(|c| escape_cell(c)).collect())
            .collect(),
    }
}

fn natural_widths(table: &Table) -> Vec<usize> {
    let mut widths: Vec<usize> = table.columns.iter().map(|c| c.width()).collect();
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.width());
            }
        }
    }
    widths
}

/// The width of the longest line: a leading space, three between columns.
fn total_width(widths: &[usize]) -> usize {
    1 + widths.iter().sum::<usize>() + 3 * widths.len().saturating_sub(1)
}

/// Cells wider than their column cut, ending in `…`.
fn cut_to(table: &Table, widths: &[usize]) -> Table {
    let cut = |text: &String, width: usize| {
        if text.width() <= width {
            return text.clone();
        }
        let mut out = String::new();
        let mut used = 0;
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if used + w + 1 > width {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        out
    };
    Table {
        columns: table
            .columns
            .iter()
            .zip(widths)
            .map(|(c, &w)| cut(c, w))
            .collect(),
        rows: table
            .rows
            .iter()
            .map(|r| r.iter().zip(widths).map(|(c, &w)| cut(c, w)).collect())
            .collect(),
    }
}

fn layout(table: &Table, widths: &[usize]) -> String {
    let line = |cells: &[String]| {
        let mut text = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                let w = widths.get(i).copied().unwrap_or(0);
                text.push_str(&" ".repeat(w.saturating_sub(cell.width()) + 3));
            }
        }
        text.trim_end().to_owned()
    };
    // the rule is one wider than the lines, as virsh draws it
    let mut out = line(&table.columns);
    out.push('\n');
    out.push_str(&"-".repeat(total_width(widths) + 1));
    out.push('\n');
    for row in &table.rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

const INDENT: &str = "    ";
/// Arrays and maps whose inline text is longer than this go on several lines.
const INLINE_WIDTH: usize = 60;

/// Rhai-like text for a value, maps one key per line with aligned values.
pub fn pretty(out: &mut String, value: &Dynamic, depth: usize, debug: &dyn Fn(&Dynamic) -> String) {
    let mut flat = String::new();
    inline(&mut flat, value, debug);
    let nested = value.is_map() || value.is_array();
    if !nested || flat.width() + depth * INDENT.len() <= INLINE_WIDTH && !has_map(value) {
        out.push_str(&flat);
        return;
    }
    let pad = INDENT.repeat(depth + 1);
    if let Some(map) = value.read_lock::<Map>() {
        if map.is_empty() {
            out.push_str("#{}");
            return;
        }
        let key_width = map.keys().map(|k| k.width() + 1).max().unwrap_or(0);
        out.push_str("#{\n");
        for (k, v) in map.iter() {
            let key = format!("{k}:");
            out.push_str(&format!("{pad}{key:<key_width$} "));
            pretty(out, v, depth + 1, debug);
            out.push_str(",\n");
        }
        out.push_str(&INDENT.repeat(depth));
        out.push('}');
    } else if let Some(array) = value.read_lock::<Array>() {
        out.push_str("[\n");
        for v in array.iter() {
            out.push_str(&pad);
            pretty(out, v, depth + 1, debug);
            out.push_str(",\n");
        }
        out.push_str(&INDENT.repeat(depth));
        out.push(']');
    }
}

fn has_map(value: &Dynamic) -> bool {
    value.is_map() && value.read_lock::<Map>().is_some_and(|m| !m.is_empty())
}

/// The whole value on one line.
fn inline(out: &mut String, value: &Dynamic, debug: &dyn Fn(&Dynamic) -> String) {
    if let Some(map) = value.read_lock::<Map>() {
        out.push_str("#{");
        for (i, (k, v)) in map.iter().enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            out.push_str(&format!("{k}: "));
            inline(out, v, debug);
        }
        out.push_str(if map.is_empty() { "}" } else { " }" });
    } else if let Some(array) = value.read_lock::<Array>() {
        out.push('[');
        for (i, v) in array.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            inline(out, v, debug);
        }
        out.push(']');
    } else {
        out.push_str(&debug(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debug(v: &Dynamic) -> String {
        format!("{v:?}")
    }

    fn map(pairs: &[(&str, Dynamic)]) -> Dynamic {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.insert((*k).into(), v.clone());
        }
        m.into()
    }

    #[test]
    fn table_is_aligned_like_virsh() {
        let table = Table {
            columns: vec!["Name".into(), "State".into(), "Autostart".into()],
            rows: vec![
                vec!["default".into(), "active".into(), "yes".into()],
                vec!["a-much-longer-name".into(), "inactive".into(), "no".into()],
            ],
        };
        assert_eq!(
            render_table(&table),
            " Name                 State      Autostart\n\
             -------------------------------------------\n \
             default              active     yes\n \
             a-much-longer-name   inactive   no\n"
        );
    }

    #[test]
    fn arrays_of_maps_are_tables() {
        let items: Array = vec![
            map(&[
                ("state", "running".into()),
                ("name", "test".into()),
                ("id", 1_i64.into()),
            ]),
            map(&[
                ("name", "web".into()),
                ("state", "shut off".into()),
                ("persistent", true.into()),
            ]),
        ];
        let text = display(&items.into(), &debug, None).unwrap();
        assert_eq!(
            text,
            " name   id   state      persistent\n\
             -----------------------------------\n \
             test   1    running    -\n \
             web    -    shut off   yes\n\
             (2 rows)\n"
        );
    }

    #[test]
    fn arrays_of_objects_use_table_row() {
        let host = crate::testing::private_host();
        let uri = host.uri().to_owned();
        let items: Array = vec![Dynamic::from(host)];
        let text = display(&items.into(), &debug, None).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(" URI "), "{text}");
        assert!(lines[1].chars().all(|c| c == '-'), "{text}");
        assert!(lines[2].starts_with(&format!(" {}   ", uri)), "{text}");
        assert_eq!(lines[3], "(1 row)");
    }

    #[test]
    fn list_maps_put_identifying_columns_first() {
        // the keys of vm.disks(), in a map's (alphabetical) order
        let disk = |target: &str, source: &str| {
            map(&[
                ("boot_order", Dynamic::UNIT),
                ("bus", "virtio".into()),
                ("cache", Dynamic::UNIT),
                ("device", "disk".into()),
                ("format", "qcow2".into()),
                ("readonly", false.into()),
                ("shareable", false.into()),
                ("source", source.into()),
                ("target", target.into()),
                ("type", "file".into()),
            ])
        };
        let items: Array = vec![disk("vdb", "/b.qcow2"), disk("vda", "/a.qcow2")];
        let text = display(&items.into(), &debug, None).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let headings: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            headings,
            [
                "target",
                "source",
                "device",
                "type",
                "bus",
                "format",
                "cache",
                "readonly",
                "shareable",
                "boot_order"
            ]
        );
        // no name column: the disks keep their order (it is the boot order)
        assert!(
            lines[2]
                .split_whitespace()
                .eq(["vdb", "/b.qcow2", "disk", "file", "virtio", "qcow2", "-", "no", "no", "-"]),
            "{text}"
        );
        assert!(lines[3].starts_with(" vda      /a.qcow2"), "{text}");
        // a map that is not a disk (an extra key) falls back to name first
        let other: Array = vec![map(&[("target", "x".into()), ("zone", 1_i64.into())])];
        let text = display(&other.into(), &debug, None).unwrap();
        assert!(text.starts_with(" target   zone\n"), "{text}");
    }

    #[test]
    fn dhcp_leases_use_their_column_order() {
        // the map net.leases() makes, so a key added there without its column fails here
        let lease = crate::api::network::lease_map(crate::virt_ext::network::DhcpLease {
            iface: "virbr1".into(),
            expiry_time: 0,
            kind: "ipv4".into(),
            mac: "52:54:00:00:00:01".into(),
            iaid: String::new(),
            ip: "192.168.10.5".into(),
            prefix: 24,
            hostname: "web".into(),
            client_id: String::new(),
        });
        let items: Array = vec![lease.into()];
        let text = display(&items.into(), &debug, None).unwrap();
        let headings: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
        let leases = crate::api::table::MAP_COLUMNS
            .iter()
            .find(|(f, _)| *f == "Network.leases")
            .unwrap()
            .1;
        assert_eq!(headings, leases);
    }

    #[test]
    fn rows_are_sorted_by_name() {
        let mut table = Table {
            columns: vec!["Name".into(), "State".into()],
            rows: vec![
                vec!["zeta".into(), "a".into()],
                vec!["Beta".into(), "b".into()],
                vec!["default".into(), "c".into()],
                vec!["beta".into(), "d".into()],
            ],
        };
        sort_by_name(&mut table);
        let names: Vec<&str> = table.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(names, ["Beta", "beta", "default", "zeta"]);
    }

    #[test]
    fn control_characters_in_cells_are_escaped() {
        assert_eq!(escape_cell("plain"), "plain");
        assert_eq!(
            escape_cell("two\nlines\tand\r\x1b[31mred\x07"),
            "two\\nlines\\tand\\r\\u{1b}[31mred\\u{7}"
        );
        let items: Array = vec![map(&[("name", "a\nb".into()), ("n", 1_i64.into())])];
        let text = display(&items.into(), &debug, None).unwrap();
        assert_eq!(
            text, " name   n\n----------\n a\\nb   1\n(1 row)\n",
            "one line per row"
        );
    }

    #[test]
    fn wide_tables_fit_the_terminal() {
        let long = "/var/lib/libvirt/images/a-rather-long-directory-name/disk.qcow2";
        let table = Table {
            columns: vec![
                "Name".into(),
                "Path".into(),
                "Capacity".into(),
                "Allocation".into(),
            ],
            rows: vec![
                vec![
                    "disk".into(),
                    long.into(),
                    "1.0 GiB".into(),
                    "196.0 KiB".into(),
                ],
                vec!["b".into(), "/short".into(), "2.0 GiB".into(), "0 B".into()],
            ],
        };
        // it fits: unchanged
        let (text, hidden) = fit_table(&table, 200);
        assert_eq!(text, render_table(&table));
        assert!(hidden.is_empty());
        // narrower: the long path is cut with an ellipsis, every column stays
        let (text, hidden) = fit_table(&table, 60);
        assert!(hidden.is_empty(), "{hidden:?}");
        for line in text.lines() {
            assert!(line.width() <= 61, "{line:?} ({})", line.width());
        }
        assert!(text.contains(" disk   /var/lib/libvirt/images/"), "{text}");
        assert!(text.contains("…   1.0 GiB    196.0 KiB"), "{text}");
        // much narrower: the last columns are left out, and named
        let (text, hidden) = fit_table(&table, 30);
        assert_eq!(hidden, ["Allocation"]);
        assert!(
            text.starts_with(" Name   Path          Capacity\n"),
            "{text}"
        );
        assert!(text.contains(" disk   /var/lib/l…   1.0 GiB\n"), "{text}");
        let (text, hidden) = fit_table(&table, 22);
        assert_eq!(hidden, ["Capacity", "Allocation"]);
        for line in text.lines() {
            assert!(line.width() <= 23, "{line:?}");
        }
        assert!(text.starts_with(" Name   Path\n"), "{text}");
        let items: Array = vec![map(&[
            ("name", long.into()),
            ("a_long_heading_for_a_flag", true.into()),
        ])];
        let text = display(&items.into(), &debug, Some(30)).unwrap();
        assert!(
            text.ends_with(
                "(1 row; not shown for the width: a_long_heading_for_a_flag; :json shows all)\n"
            ),
            "{text}"
        );
        assert!(text.lines().take(3).all(|l| l.width() <= 31), "{text}");
    }

    #[test]
    fn maps_pretty_print_nested_and_aligned() {
        let value = map(&[
            ("name", "lab".into()),
            ("autostart", true.into()),
            (
                "ip",
                map(&[("address", "10.0.0.1".into()), ("prefix", 24_i64.into())]),
            ),
            ("ports", vec![Dynamic::from(1_i64), 2_i64.into()].into()),
        ]);
        assert_eq!(
            display(&value, &debug, None).unwrap(),
            "#{\n    autostart: true,\n    ip:        #{\n        address: \"10.0.0.1\",\n        prefix:  24,\n    },\n    name:      \"lab\",\n    ports:     [1, 2],\n}\n"
        );
    }

    #[test]
    fn scalars_and_unit() {
        assert_eq!(display(&Dynamic::UNIT, &debug, None), None);
        assert_eq!(display(&42_i64.into(), &debug, None).unwrap(), "42\n");
        assert_eq!(display(&"hi".into(), &debug, None).unwrap(), "\"hi\"\n");
        let empty: Array = vec![];
        assert_eq!(display(&empty.into(), &debug, None).unwrap(), "[]\n");
        assert_eq!(display(&Map::new().into(), &debug, None).unwrap(), "#{}\n");
    }
}
