//! Where the history lives, and which inputs never go there.
//!
//! The history file is `$XDG_STATE_HOME/virtscript/history`, else
//! `~/.local/state/virtscript/history` (the XDG base directory rule for state).
//!
//! **Secrets rule.** An input is never added to the history (neither the file
//! nor the session's Up-arrow / Ctrl-R list) when, ignoring case, it contains
//! any of these words, anywhere (in a key, a variable name, a string):
//! `password`, `passwd` (so also `chpasswd`, `hashed_passwd`), `passphrase`,
//! `secret`, `token`, `private_key`. That covers cloud-init maps with
//! `password:`, `chpasswd: #{...}`, `plain_text_passwd`, and typed tokens. The rule
//! errs on the side of not saving: `let tokenizer = 1;` is not saved either; the
//! REPL says so when it skips an input. As in shells, an input typed with a
//! leading space is not saved either (a way to keep anything out on purpose).
use std::path::PathBuf;

/// Words that mark an input as carrying a secret (lower case).
pub const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "private_key",
];

/// Whether `input` must stay out of the history.
pub fn is_secret(input: &str) -> bool {
    let lower = input.to_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// The history file's path, from the environment (`XDG_STATE_HOME`, `HOME`).
pub fn history_path() -> Option<PathBuf> {
    state_dir(
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
    .map(|dir| dir.join("virtscript").join("history"))
}

/// The XDG state directory: `XDG_STATE_HOME` when it is an absolute path
/// (the spec says to ignore relative ones), else `HOME/.local/state`.
pub fn state_dir(xdg_state_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    match xdg_state_home {
        Some(dir) if dir.is_absolute() => Some(dir),
        _ => home
            .filter(|h| !h.as_os_str().is_empty())
            .map(|h| h.join(".local").join("state")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        for input in [
            r#"let ci = #{ password: "hunter2" };"#,
            r#"HOST.create_vm(#{ cloud_init: #{ chpasswd: #{ list: "root:x" } } })"#,
            r#"let c = #{ users: [#{ name: "a", plain_text_passwd: "x" }] };"#,
            "let TOKEN = \"abc\";",
            "connect_secret(\"x\")",
            "let k = #{ ssh_private_key: \"...\" };",
            "let p = \"my PassPhrase\";",
        ] {
            assert!(is_secret(input), "{input}");
        }
        for input in [
            "HOST.networks()",
            "let n = HOST.network(\"default\");\nn.start();",
            r#"#{ cloud_init: #{ ssh_authorized_keys: ["ssh-ed25519 AAAA"] } }"#,
        ] {
            assert!(!is_secret(input), "{input}");
        }
    }

    #[test]
    fn xdg_state_dir_rules() {
        assert_eq!(
            state_dir(Some("/x/state".into()), Some("/home/u".into())),
            Some(PathBuf::from("/x/state"))
        );
        assert_eq!(
            state_dir(Some("relative".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.local/state"))
        );
        assert_eq!(
            state_dir(None, Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.local/state"))
        );
        assert_eq!(state_dir(None, None), None);
    }
}
