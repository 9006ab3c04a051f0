//! Colours for the input line: keywords, strings, numbers, comments. Only
//! escape sequences are added (the text and its width stay the same), so
//! rustyline's cursor arithmetic still holds. A scanner, not the parser: an
//! unfinished line (an open string) must colour too.
use std::borrow::Cow;

use super::complete::KEYWORDS;

const KEYWORD: &str = "\x1b[1;35m";
const STRING: &str = "\x1b[32m";
const NUMBER: &str = "\x1b[36m";
const COMMENT: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// `line` with colour escapes around its tokens; unchanged when nothing is coloured.
pub fn line(line: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(line.len() + 32);
    let mut coloured = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let (len, colour) = token(rest, c);
        let (text, tail) = rest.split_at(len);
        match colour {
            Some(colour) => {
                coloured = true;
                out.push_str(colour);
                out.push_str(text);
                out.push_str(RESET);
            }
            None => out.push_str(text),
        }
        rest = tail;
    }
    if coloured {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(line)
    }
}

/// The byte length of the token starting `text` (whose first char is `c`), and its colour.
fn token(text: &str, c: char) -> (usize, Option<&'static str>) {
    if text.starts_with("//") {
        return (text.find('\n').unwrap_or(text.len()), Some(COMMENT));
    }
    if let Some(body) = text.strip_prefix("/*") {
        let end = body.find("*/").map(|i| i + 4).unwrap_or(text.len());
        return (end, Some(COMMENT));
    }
    match c {
        '"' | '`' | '\'' => (string_len(text, c), Some(STRING)),
        '0'..='9' => {
            let len = text
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'))
                .unwrap_or(text.len());
            (len, Some(NUMBER))
        }
        c if c.is_alphabetic() || c == '_' => {
            let len = text
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .unwrap_or(text.len());
            let word = &text[..len];
            (len, KEYWORDS.contains(&word).then_some(KEYWORD))
        }
        c => (c.len_utf8(), None),
    }
}

/// The length of a string literal opened by `quote`, through its closing
/// quote (or to the end of the line when it is still open); `\` escapes.
fn string_len(text: &str, quote: char) -> usize {
    let mut escaped = false;
    for (i, ch) in text.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if ch == '\\' && quote != '`' {
            escaped = true;
        } else if ch == quote {
            return i + ch.len_utf8();
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn keywords_strings_numbers_and_comments_are_coloured() {
        let input = r#"let n = HOST.network("lab \"x\""); if n.active { 42 } // note"#;
        let out = line(input);
        assert_eq!(strip(&out), input, "only escapes are added");
        assert!(out.starts_with("\x1b[1;35mlet\x1b[0m n = HOST"), "{out}");
        assert!(
            out.contains("\x1b[32m\"lab \\\"x\\\"\"\x1b[0m)"),
            "the whole string, escapes included: {out}"
        );
        assert!(out.contains("\x1b[1;35mif\x1b[0m n.active"), "{out}");
        assert!(out.contains("\x1b[36m42\x1b[0m"), "{out}");
        assert!(out.ends_with("\x1b[2m// note\x1b[0m"), "{out}");
        // words that contain a keyword or a digit are not coloured
        assert_eq!(line("letter + x1 + iffy"), "letter + x1 + iffy");
        // an open string colours to the end of the line
        assert_eq!(line("print(`abc"), "print(\x1b[32m`abc\x1b[0m");
        assert!(matches!(line("HOST.vms()"), Cow::Borrowed(_)));
    }
}
