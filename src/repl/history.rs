//! Where the history lives, and which inputs never go there.
//!
//! The history file is `$XDG_STATE_HOME/virtscript/history`, else
//! `~/.local/state/virtscript/history` (the XDG base directory rule for state).
//!
//! **Secrets rule.** An input is never added to the history (neither the file
//! nor the session's Up-arrow / Ctrl-R list) when it holds any of these:
//!
//! - one of these words, ignoring case, anywhere (in a key, a variable name, a
//!   string): `password`, `passwd` (so also `chpasswd`, `hashed_passwd`),
//!   `passphrase`, `secret`, `token`, `private_key`. That covers cloud-init maps
//!   with `password:`, `chpasswd: #{...}`, `plain_text_passwd`, and typed tokens;
//! - a PEM block of a private key: a `-----BEGIN ... PRIVATE KEY-----` header
//!   (RSA, EC, OPENSSH, ENCRYPTED, PGP ... PRIVATE KEY BLOCK);
//! - an SSH key: `ssh-rsa`, `ssh-dss`, `ssh-ed25519`, `ssh-ed448`,
//!   `ecdsa-sha2-*`, `sk-...@openssh.com` followed by its base64 (`AAAA...`).
//!   Public keys too: they name who a host trusts, and a pasted key line is
//!   often the private half's neighbour;
//! - a URL with a password: `scheme://user:password@host` (`qemu+ssh://root@host`,
//!   without a password, is kept).
//!
//! The rule errs on the side of not saving: `let tokenizer = 1;` is not saved
//! either; the REPL says so, and why, when it skips an input. As in shells, an
//! input typed with a leading space is not saved either (a way to keep
//! anything out on purpose).
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
    secret_kind(input).is_some()
}

/// What kind of secret `input` holds, in words for the note the REPL prints.
pub fn secret_kind(input: &str) -> Option<&'static str> {
    let lower = input.to_lowercase();
    if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
        Some("it mentions a password, secret or token")
    } else if has_private_key_block(&lower) {
        Some("it holds a private key")
    } else if has_ssh_key(input) {
        Some("it holds an SSH key")
    } else if has_url_password(input) {
        Some("it holds a URL with a password")
    } else {
        None
    }
}

/// A PEM header `-----begin ... private key...-----` (input in lower case).
fn has_private_key_block(lower: &str) -> bool {
    lower.match_indices("-----begin ").any(|(at, _)| {
        let header = &lower[at + "-----begin ".len()..];
        let header = header.split("-----").next().unwrap_or("");
        header.contains("private key")
    })
}

/// Key types as SSH writes them at the start of a key line.
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ssh-ed448",
    "ecdsa-sha2-",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-",
];

/// A key type followed by whitespace and the key's base64 (which starts `AAAA`).
fn has_ssh_key(input: &str) -> bool {
    SSH_KEY_TYPES.iter().any(|kind| {
        input.match_indices(kind).any(|(at, _)| {
            let rest = &input[at + kind.len()..];
            // the rest of the type name (`nistp256`, `@openssh.com`)
            let rest = rest.trim_start_matches(|c: char| {
                c.is_ascii_alphanumeric() || c == '@' || c == '.' || c == '-'
            });
            rest.starts_with([' ', '\t']) && rest.trim_start().starts_with("AAAA")
        })
    })
}

/// `scheme://user:password@host`: an authority whose user part has a `:` and
/// something after it.
fn has_url_password(input: &str) -> bool {
    input.match_indices("://").any(|(at, _)| {
        let after = &input[at + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || "/?#\"'`".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((user, _)) => user
                .split_once(':')
                .is_some_and(|(_, password)| !password.is_empty()),
            None => false,
        }
    })
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
            assert_eq!(
                secret_kind(input),
                Some("it mentions a password, secret or token"),
                "{input}"
            );
        }
        for (input, kind) in [
            (
                "let k = `-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----`;",
                "it holds a private key",
            ),
            ("let k = \"-----BEGIN RSA PRIVATE KEY-----\";", "it holds a private key"),
            ("let k = `-----BEGIN EC PRIVATE KEY-----`", "it holds a private key"),
            ("let k = `-----begin encrypted private key-----`", "it holds a private key"),
            ("let k = `-----BEGIN PGP PRIVATE KEY BLOCK-----`", "it holds a private key"),
            (
                r#"#{ cloud_init: #{ ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@lab"] } }"#,
                "it holds an SSH key",
            ),
            ("let k = \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ\";", "it holds an SSH key"),
            ("let k = \"ecdsa-sha2-nistp256 AAAAE2VjZHNh\";", "it holds an SSH key"),
            ("let k = \"sk-ssh-ed25519@openssh.com AAAAGnNr\";", "it holds an SSH key"),
            ("connect(\"http://bob:hunter2@example.com/x\")", "it holds a URL with a password"),
            ("connect(\"qemu+ssh://root:pw@[fd00::1]:22/system\")", "it holds a URL with a password"),
        ] {
            assert_eq!(secret_kind(input), Some(kind), "{input}");
        }
        for input in [
            "HOST.networks()",
            "let n = HOST.network(\"default\");\nn.start();",
            // a certificate is public; a key type alone is no key
            "let c = `-----BEGIN CERTIFICATE-----`;",
            "let t = #{ key_type: \"ssh-ed25519\" };",
            // a user without a password, a port, an IPv6 host
            "connect(\"qemu+ssh://root@host/system\")",
            "connect(\"qemu+tcp://host:16509/system\")",
            "connect(\"qemu+tcp://[::1]/system\")",
            "let u = \"http://bob:@example.com/\";",
            "let s = \"a://b\"; let t = \"c:d@e\";",
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
