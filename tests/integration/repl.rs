//! The REPL in a real terminal: the binary runs inside tmux (its own server
//! socket per test), keys are sent as a user types them, and the screen is
//! polled with a bounded wait.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{live_uri, unique, virsh, Script};

/// How long to wait for text to appear before failing (a debug build on a busy machine).
const PATIENCE: Duration = Duration::from_secs(30);

struct Terminal {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Terminal {
    /// Start `virtscript ARGS` in a 160x50 terminal with the given state dir.
    fn start(args: &[&str], state: &Path) -> Terminal {
        Terminal::start_with(args, state, &[])
    }

    /// The same, with more environment variables (`NAME=value`).
    fn start_with(args: &[&str], state: &Path, env: &[&str]) -> Terminal {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("tmux.sock");
        let mut command = vec![
            "env".to_owned(),
            "-u".into(),
            "LIBVIRT_DEFAULT_URI".into(),
            "-u".into(),
            "NO_COLOR".into(),
            "-u".into(),
            "PAGER".into(),
            format!("XDG_STATE_HOME={}", state.display()),
            "TERM=xterm".into(),
        ];
        command.extend(env.iter().map(|e| e.to_string()));
        command.push(env!("CARGO_BIN_EXE_virtscript").into());
        command.extend(args.iter().map(|a| a.to_string()));
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "50",
                "-s",
                "repl",
            ])
            .args(&command)
            .status()
            .expect("tmux runs (apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        Terminal { socket, _dir: dir }
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// Type text exactly (as hex bytes, so `;` and quotes reach the program unchanged).
    fn type_text(&self, text: &str) {
        let hex: Vec<String> = text.bytes().map(|b| format!("{b:02x}")).collect();
        let mut args = vec!["send-keys", "-t", "repl", "-H"];
        args.extend(hex.iter().map(String::as_str));
        assert!(self.tmux(&args).status.success());
    }

    /// Press a key by tmux name: Enter, Tab, C-c, C-d, C-r, Up.
    fn key(&self, key: &str) {
        assert!(self
            .tmux(&["send-keys", "-t", "repl", key])
            .status
            .success());
    }

    fn line(&self, text: &str) {
        self.type_text(text);
        self.key("Enter");
    }

    /// The screen with its scrollback, lines joined where they wrapped.
    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-J", "-S", "-1000", "-t", "repl"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours (as escape sequences).
    fn screen_with_colours(&self) -> String {
        let out = self.tmux(&[
            "capture-pane",
            "-p",
            "-e",
            "-J",
            "-S",
            "-1000",
            "-t",
            "repl",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the screen holds `needle` `count` times; fail with the screen.
    #[track_caller]
    fn wait_for_n(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if screen.matches(needle).count() >= count {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("screen never showed {needle:?} ({count}x):\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[track_caller]
    fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }

    /// The number of prompts on screen, to wait for the next one.
    fn prompts(&self) -> usize {
        self.screen().matches("virtscript> ").count()
    }

    /// Type a complete input and wait for the prompt after it.
    #[track_caller]
    fn input(&self, text: &str) -> String {
        let before = self.prompts();
        self.line(text);
        self.wait_for_n("virtscript> ", before + 1)
    }

    #[track_caller]
    fn wait_exit(&self) {
        let deadline = Instant::now() + PATIENCE;
        while self.tmux(&["has-session", "-t", "repl"]).status.success() {
            if Instant::now() > deadline {
                panic!("the REPL did not exit:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// `text` without its colour escape sequences (`ESC [ ... m`).
fn without_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// The text after the last prompt (what is being edited).
fn last_prompt_line(screen: &str) -> String {
    screen
        .lines()
        .rfind(|l| l.starts_with("virtscript> "))
        .unwrap_or("")
        .to_owned()
}

#[test]
fn repl_session_in_a_real_terminal() {
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&["repl"], state.path());
    term.wait_for("virtscript> ");

    // A multi-line function, typed line by line without continuation characters.
    term.line("fn double(x) {");
    term.line("    x * 2");
    term.line("}");
    term.wait_for_n("virtscript> ", 2);
    let screen = term.input("double(21)");
    assert!(screen.lines().any(|l| l == "42"), "{screen}");

    // Tab completes a live object name, asked of libvirt's test driver.
    term.type_text("HOST.network(\"def");
    term.key("Tab");
    term.wait_for("virtscript> HOST.network(\"default\")");
    // Ctrl-C at the prompt clears the line and keeps the session.
    let before = term.prompts();
    term.key("C-c");
    term.wait_for_n("virtscript> ", before + 1);
    assert_eq!(last_prompt_line(&term.screen()).trim_end(), "virtscript>");

    // Members after a dot, and the signature hint.
    term.type_text("HOST.node_i");
    term.key("Tab");
    term.wait_for("virtscript> HOST.node_info(   Host.node_info() -> map");
    let before = term.prompts();
    term.key("C-c");
    term.wait_for_n("virtscript> ", before + 1);

    // An array of objects prints as a table.
    let screen = term.input("[HOST, connect(\"test:///default\")]");
    assert!(screen.contains(" URI               Hostname"), "{screen}");
    assert!(screen.contains(" test:///default   "), "{screen}");
    assert!(screen.contains("(2 rows)"), "{screen}");

    // A wrong input shows the error with a caret; the session goes on.
    let screen = term.input("let y = 1 +* 2;");
    assert!(screen.contains("error: Unexpected '*'"), "{screen}");
    assert!(screen.contains("--> <input 4>:1:12"), "{screen}");
    let screen = term.input("print(\"still \" + \"here\")");
    assert!(screen.lines().any(|l| l == "still here"), "{screen}");

    // Ctrl-C stops a running loop (a wait_state loop in spirit), not the REPL.
    term.line("let n = 0; loop { n += 1; if n == 3 { print(\"waiting\") } sleep(0.1) }");
    term.wait_for("\nwaiting");
    let before = term.prompts();
    term.key("C-c");
    let screen = term.wait_for_n("virtscript> ", before + 1);
    assert!(screen.contains("error: interrupted (Ctrl-C)"), "{screen}");
    let screen = term.input("double(2)");
    assert!(screen.lines().any(|l| l == "4"), "{screen}");

    // A secret never reaches the history.
    let screen = term.input("let login = #{ password: \"hunter2\" }");
    assert!(screen.contains("not saved in the history"), "{screen}");

    term.line(":quit");
    term.wait_exit();

    let history = std::fs::read_to_string(state.path().join("virtscript/history"))
        .expect("history file in $XDG_STATE_HOME/virtscript/history");
    assert!(history.contains("double(21)"), "{history}");
    assert!(history.contains("fn double(x) {"), "{history}");
    assert!(!history.contains("hunter2"), "{history}");

    // A second session finds the first one's inputs (Ctrl-R search).
    let term = Terminal::start(&["repl"], state.path());
    term.wait_for("virtscript> ");
    term.key("C-r");
    term.type_text("double(21");
    term.wait_for("double(21)");
    term.key("Enter"); // accept the found line
    term.key("Enter"); // run it (double is gone: a new session)
    term.wait_for("error: no function 'double' taking (integer)");
    // Ctrl-D only once the next prompt is up: a key that arrives while the
    // line editor is not reading is dropped when it sets the terminal up
    // again (seen once under a loaded full-suite run: the REPL never left).
    term.wait_for_n("virtscript> ", 2);
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn bare_virtscript_on_a_terminal_is_the_repl() {
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&[], state.path());
    term.wait_for("virtscript> ");
    let screen = term.input("help(\"node_info\")");
    assert!(
        screen.lines().any(|l| l == "Host.node_info() -> map"),
        "{screen}"
    );
    assert!(
        screen.lines().any(|l| l == "    let n = HOST.node_info();"),
        "{screen}"
    );
    assert!(!screen.contains("```"), "{screen}");
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn tab_completes_the_common_prefix_then_lists_the_candidates() {
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&["repl"], state.path());
    term.wait_for("virtscript> ");
    // First Tab: the prefix all candidates share (snapshot(, snapshot_named(, snapshots().
    term.type_text("HOST.vm(\"test\").sn");
    term.key("Tab");
    term.wait_for("virtscript> HOST.vm(\"test\").snapshot");
    assert_eq!(
        last_prompt_line(&term.screen()).trim_end(),
        "virtscript> HOST.vm(\"test\").snapshot",
        "the first Tab inserts only the common prefix"
    );
    // Second Tab: all of them, in columns on one line, and the input is kept.
    term.key("Tab");
    let screen = term.wait_for("snapshot_named(");
    let listing = screen
        .lines()
        .find(|l| l.contains("snapshot_named("))
        .unwrap();
    let columns: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(
        columns,
        ["snapshot(", "snapshot_named(", "snapshots("],
        "{screen}"
    );
    term.wait_for_n("virtscript> HOST.vm(\"test\").snapshot", 2);
    // A member list too long for one line goes in several rows of columns.
    term.key("C-u");
    term.type_text("HOST.vm(\"test\").");
    term.key("Tab");
    term.key("Tab");
    let screen = term.wait_for("attach_disk(");
    let row = screen.lines().find(|l| l.contains("addresses(")).unwrap();
    assert!(
        row.split_whitespace().count() > 3 && screen.contains("current_snapshot("),
        "candidates in columns: {screen}"
    );
    term.key("C-u");
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn unfinished_input_continues_under_a_continuation_prompt() {
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&["repl"], state.path());
    term.wait_for("virtscript> ");
    term.line("fn triple(x) {");
    term.wait_for("\n       ...> ");
    term.line("    x * 3");
    term.wait_for_n("\n       ...> ", 2);
    term.line("}");
    let screen = term.wait_for_n("virtscript> ", 2);
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let at = lines
        .iter()
        .position(|l| *l == "virtscript> fn triple(x) {")
        .unwrap_or_else(|| panic!("{screen}"));
    assert_eq!(
        lines[at + 1..at + 3],
        ["       ...>     x * 3", "       ...> }"],
        "the continued lines line up under the first: {screen}"
    );
    let screen = term.input("triple(14)");
    assert!(screen.lines().any(|l| l == "42"), "{screen}");
    // Ctrl-C under the continuation prompt drops the whole unfinished input.
    term.line("let t = [1,");
    term.wait_for_n("\n       ...> ", 3);
    let before = term.prompts();
    term.key("C-c");
    term.wait_for_n("virtscript> ", before + 1);
    let screen = term.input("t");
    assert!(screen.contains("error: Undefined variable: t"), "{screen}");
    // Ctrl-D there runs what was typed, so its error shows; the session goes on.
    term.line("let u = [1,");
    term.wait_for_n("\n       ...> ", 4);
    let before = term.prompts();
    term.key("C-d");
    let screen = term.wait_for_n("virtscript> ", before + 1);
    assert!(screen.contains("--> <input 3>:1:"), "{screen}");
    let screen = term.input("triple(1)");
    assert!(screen.lines().any(|l| l == "3"), "{screen}");
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn ctrl_c_leaves_no_hint_behind() {
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&["repl"], state.path());
    term.wait_for("virtscript> ");
    // (Tab waits for the completion catalog; the hint needs it.)
    term.type_text("HOST.node_i");
    term.key("Tab");
    term.wait_for("virtscript> HOST.node_info(   Host.node_info() -> map");
    let before = term.prompts();
    term.key("C-c");
    let screen = term.wait_for_n("virtscript> ", before + 1);
    assert!(
        screen
            .lines()
            .any(|l| l.trim_end() == "virtscript> HOST.node_info(^C"),
        "the line stays as typed, with ^C: {screen}"
    );
    assert!(
        !screen.contains("Host.node_info() -> map"),
        "the hint is gone: {screen}"
    );
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn long_help_goes_through_the_pager_short_help_does_not() {
    let state = tempfile::tempdir().unwrap();
    let paged = state.path().join("paged.txt");
    let pager = format!("PAGER=cat > {}", paged.display());
    let term = Terminal::start_with(&["repl"], state.path(), &[&pager]);
    term.wait_for("virtscript> ");
    let screen = term.input("help(\"Vm.start\")");
    assert!(screen.lines().any(|l| l == "Vm.start()"), "{screen}");
    assert!(!paged.exists(), "a screenful is printed, not paged");
    let screen = term.input("help(HOST)");
    let text = std::fs::read_to_string(&paged).expect("help(HOST) went to $PAGER");
    assert!(
        !screen.contains("Host.node_info() -> map"),
        "paged, not printed: {screen}"
    );
    // rendered for the terminal: bold headings, indented and coloured examples
    assert!(
        text.contains("\n\x1b[1mHost.node_info() -> map\x1b[0m\n"),
        "{text}"
    );
    assert!(
        text.contains("\n    \x1b[1;35mlet\x1b[0m n = HOST.node_info();\n"),
        "{text}"
    );
    assert!(!text.contains("```") && !text.contains("### "), "{text}");
    for line in text.lines().filter(|l| !l.starts_with("    ")) {
        let shown = without_escapes(line);
        assert!(
            shown.chars().count() <= 160,
            "wrapped to the terminal: {shown:?}"
        );
    }
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn the_default_pager_is_less() {
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&["repl"], state.path());
    term.wait_for("virtscript> ");
    let before = term.prompts();
    term.line("help(HOST)");
    // less shows the first screenful, with its colours (-R), and waits
    let screen = term.wait_for("Host.create_network(spec: map) -> Network");
    assert!(!screen.contains("```"), "{screen}");
    // the type's heading bold and underlined, and no escape shown as text
    let coloured = term.screen_with_colours();
    assert!(coloured.contains("\x1b[1;4mHost\n"), "{coloured}");
    assert!(
        !screen.contains("[1m") && !screen.contains("ESC"),
        "{screen}"
    );
    assert!(term.prompts() <= before, "the pager holds the screen");
    term.type_text("q");
    term.wait_for_n("virtscript> ", before + 1);
    let screen = term.input("1 + 1");
    assert!(screen.lines().any(|l| l == "2"), "{screen}");
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn a_missing_pager_still_shows_the_help() {
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start_with(&["repl"], state.path(), &["PAGER=no-such-pager-here"]);
    term.wait_for("virtscript> ");
    let screen = term.input("help(HOST)");
    assert!(
        screen.contains("(cannot start the pager 'no-such-pager-here'; set PAGER)"),
        "{screen}"
    );
    assert!(screen.contains("\nHost.vms() -> array\n"), "{screen}");
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn no_color_turns_colours_off() {
    let state = tempfile::tempdir().unwrap();
    let paged = state.path().join("paged.txt");
    let pager = format!("PAGER=cat > {}", paged.display());
    // colours first, to see that the same screen has none with NO_COLOR
    let term = Terminal::start_with(&["repl"], state.path(), &[&pager]);
    term.wait_for("virtscript> ");
    term.type_text("let s = \"x\"; 42");
    term.wait_for("42");
    let coloured = term.screen_with_colours();
    assert!(coloured.contains("let\x1b["), "{coloured:?}");
    drop(term);
    let term = Terminal::start_with(&["repl"], state.path(), &[&pager, "NO_COLOR=1"]);
    term.wait_for("virtscript> ");
    term.type_text("let s = \"x\"; 42");
    term.wait_for("42");
    let plain = term.screen_with_colours();
    assert!(!plain.contains('\x1b'), "{plain:?}");
    term.key("C-u");
    term.input("help(HOST)");
    let text = std::fs::read_to_string(&paged).expect("help(HOST) went to $PAGER");
    assert!(text.contains("\nHost.node_info() -> map\n"), "{text}");
    assert!(!text.contains('\x1b'), "{text}");
    term.key("C-d");
    term.wait_exit();
}

/// The headings of the last table on `screen` whose heading line starts with `first`.
fn headings(screen: &str, first: &str) -> Vec<String> {
    screen
        .lines()
        .rfind(|l| l.starts_with(&format!(" {first} ")))
        .unwrap_or_else(|| panic!("no table starting with {first}:\n{screen}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The first cell of each row of the last table whose heading starts with `first`.
fn first_cells(screen: &str, first: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.starts_with(&format!(" {first} ")))
        .unwrap();
    lines[at + 2..]
        .iter()
        .take_while(|l| l.starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn tables_put_identifying_columns_first_sort_by_name_and_fit_the_terminal() {
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&["repl"], state.path());
    term.wait_for("virtscript> ");
    term.input("HOST.define_network(#{ name: \"zeta\", ip: \"192.168.77.1/24\" });");
    term.input("HOST.define_network(#{ name: \"Beta\", ip: \"192.168.78.1/24\" });");
    term.input(
        "HOST.define_vm(#{ name: \"alpha\", memory: 128, virt_type: \"qemu\", import: true, \
         disks: [#{ pool: \"default-pool\", size: \"1M\" }] });",
    );

    // virsh domblklist: Target, Source first
    let screen = term.input("HOST.vm(\"alpha\").disks()");
    assert_eq!(
        headings(&screen, "target"),
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
    assert!(
        screen.contains(" vda      /default-pool/alpha.qcow2   disk "),
        "{screen}"
    );

    // virsh domiflist: Interface, Type, Source, Model, MAC
    let screen = term.input("HOST.vm(\"test\").interfaces()");
    assert_eq!(
        headings(&screen, "interface"),
        ["interface", "type", "source", "model", "mac"]
    );

    // virsh net-list: Name, State, Autostart, Persistent; sorted by name
    let screen = term.input("HOST.networks()");
    assert_eq!(
        headings(&screen, "Name"),
        ["Name", "State", "Autostart", "Persistent", "Bridge"]
    );
    assert_eq!(first_cells(&screen, "Name"), ["Beta", "default", "zeta"]);

    // VMs: Name, State first; sorted by name
    let screen = term.input("HOST.vms()");
    assert_eq!(
        headings(&screen, "Name"),
        ["Name", "State", "Id", "Autostart", "Persistent"]
    );
    assert_eq!(first_cells(&screen, "Name"), ["alpha", "test"]);
    assert!(
        screen.contains(" test    running    1    no          yes"),
        "{screen}"
    );

    // A narrow terminal: long cells are cut with an ellipsis, then the last
    // columns are left out (and named) rather than wrapping.
    assert!(term
        .tmux(&["resize-window", "-t", "repl", "-x", "50"])
        .status
        .success());
    let screen = term.input("HOST.vm(\"alpha\").disks()");
    let table: Vec<&str> = screen
        .lines()
        .rev()
        .skip_while(|l| !l.starts_with("(1 row"))
        .take(4)
        .collect();
    assert!(
        table[0].starts_with("(1 row; not shown for the width: "),
        "{screen}"
    );
    assert!(table[0].contains("boot_order"), "{screen}");
    for line in &table[1..] {
        assert!(line.chars().count() <= 50, "fits: {line:?}\n{screen}");
    }
    assert!(table[3].starts_with(" target   source"), "{screen}");
    term.key("C-d");
    term.wait_exit();
}

#[test]
fn help_to_a_pipe_is_plain_wrapped_text() {
    let state = tempfile::tempdir().unwrap();
    let paged = state.path().join("paged.txt");
    let run = Script::new("")
        .command("repl")
        .env("XDG_STATE_HOME", state.path().to_str().unwrap())
        .env("PAGER", &format!("cat > {}", paged.display()))
        .env("COLUMNS", "72")
        .stdin("help(HOST)\n")
        .run();
    run.ok();
    assert!(!paged.exists(), "no pager when stdout is not a terminal");
    let text = &run.stdout;
    assert!(
        text.lines().any(|l| l == "Host.node_info() -> map"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "    let n = HOST.node_info();"),
        "{text}"
    );
    assert!(!text.contains('\x1b') && !text.contains("```"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with("    ")) {
        assert!(line.chars().count() <= 72, "wrapped at COLUMNS: {line:?}");
    }
}

#[test]
fn live_repl_completes_networks_of_the_real_daemon() {
    let uri = live_uri();
    let name = unique("repl-net");
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("net.xml");
    std::fs::write(&xml, format!("<network><name>{name}</name></network>")).unwrap();
    virsh(&uri, &["net-define", xml.to_str().unwrap()]);
    let _cleanup = Undefine(uri.clone(), name.clone());
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&["repl", "-c", &uri], state.path());
    term.wait_for("virtscript> ");
    term.type_text(&format!("HOST.network(\"{}", &name[..name.len() - 2]));
    term.key("Tab");
    term.wait_for(&format!("virtscript> HOST.network(\"{name}\")"));
    term.key("C-u"); // Ctrl-D leaves from an empty line only
    term.key("C-d");
    term.wait_exit();
}

/// Undefines a network when the test ends, passed or not.
struct Undefine(String, String);

impl Drop for Undefine {
    fn drop(&mut self) {
        let _ = crate::support::virsh_try(&self.0, &["net-undefine", &self.1]);
    }
}

#[test]
fn repl_reads_piped_input_too() {
    let state = tempfile::tempdir().unwrap();
    let run = Script::new("")
        .command("repl")
        .env("XDG_STATE_HOME", state.path().to_str().unwrap())
        .stdin("let x = 2;\nfn f(v) {\n  v * 21\n}\nf(x)\n1 +* 2\n[#{name: \"a\", n: 1}]\n")
        .run();
    run.ok();
    assert_eq!(
        run.stdout,
        "42\n name   n\n----------\n a      1\n(1 row)\n"
    );
    run.stderr_has("error: Unexpected '*'")
        .stderr_has("<input 4>:1:4");
}

#[test]
fn secrets_stay_out_of_the_history() {
    let state = tempfile::tempdir().unwrap();
    let inputs = [
        ("let a = 1;", None),
        (
            "let k = `-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n-----END OPENSSH PRIVATE KEY-----`;",
            Some("it holds a private key"),
        ),
        (
            "let keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG me@lab\"];",
            Some("it holds an SSH key"),
        ),
        (
            "let u = \"https://bob:hunter2@example.com/x\";",
            Some("it holds a URL with a password"),
        ),
        (
            "let c = #{ password: \"hunter3\" };",
            Some("it mentions a password, secret or token"),
        ),
        ("let b = \"qemu+ssh://root@host/system\";", None),
    ];
    let stdin: String = inputs.iter().map(|(i, _)| format!("{i}\n")).collect();
    let run = Script::new("")
        .command("repl")
        .env("XDG_STATE_HOME", state.path().to_str().unwrap())
        .stdin(&stdin)
        .run();
    run.ok();
    let history = std::fs::read_to_string(state.path().join("virtscript/history")).unwrap();
    for (input, why) in inputs {
        match why {
            None => assert!(history.contains(input), "{input} kept:\n{history}"),
            Some(why) => {
                run.stderr_has(&format!("(not saved in the history: {why})"));
                assert!(
                    !history.contains(&input[..12]),
                    "{input} left out:\n{history}"
                );
            }
        }
    }
    for secret in ["b3BlbnNzaC1rZXktdjE", "AAAAC3Nza", "hunter2", "hunter3"] {
        assert!(!history.contains(secret), "{secret}:\n{history}");
    }
}

#[test]
fn a_huge_input_is_not_echoed_whole_in_its_error() {
    let state = tempfile::tempdir().unwrap();
    let stdin = format!(
        "let s = \"{}\"; s +* 1\nHOST.network(\"{}\")\n",
        "a".repeat(60_000),
        "b".repeat(60_000)
    );
    let run = Script::new("")
        .command("repl")
        .env("XDG_STATE_HOME", state.path().to_str().unwrap())
        .stdin(&stdin)
        .run();
    run.ok();
    assert!(
        run.stderr.len() < 2_000,
        "{} bytes of errors",
        run.stderr.len()
    );
    run.stderr_has("error: Unexpected '*'")
        .stderr_has("--> <input 1>:1:60016")
        .stderr_has("aaaa\"; s +* 1\n")
        .stderr_has("error: no network named 'bbbb")
        .stderr_has("characters left out)")
        .stderr_has("--> <input 2>:1:6");
    // the caret still points at the '*'
    let lines: Vec<&str> = run.stderr.lines().collect();
    let source = lines.iter().position(|l| l.ends_with("s +* 1")).unwrap();
    let caret = lines[source + 1].find('^').unwrap();
    assert_eq!(
        lines[source].chars().nth(caret),
        Some('*'),
        "{}",
        run.stderr
    );
}

#[test]
fn table_cells_show_control_characters_escaped() {
    let state = tempfile::tempdir().unwrap();
    let run = Script::new("")
        .command("repl")
        .env("XDG_STATE_HOME", state.path().to_str().unwrap())
        .stdin("[#{ name: \"two\\nlines\", note: \"tab\\there\\u001b[31m\" }]\n")
        .run();
    run.ok();
    assert_eq!(
        run.stdout,
        " name         note\n\
         ----------------------------------\n \
         two\\nlines   tab\\there\\u{1b}[31m\n\
         (1 row)\n"
    );
}

#[test]
fn repl_json_toggle_and_imports_persist() {
    let state = tempfile::tempdir().unwrap();
    let run = Script::new("")
        .command("repl")
        .env("XDG_STATE_HOME", state.path().to_str().unwrap())
        .stdin("import \"retry\" as r;\n:json\nr::retry(|| #{ a: [1] }, 2, 0.01)\n:json\n")
        .run();
    run.ok();
    assert_eq!(
        run.stdout,
        "JSON output on\n{\n  \"a\": [\n    1\n  ]\n}\nJSON output off\n"
    );
}

#[test]
fn repl_cannot_connect_exits_3() {
    Script::new("")
        .command("repl")
        .connect("bogus:///nothing")
        .run()
        .code(3)
        .stderr_has("cannot connect to libvirt at bogus:///nothing");
}

/// Vm.console() on the real daemon, in a terminal: the guest's serial console
/// shows what the guest prints (it boots again after a reset from another
/// process), and Ctrl-] leaves the console and the script carries on.
#[test]
fn live_console_shows_the_guest_and_ctrl_bracket_leaves() {
    let uri = live_uri();
    let dir = crate::support::tiny_guest();
    let env = crate::support::LiveEnv::new(&uri, "con", 45);
    let name = format!("{}-vm", env.prefix);
    Script::new(&format!(
        r#"HOST.create_vm(#{{ name: "{name}", memory: 256, vcpus: 1, virt_type: "qemu",
    kernel: "{dir}/vmlinuz", initrd: "{dir}/initrd.img", cmdline: "console=ttyS0",
    disks: [#{{ pool: "{pool}", size: "16M", format: "raw" }}],
    networks: [#{{ network: "{net}", model: "e1000" }}] }});"#,
        pool = env.pool,
        net = env.net,
    ))
    .connect(&uri)
    .run()
    .ok();
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("console.rhai");
    std::fs::write(
        &script,
        format!("HOST.vm(\"{name}\").console();\nprint(\"left the console\");\nsleep(60);\n"),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let term = Terminal::start(&["run", "-c", &uri, script.to_str().unwrap()], state.path());
    // Attached (virsh console's banner): make the guest print its boot lines again.
    term.wait_for("Escape character is ^]");
    Script::new(&format!("HOST.vm(\"{name}\").reset();"))
        .connect(&uri)
        .run()
        .ok();
    // The kernel's first lines after the reset (virsh console replays nothing
    // from before it attached); the guest's own lines may come much later
    // under TCG on a busy machine.
    term.wait_for("Command line: console=ttyS0");
    assert!(!term.screen().contains("left the console"));
    term.key("C-]");
    term.wait_for("left the console");
}
