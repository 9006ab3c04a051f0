//! Is an input finished? Multi-line input without continuation characters:
//! an input the parser says ends too early (an open brace, a dangling
//! operator, an unterminated backtick string) continues on the next line; a
//! complete input is run, even when it is wrong, so the error shows with a caret.
use rhai::{Engine, LexError, ParseErrorType};

/// What Enter should do with the text typed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// Run it (it may still fail to compile: the error is shown then).
    Complete,
    /// Keep reading lines.
    Incomplete,
}

/// An engine that only parses: no strict variables, so unknown names do not
/// count as errors here (the real compile reports them).
pub fn syntax_engine() -> Engine {
    Engine::new_raw()
}

/// Decide whether `input` is complete. Meta-commands (`:help`) and blank input
/// are complete; an input ending in an empty line after an incomplete one is
/// forced through, so a stuck input can always be submitted to see its error.
pub fn completeness(engine: &Engine, input: &str) -> Completeness {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.starts_with(':') {
        return Completeness::Complete;
    }
    if input.ends_with("\n\n") || input.ends_with("\n \n") {
        return Completeness::Complete;
    }
    let Err(err) = engine.compile(input) else {
        return Completeness::Complete;
    };
    let at_end = || {
        let pos = err.position();
        match (pos.line(), pos.position()) {
            (Some(line), column) => {
                offset_of(input, line, column.unwrap_or(1)) >= input.trim_end().chars().count()
            }
            (None, _) => true,
        }
    };
    match err.err_type() {
        ParseErrorType::UnexpectedEOF => Completeness::Incomplete,
        ParseErrorType::BadInput(LexError::UnterminatedString) => {
            // Backtick strings span lines; a `"` string continues only after a
            // trailing backslash. Any other unterminated string is an error.
            let opener = err
                .position()
                .line()
                .map(|line| offset_of(input, line, err.position().position().unwrap_or(1)))
                .and_then(|offset| input.chars().nth(offset));
            if opener == Some('`') || input.trim_end_matches(['\n', '\r']).ends_with('\\') {
                Completeness::Incomplete
            } else {
                Completeness::Complete
            }
        }
        ParseErrorType::BadInput(_) => Completeness::Complete,
        _ if at_end() => Completeness::Incomplete,
        _ => Completeness::Complete,
    }
}

/// The character offset of a 1-based line and column in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1);
        }
        offset += l.chars().count() + 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;
    use Completeness::*;

    fn check(input: &str) -> Completeness {
        completeness(&syntax_engine(), input)
    }

    #[test]
    fn complete_inputs_run() {
        for input in [
            "1 + 2",
            "let x = 1;",
            "HOST.networks()",
            "fn f(x) {\n  x * 2\n}",
            "let s = `multi\nline`;",
            "let s = \"abc\\\ndef\";",
            "",
            "   ",
            ":help",
            ":load lab.rhai",
            "undefined_variable_is_not_a_syntax_error",
        ] {
            assert_eq!(check(input), Complete, "{input:?}");
        }
    }

    #[test]
    fn incomplete_inputs_continue() {
        for input in [
            "fn f() {",
            "fn f() {\n  1\n",
            "let x = 1 +",
            "let x =",
            "foo(1,",
            "print(\"a\"",
            "[1, 2",
            "#{ a: 1,",
            "if x { 1 } else",
            "switch x {",
            "let s = `abc",
            "let s = \"abc\\",
            "HOST.",
            "fn f(",
        ] {
            assert_eq!(check(input), Incomplete, "{input:?}");
        }
    }

    #[test]
    fn wrong_inputs_are_complete_so_the_error_shows() {
        for input in [
            "let x = 1 +* 2;",
            "1 2",
            "let x = 1; }",
            "let s = \"abc",
            "x = )",
            // an empty line after an unfinished input forces it through
            "fn f() {\n\n",
        ] {
            assert_eq!(check(input), Complete, "{input:?}");
        }
    }
}
