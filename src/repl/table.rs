//! How the REPL shows a value: arrays of objects (and of maps) as aligned
//! tables like `virsh net-list --all`, maps pretty-printed and aligned, the
//! rest as Rhai's `to_debug` text.
use rhai::{Array, Dynamic, Map};
use unicode_width::UnicodeWidthStr;

use crate::api::table::{table_of, Table};

/// Text for a value; `debug` renders a single value the way `to_debug` does
/// (it knows the script objects). `None` for unit: nothing is printed.
pub fn display(value: &Dynamic, debug: &dyn Fn(&Dynamic) -> String) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    if let Some(array) = value.read_lock::<Array>() {
        if let Some(table) = table_of(&array).or_else(|| maps_table(&array)) {
            let mut text = render_table(&table);
            text.push_str(&format!(
                "({} {})\n",
                table.rows.len(),
                if table.rows.len() == 1 { "row" } else { "rows" }
            ));
            return Some(text);
        }
    }
    let mut out = String::new();
    pretty(&mut out, value, 0, debug);
    out.push('\n');
    Some(out)
}

/// An array of maps as a table: the union of their keys as columns (`name`
/// first when there is one), nested values written inline.
pub fn maps_table(items: &[Dynamic]) -> Option<Table> {
    if items.is_empty() || !items.iter().all(|i| i.is_map()) {
        return None;
    }
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        let map = item.read_lock::<Map>()?;
        for key in map.keys() {
            if !columns.iter().any(|c| c == key.as_str()) {
                columns.push(key.to_string());
            }
        }
    }
    if let Some(i) = columns.iter().position(|c| c == "name") {
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

/// virsh's list layout: a leading space, columns separated by three spaces,
/// a dashed rule under the headings.
pub fn render_table(table: &Table) -> String {
    let mut widths: Vec<usize> = table.columns.iter().map(|c| c.width()).collect();
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.width());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths.get(i).copied().unwrap_or(0) - cell.width().min(widths[i]);
                text.push_str(&" ".repeat(pad + 3));
            }
        }
        text.trim_end().to_owned()
    };
    let total = widths.iter().sum::<usize>() + 3 * widths.len().saturating_sub(1) + 2;
    let mut out = line(&table.columns);
    out.push('\n');
    out.push_str(&"-".repeat(total));
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
        let text = display(&items.into(), &debug).unwrap();
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
        let text = display(&items.into(), &debug).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(" URI "), "{text}");
        assert!(lines[1].chars().all(|c| c == '-'), "{text}");
        assert!(lines[2].starts_with(&format!(" {}   ", uri)), "{text}");
        assert_eq!(lines[3], "(1 row)");
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
            display(&value, &debug).unwrap(),
            "#{\n    autostart: true,\n    ip:        #{\n        address: \"10.0.0.1\",\n        prefix:  24,\n    },\n    name:      \"lab\",\n    ports:     [1, 2],\n}\n"
        );
    }

    #[test]
    fn scalars_and_unit() {
        assert_eq!(display(&Dynamic::UNIT, &debug), None);
        assert_eq!(display(&42_i64.into(), &debug).unwrap(), "42\n");
        assert_eq!(display(&"hi".into(), &debug).unwrap(), "\"hi\"\n");
        let empty: Array = vec![];
        assert_eq!(display(&empty.into(), &debug).unwrap(), "[]\n");
        assert_eq!(display(&Map::new().into(), &debug).unwrap(), "#{}\n");
    }
}
