//! REPL commands: a line starting with `:`.

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Help,
    Load(String),
    Connect(String),
    Json,
    Time,
    Vars,
    Quit,
    /// A command given without its argument: the usage to show.
    Usage(&'static str),
    Unknown(String),
}

pub const HELP: &str = "\
REPL commands:
  :help           this text
  :load FILE      run a script into the session (its variables and functions stay)
  :connect URI    connect HOST to another libvirt URI (qemu:///system, test:///default, ...)
  :json           toggle printing results as JSON
  :time           toggle reporting how long each input took
  :vars           list the session's variables with their types
  :quit           leave (also Ctrl-D on an empty line)
Editing:
  Tab completes variables, functions, members after '.', bundled modules in
  import \"...\", and live object names in HOST.network(\"<Tab>, HOST.pool(\", HOST.vm(\",
  pool.volume(\", vm.snapshot_named(\"; as in bash, a first Tab completes what the
  candidates share and a second Tab lists them all.
  An unfinished input (open brace, dangling operator) continues on the next line,
  under the prompt '...>'; press Enter on two empty lines (or Ctrl-D) to submit it
  anyway. Ctrl-R searches the history.
  Ctrl-C clears the line (or the unfinished input), or stops the running input;
  Ctrl-D leaves. Colours are off when NO_COLOR is set or output is not a terminal.
  Inputs mentioning password, passwd, passphrase, secret, token or private_key, or
  holding a private key (-----BEGIN ... PRIVATE KEY-----), an SSH key (ssh-rsa AAAA...)
  or a URL with a password (scheme://user:pass@host) are not saved in the history,
  nor are inputs starting with a space.
Script help: help() lists the API, help(HOST), help(\"Network\"), help(\"Vm.clone\"),
  help(\"clone\") (every match); long help goes through $PAGER (default less -R).
";

/// Parse `input` as a command; `None` when it is script text.
pub fn parse(input: &str) -> Option<Meta> {
    let text = input.trim();
    let rest = text.strip_prefix(':')?;
    let (name, arg) = match rest.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (rest, ""),
    };
    Some(match name {
        "help" | "h" | "?" => Meta::Help,
        "load" | "l" if arg.is_empty() => Meta::Usage(":load FILE"),
        "load" | "l" => Meta::Load(unquote(arg).to_owned()),
        "connect" | "c" if arg.is_empty() => Meta::Usage(":connect URI"),
        "connect" | "c" => Meta::Connect(unquote(arg).to_owned()),
        "json" => Meta::Json,
        "time" => Meta::Time,
        "vars" => Meta::Vars,
        "quit" | "q" | "exit" => Meta::Quit,
        other => Meta::Unknown(other.to_owned()),
    })
}

fn unquote(arg: &str) -> &str {
    arg.strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .unwrap_or(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("1 + 2"), None);
        assert_eq!(parse(":help"), Some(Meta::Help));
        assert_eq!(parse("  :q  "), Some(Meta::Quit));
        assert_eq!(parse(":load lab.rhai"), Some(Meta::Load("lab.rhai".into())));
        assert_eq!(
            parse(":load \"my lab.rhai\""),
            Some(Meta::Load("my lab.rhai".into()))
        );
        assert_eq!(parse(":load"), Some(Meta::Usage(":load FILE")));
        assert_eq!(
            parse(":connect qemu:///system"),
            Some(Meta::Connect("qemu:///system".into()))
        );
        assert_eq!(parse(":frob"), Some(Meta::Unknown("frob".into())));
    }
}
