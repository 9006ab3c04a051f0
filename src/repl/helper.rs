//! The rustyline helper: completion (complete.rs), signature hints, syntax
//! colours (highlight.rs), a dim style for hints, and Ctrl-C at the prompt.
//! (Multi-line input is read line by line by the session loop, in mod.rs.)
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rhai::Dynamic;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hint, Hinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Cmd, ConditionalEventHandler, Context, Event, EventContext, Helper, RepeatCount};

use super::complete::{self, Catalog, Chain, Known, VarInfo};
use crate::api::{object, Host};

pub struct ReplHelper {
    /// The API catalog, built on a background thread at start-up.
    pub catalog: Arc<OnceLock<Catalog>>,
    pub host: Option<Host>,
    /// The session's variables, refreshed after every input.
    pub vars: Vec<(VarInfo, Dynamic)>,
    /// `import "path" as alias` done in the session.
    pub aliases: Vec<(String, String)>,
    /// Set by Ctrl-C at the prompt ([`ClearLine`]); the session drops that line.
    pub cleared: Arc<AtomicBool>,
    files: FilenameCompleter,
}

impl ReplHelper {
    pub fn new(catalog: Arc<OnceLock<Catalog>>, host: Option<Host>) -> ReplHelper {
        ReplHelper {
            catalog,
            host,
            vars: Vec::new(),
            aliases: Vec::new(),
            cleared: Arc::default(),
            files: FilenameCompleter::new(),
        }
    }

    fn catalog(&self) -> &Catalog {
        self.catalog.get_or_init(Catalog::build)
    }

    fn with_known<T>(&self, f: impl FnOnce(&Known) -> T) -> T {
        let vars: Vec<VarInfo> = self.vars.iter().map(|(v, _)| v.clone()).collect();
        let live = |chain: &Chain, method: &str| self.live_names(chain, method);
        let known = Known {
            catalog: self.catalog(),
            vars: &vars,
            aliases: &self.aliases,
            live: &live,
        };
        f(&known)
    }

    /// Names of existing objects for `receiver.method("<Tab>`, asked of
    /// libvirt now. The receiver is `HOST` or a variable, optionally followed by
    /// lookups with literal names: `HOST.pool("default").volume("`. Which
    /// methods take whose names is each object's `ScriptObject::LOOKUP`.
    pub fn live_names(&self, chain: &Chain, method: &str) -> Option<Vec<String>> {
        let mut current = match chain.root.as_str() {
            "HOST" => Dynamic::from(self.host.clone()?),
            name => self
                .vars
                .iter()
                .rev()
                .find(|(v, _)| v.name == name)?
                .1
                .clone(),
        };
        for segment in &chain.segments {
            current = object::find(&current, &segment.name, segment.arg.as_deref()?)?;
        }
        object::live_names(&current, method)
    }
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

/// Ctrl-C at the prompt. rustyline's own Interrupt leaves the hint on the
/// screen; this ends the line the way Enter does (which redraws it without the
/// hint), the validator shows `^C` after it, and the session drops the input.
pub struct ClearLine(pub Arc<AtomicBool>);

impl ConditionalEventHandler for ClearLine {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext) -> Option<Cmd> {
        self.0.store(true, Ordering::SeqCst);
        Some(Cmd::AcceptLine)
    }
}

impl Validator for ReplHelper {
    fn validate(&self, _ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let cleared = self.cleared.load(Ordering::SeqCst);
        Ok(ValidationResult::Valid(cleared.then(|| "^C".to_owned())))
    }
}

/// rustyline calls these only when stdout is a terminal and `NO_COLOR` is unset.
impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        super::highlight::line(line)
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }

    /// Colours change with every key (a word becomes a keyword): redraw the line.
    fn highlight_char(&self, line: &str, _pos: usize, _kind: CmdKind) -> bool {
        !line.is_empty()
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use complete::Segment;

    fn chain(root: &str, segments: &[(&str, &str)]) -> Chain {
        Chain {
            root: root.into(),
            segments: segments
                .iter()
                .map(|(name, arg)| Segment {
                    name: (*name).into(),
                    call: true,
                    arg: Some((*arg).into()),
                })
                .collect(),
        }
    }

    #[test]
    fn live_names_come_from_libvirt() {
        let host = crate::testing::private_host();
        let mut helper = ReplHelper::new(Arc::default(), Some(host.clone()));
        let names = |h: &ReplHelper, c: &Chain, m: &str| h.live_names(c, m);
        assert_eq!(
            names(&helper, &chain("HOST", &[]), "network"),
            Some(vec!["default".to_owned()])
        );
        assert_eq!(
            names(&helper, &chain("HOST", &[]), "pool"),
            Some(vec!["default-pool".to_owned()])
        );
        assert_eq!(
            names(&helper, &chain("HOST", &[]), "vm"),
            Some(vec!["test".to_owned()])
        );
        assert_eq!(
            names(&helper, &chain("HOST", &[("vm", "test")]), "snapshot_named"),
            Some(vec![])
        );
        assert!(names(
            &helper,
            &chain("HOST", &[("pool", "default-pool")]),
            "volume"
        )
        .is_some());
        assert_eq!(
            names(&helper, &chain("HOST", &[("pool", "nope")]), "volume"),
            None
        );
        // Node devices are read only: the shared test:///default has some.
        let shared = ReplHelper::new(Arc::default(), Host::open("test:///default").ok());
        assert_eq!(
            names(&shared, &chain("HOST", &[]), "node_device"),
            Some(
                ["computer", "scsi_host1", "scsi_host11", "scsi_host2"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(names(&helper, &chain("HOST", &[]), "uri"), None);
        // a variable holding a host
        helper.vars.push((
            VarInfo {
                name: "h".into(),
                type_name: "Host".into(),
                keys: vec![],
            },
            Dynamic::from(host),
        ));
        assert_eq!(
            names(&helper, &chain("h", &[]), "network"),
            Some(vec!["default".to_owned()])
        );
    }
}
