//! How a script's value looks on a terminal, the same for a run's result and
//! the REPL: tables for arrays of objects, aligned maps, `to_debug` text.
//! Below the job runner and the REPL, which both show values; it needs the
//! objects' table rows (`api::table`) and a script engine to call `to_debug`.
pub mod table;

use rhai::{Dynamic, Engine, Scope};

use crate::runtime::term;

/// A value as its `to_debug` text (script objects print `Network(lab, active)`).
pub fn debug_text(engine: &Engine, value: &Dynamic) -> String {
    if value.is_string() || value.is_int() || value.is_float() || value.is_bool() {
        return format!("{value:?}");
    }
    let mut scope = Scope::new();
    scope.push("__value", value.clone());
    engine
        .eval_expression_with_scope::<String>(&mut scope, "to_debug(__value)")
        .unwrap_or_else(|_| format!("{value:?}"))
}

/// A value as the terminal shows it, fitted to the terminal's width (piped
/// output is never cut); `None` for `()`.
pub fn shown(engine: &Engine, value: &Dynamic) -> Option<String> {
    // one column spare: the rule under the headings is one wider than the rows
    let width = term::size().map(|(cols, _)| cols.saturating_sub(1));
    table::display(value, &|v| debug_text(engine, v), width)
}
