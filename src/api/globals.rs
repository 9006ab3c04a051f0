//! Helpers every job needs: sleeping, time, the local host name, assertions.
use crate::runtime::ErrorKind;
use std::time::Duration;

use rhai::plugin::*;
use rhai::NativeCallContext;

use super::error::{ScriptError, ScriptResult};

#[export_module(manifest)]
pub mod globals_api {
    use super::*;

    /// Pause the script for `seconds` (fractions allowed); Ctrl-C and `--timeout` still stop it.
    ///
    /// ```rhai
    /// let t = timestamp();
    /// sleep(0.01);
    /// assert(t.elapsed >= 0.01);
    /// ```
    #[rhai_fn(name = "sleep", return_raw)]
    pub fn sleep_float(ctx: NativeCallContext, seconds: f64) -> ScriptResult<()> {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(
                ScriptError::invalid("seconds", seconds, "must be a non-negative number").at(&ctx),
            );
        }
        crate::runtime::stop::sleep(Duration::from_secs_f64(seconds))
            .map_err(|reason| crate::api::error::stopped(&ctx, reason))
    }

    /// Pause the script for whole `seconds`.
    ///
    /// ```rhai
    /// let t = timestamp();
    /// sleep(1);
    /// assert(t.elapsed >= 1.0);
    /// ```
    #[rhai_fn(name = "sleep", return_raw)]
    pub fn sleep_int(ctx: NativeCallContext, seconds: i64) -> ScriptResult<()> {
        sleep_float(ctx, seconds as f64)
    }

    /// The current time in UTC, as an RFC 3339 timestamp (`"2026-11-25T20:18:01Z"`).
    ///
    /// ```rhai
    /// let t = now();
    /// assert(t.ends_with("Z"));
    /// ```
    pub fn now() -> String {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
    }

    /// The host name of the machine running the script.
    ///
    /// ```rhai
    /// assert_eq(hostname(), HOST.hostname);   // HOST is the embedded driver, on this machine
    /// ```
    #[rhai_fn(name = "hostname")]
    pub fn local_hostname() -> String {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most buf.len() bytes into buf.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
        if rc != 0 {
            return String::new();
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    }

    /// Milliseconds since the Unix epoch, for measuring durations in scripts.
    ///
    /// ```rhai
    /// let t0 = epoch_ms();
    /// assert(epoch_ms() >= t0);
    /// ```
    pub fn epoch_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// How many changes (defines, starts, updates...) this script has made through
    /// libvirt so far; an idempotent re-run leaves it unchanged.
    ///
    /// ```rhai
    /// let before = mutation_count();
    /// let net = HOST.network("default");
    /// net.autostart = true;
    /// assert_eq(mutation_count(), before + 1);
    /// ```
    pub fn mutation_count() -> i64 {
        crate::runtime::journal::count() as i64
    }

    /// Fail the script unless `condition` holds.
    ///
    /// ```rhai
    /// assert(1 + 1 == 2);
    /// ```
    #[rhai_fn(name = "assert", return_raw)]
    pub fn assert_true(ctx: NativeCallContext, condition: bool) -> ScriptResult<()> {
        if condition {
            Ok(())
        } else {
            Err(ScriptError::new(ErrorKind::Assert, "assertion failed").at(&ctx))
        }
    }

    /// Fail the script with `message` unless `condition` holds.
    ///
    /// ```rhai
    /// assert(HOST.uri != "", "connected");
    /// ```
    #[rhai_fn(name = "assert", return_raw)]
    pub fn assert_message(
        ctx: NativeCallContext,
        condition: bool,
        message: &str,
    ) -> ScriptResult<()> {
        if condition {
            Ok(())
        } else {
            Err(
                ScriptError::new(ErrorKind::Assert, format!("assertion failed: {message}"))
                    .at(&ctx),
            )
        }
    }

    /// Fail the script unless `left == right`, showing both.
    ///
    /// ```rhai
    /// assert_eq(40 + 2, 42);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn assert_eq(ctx: NativeCallContext, left: Dynamic, right: Dynamic) -> ScriptResult<()> {
        let equal = ctx
            .call_native_fn::<bool>("==", (left.clone(), right.clone()))
            .unwrap_or(false);
        if equal {
            Ok(())
        } else {
            Err(ScriptError::new(
                ErrorKind::Assert,
                format!("assertion failed: {left:?} != {right:?}"),
            )
            .at(&ctx))
        }
    }

    /// The size in bytes of a local file (on the machine running the script),
    /// or `()` when there is no such file. Relative paths are from the
    /// current directory.
    ///
    /// ```rhai
    /// assert(file_size("/no/such/file") == ());
    /// assert(file_size("/proc/self/status") != ());
    /// ```
    pub fn file_size(path: &str) -> Dynamic {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Dynamic::from(m.len() as i64),
            _ => Dynamic::UNIT,
        }
    }

    /// Bytes in a size: `"10G"` (GiB), `"512M"`, `"1.5T"`, `"2GB"` (10^9), or
    /// a whole number of bytes; the same sizes volumes and VMs take.
    ///
    /// ```rhai
    /// assert_eq(parse_size("10G"), 10 * 1024 * 1024 * 1024);
    /// assert_eq(parse_size("2GB"), 2000000000);
    /// assert_eq(parse_size(4096), 4096);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parse_size(ctx: NativeCallContext, size: Dynamic) -> ScriptResult<i64> {
        if let Ok(n) = size.as_int() {
            if n >= 0 {
                return Ok(n);
            }
        }
        let text = size.to_string();
        let bytes = crate::runtime::units::parse_size(&text)
            .map_err(|problem| ScriptError::invalid("size", &text, problem).at(&ctx))?;
        i64::try_from(bytes).map_err(|_| ScriptError::invalid("size", &text, "too large").at(&ctx))
    }

    /// Parse one XML element (an object's metadata, a piece of `xml`) into a map:
    /// `name`, `attrs` (a map of strings), `text` (its own text, trimmed) and
    /// `children` (the child elements, as maps like this one).
    ///
    /// ```rhai
    /// let e = xml_parse("<lab name='l1'><vm n='1'/><vm n='2'/>hi</lab>");
    /// assert_eq(e.name, "lab");
    /// assert_eq(e.attrs.name, "l1");
    /// assert_eq(e.children.map(|c| c.attrs.n), ["1", "2"]);
    /// assert_eq(e.text, "hi");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn xml_parse(ctx: NativeCallContext, xml: &str) -> ScriptResult<rhai::Map> {
        let el = crate::xml::tree::Element::parse(xml)
            .map_err(|e| ScriptError::invalid("xml", xml, e).at(&ctx))?;
        Ok(element_map(&el))
    }

    /// Escape text for use inside XML attributes and text (`&`, `<`, `>`, quotes).
    ///
    /// ```rhai
    /// assert_eq(xml_escape("a<b & 'c'"), "a&lt;b &amp; &apos;c&apos;");
    /// let e = xml_parse(`<x v='${xml_escape("it's")}'/>`);
    /// assert_eq(e.attrs.v, "it's");
    /// ```
    pub fn xml_escape(text: &str) -> String {
        // The documents' escaper, as for an attribute (fit for text too): a
        // `\n`, `\t` or `\r` becomes a character reference, so it survives an
        // attribute (left as it was, libxml2 read it as a space).
        crate::xml::tree::escape(text, true).into_owned()
    }
}

fn element_map(el: &crate::xml::tree::Element) -> rhai::Map {
    use crate::xml::tree::Node;
    let mut m = rhai::Map::new();
    m.insert("name".into(), el.name.clone().into());
    let attrs: rhai::Map = el
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.clone().into()))
        .collect();
    m.insert("attrs".into(), attrs.into());
    let text: String = el
        .children
        .iter()
        .filter_map(|c| match c {
            Node::Text(t) | Node::CData(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    m.insert("text".into(), text.trim().to_owned().into());
    let children: rhai::Array = el.elements().map(|e| element_map(e).into()).collect();
    m.insert("children".into(), children.into());
    m
}
