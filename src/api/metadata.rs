//! Application metadata arguments (`set_metadata(ns_uri, xml)`), shared by
//! the objects whose XML has a `<metadata>` (networks, VMs).
use rhai::{Dynamic, NativeCallContext};

use super::error::{AtExt, ScriptError, ScriptResult};
use crate::xml::metadata as meta;
use crate::xml::tree::Element;

/// A metadata argument: an XML element (string) or `()` (remove), parsed,
/// for namespace `ns_uri` (a URI: libvirt keeps nothing under an empty one).
pub fn metadata_arg(
    ctx: &NativeCallContext,
    ns_uri: &str,
    xml: &Dynamic,
) -> ScriptResult<Option<(Option<String>, Element)>> {
    if !ns_uri.contains(':') || ns_uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ScriptError::invalid(
            "ns_uri",
            ns_uri,
            "must be a namespace URI (like https://example.org/app)",
        )
        .at(ctx));
    }
    if xml.is_unit() {
        return Ok(None);
    }
    let Some(text) = xml
        .read_lock::<rhai::ImmutableString>()
        .map(|s| s.to_string())
    else {
        return Err(ScriptError::invalid(
            "xml",
            xml.type_name(),
            "expected an XML element as a string, or () to remove",
        )
        .at(ctx));
    };
    meta::parse_element(&text)
        .map(Some)
        .map_err(|e| ScriptError::invalid("xml", &text, format!("not one XML element: {e}")))
        .at(ctx)
}
