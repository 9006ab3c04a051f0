//! The interactive session (`virtscript repl`).
use crate::cli::{Exit, ReplArgs};

pub fn run(args: ReplArgs) -> Exit {
    let _ = args;
    eprintln!("the REPL is not built yet");
    Exit::Usage
}
