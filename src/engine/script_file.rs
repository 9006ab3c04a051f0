//! Reading script and module files: only regular files, only up to a size
//! limit (`--max-script-size`), as UTF-8; a leading byte-order mark and a
//! `#!` line are dropped, so `chmod +x job.rhai && ./job.rhai` works.
use std::io::Read;
use std::path::Path;

/// Why a script file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ScriptFileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a regular file (a script must be a file, not a device, directory or pipe; `-` reads standard input)"
    )]
    NotAFile { path: String },
    #[error("{path} is larger than {limit} bytes; raise --max-script-size to run it")]
    TooLarge { path: String, limit: u64 },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
}

/// Read a script or module file at `path` (named `shown` in errors).
pub fn read(path: &Path, limit: u64) -> Result<String, ScriptFileError> {
    let shown = path.display().to_string();
    let io = |source| ScriptFileError::Io {
        path: shown.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ScriptFileError::NotAFile { path: shown });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    read_limited(file, &shown, limit)
}

/// Read a script from a stream (standard input), up to `limit` bytes.
pub fn read_limited(stream: impl Read, shown: &str, limit: u64) -> Result<String, ScriptFileError> {
    let mut bytes = Vec::new();
    // One byte more than the limit tells "exactly the limit" from "larger".
    let cap = if limit == 0 { u64::MAX } else { limit + 1 };
    stream
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(|source| ScriptFileError::Io {
            path: shown.to_owned(),
            source,
        })?;
    if limit != 0 && bytes.len() as u64 > limit {
        return Err(ScriptFileError::TooLarge {
            path: shown.to_owned(),
            limit,
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| ScriptFileError::NotText {
        path: shown.to_owned(),
    })?;
    Ok(normalize(text))
}

/// Drop a UTF-8 byte-order mark and a `#!` interpreter line (keeping its line
/// break, so line numbers stay those of the file).
pub fn normalize(mut text: String) -> String {
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        text = rest.to_owned();
    }
    if text.starts_with("#!") {
        let end = text.find('\n').unwrap_or(text.len());
        text.replace_range(..end, "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_and_shebang_are_dropped_and_lines_kept() {
        assert_eq!(
            normalize("\u{feff}#!/usr/bin/env virtscript\nprint(1);\n".into()),
            "\nprint(1);\n"
        );
        assert_eq!(normalize("#!x".into()), "");
        // A `#!` further down is the script's own business.
        assert_eq!(normalize("1\n#!x\n".into()), "1\n#!x\n");
    }

    #[test]
    fn size_limit_and_utf8() {
        assert_eq!(read_limited(&b"12345"[..], "s", 5).unwrap(), "12345");
        assert!(matches!(
            read_limited(&b"123456"[..], "s", 5),
            Err(ScriptFileError::TooLarge { limit: 5, .. })
        ));
        assert_eq!(read_limited(&b"123456"[..], "s", 0).unwrap(), "123456");
        assert!(matches!(
            read_limited(&[0xff, 0xfe][..], "s", 0),
            Err(ScriptFileError::NotText { .. })
        ));
    }

    #[test]
    fn devices_and_directories_are_refused() {
        assert!(matches!(
            read(Path::new("/dev/zero"), 100),
            Err(ScriptFileError::NotAFile { .. })
        ));
        assert!(matches!(
            read(Path::new("/"), 100),
            Err(ScriptFileError::NotAFile { .. })
        ));
    }
}
