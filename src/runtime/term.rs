//! What standard output and standard error go to: a terminal's size, and
//! whether to colour (the REPL, the tables of a run's result, the logs).
use std::io::IsTerminal;

/// Width used for text that does not go to a terminal (`COLUMNS` when set).
pub const DEFAULT_WIDTH: usize = 80;

/// Columns and rows of the terminal on stdout; `None` when stdout is not one.
pub fn size() -> Option<(usize, usize)> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize we pass; fd 1 is open.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some((ws.ws_col as usize, ws.ws_row as usize))
}

/// The width to wrap text at: the terminal's, else `COLUMNS`, else 80.
pub fn width() -> usize {
    size().map(|(cols, _)| cols).unwrap_or_else(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|&c| c > 0)
            .unwrap_or(DEFAULT_WIDTH)
    })
}

/// Colour on stdout: only on a terminal, and never with `NO_COLOR` set (no-color.org).
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && !no_color()
}

/// Colour on stderr, by the same rule.
pub fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && !no_color()
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}
