//! The rustyline helper: completion (complete.rs), signature hints, the
//! multi-line validator (validate.rs), and a dim style for hints.
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use rhai::{Dynamic, Engine};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hint, Hinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::complete::{self, Catalog, Known, VarInfo, LIVE_ARGUMENTS};
use super::validate::{self, Completeness};
use crate::api::{Host, Pool, Vm};

pub struct ReplHelper {
    /// The API catalog, built on a background thread at start-up.
    pub catalog: Arc<OnceLock<Catalog>>,
    pub host: Option<Host>,
    /// The session's variables, refreshed after every input.
    pub vars: Vec<(VarInfo, Dynamic)>,
    /// `import "path" as alias` done in the session.
    pub aliases: Vec<(String, String)>,
    syntax: Engine,
    files: FilenameCompleter,
}

impl ReplHelper {
    pub fn new(catalog: Arc<OnceLock<Catalog>>, host: Option<Host>) -> ReplHelper {
        ReplHelper {
            catalog,
            host,
            vars: Vec::new(),
            aliases: Vec::new(),
            syntax: validate::syntax_engine(),
            files: FilenameCompleter::new(),
        }
    }

    fn catalog(&self) -> &Catalog {
        self.catalog.get_or_init(Catalog::build)
    }

    fn with_known<T>(&self, f: impl FnOnce(&Known) -> T) -> T {
        let vars: Vec<VarInfo> = self.vars.iter().map(|(v, _)| v.clone()).collect();
        let live = |root: &str, type_name: &str, method: &str| self.live_names(root, type_name, method);
        let known = Known {
            catalog: self.catalog(),
            vars: &vars,
            aliases: &self.aliases,
            live: &live,
        };
        f(&known)
    }

    /// Names of existing objects for `root.method("<Tab>`, asked of libvirt now.
    pub fn live_names(&self, root: &str, type_name: &str, method: &str) -> Option<Vec<String>> {
        let (_, _, kind) = LIVE_ARGUMENTS
            .iter()
            .find(|(t, m, _)| *t == type_name && *m == method)?;
        let value = if root == "HOST" {
            Dynamic::from(self.host.clone()?)
        } else {
            self.vars.iter().find(|(v, _)| v.name == root)?.1.clone()
        };
        live_names(&value, kind)
    }
}

/// Names of the objects of `kind` under `value` (a Host, Pool or Vm).
pub fn live_names(value: &Dynamic, kind: &str) -> Option<Vec<String>> {
    let mut names: Vec<String> = match kind {
        "network" | "pool" | "vm" => {
            let host = value.read_lock::<Host>()?;
            let conn = host.conn();
            match kind {
                "network" => conn
                    .list_all_networks(0)
                    .ok()?
                    .iter()
                    .filter_map(|n| n.name().ok())
                    .collect(),
                "pool" => conn
                    .list_all_storage_pools(0)
                    .ok()?
                    .iter()
                    .filter_map(|p| p.name().ok())
                    .collect(),
                _ => conn
                    .list_all_domains(0)
                    .ok()?
                    .iter()
                    .filter_map(|d| d.name().ok())
                    .collect(),
            }
        }
        "volume" => value.read_lock::<Pool>()?.raw.list_volumes().ok()?,
        "snapshot" => value
            .read_lock::<Vm>()?
            .raw
            .list_all_snapshots(0)
            .ok()?
            .iter()
            .filter_map(|s| s.name().ok())
            .collect(),
        _ => return None,
    };
    names.sort();
    Some(names)
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if line[..pos].trim_start().starts_with(":load ") {
            return self.files.complete(line, pos, ctx);
        }
        let (start, candidates) = self.with_known(|known| complete::complete(line, pos, known));
        Ok((
            start,
            candidates
                .into_iter()
                .map(|c| Pair {
                    display: c.display,
                    replacement: c.replacement,
                })
                .collect(),
        ))
    }
}

/// A hint that is only shown: Right-arrow must not insert a signature.
pub struct SignatureHint(String);

impl Hint for SignatureHint {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for ReplHelper {
    type Hint = SignatureHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<SignatureHint> {
        if pos < line.len() || line.trim_start().starts_with(':') {
            return None;
        }
        // Only once the catalog is ready: typing never waits for it.
        self.catalog.get()?;
        let signature = self.with_known(|known| complete::hint(&line[..pos], known))?;
        Some(SignatureHint(format!("   {signature}")))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(match validate::completeness(&self.syntax, ctx.input()) {
            Completeness::Complete => ValidationResult::Valid(None),
            Completeness::Incomplete => ValidationResult::Incomplete,
        })
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        false
    }
}

impl Helper for ReplHelper {}
