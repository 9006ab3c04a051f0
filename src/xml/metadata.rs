//! Application metadata (`<metadata>` of networks and domains): one element
//! per XML namespace, as libvirt keeps it (`virDomainSetMetadata`). Elements
//! are handled here without their prefix and `xmlns` declarations, so that what
//! a script wrote compares equal to what libvirt gives back.
use super::tree::{Element, Node};

/// The prefix libvirt is given when a script's element has none.
pub const DEFAULT_PREFIX: &str = "vs";

/// virtscript's own records on an object (the clone intent log), apart from
/// any namespace a script writes.
pub const STATE_NS: &str = "https://virtscript.dev/xmlns/state/1";
/// The prefix of [`STATE_NS`] elements.
pub const STATE_PREFIX: &str = "virtscript";

/// `<p:lab xmlns:p="uri" p:x="1"><p:vm/></p:lab>` → (`Some("p")`, `<lab x="1"><vm/></lab>`):
/// the element without namespace prefixes and declarations.
pub fn strip_ns(el: &Element) -> (Option<String>, Element) {
    let prefix = el.name.split_once(':').map(|(p, _)| p.to_owned());
    (prefix, strip(el))
}

fn strip(el: &Element) -> Element {
    let local = |n: &str| n.split_once(':').map(|(_, l)| l).unwrap_or(n).to_owned();
    Element {
        name: local(&el.name),
        attrs: el
            .attrs
            .iter()
            .filter(|(k, _)| k != "xmlns" && !k.starts_with("xmlns:"))
            .map(|(k, v)| (local(k), v.clone()))
            .collect(),
        children: el
            .children
            .iter()
            .filter_map(|c| match c {
                Node::Element(e) => Some(Node::Element(strip(e))),
                Node::Text(t) if t.trim().is_empty() => None,
                other => Some(other.clone()),
            })
            .collect(),
    }
}

/// The element in namespace `uri` with `prefix` on it and every descendant
/// element, as libvirt stores it.
pub fn with_ns(el: &Element, prefix: &str, uri: &str) -> Element {
    fn prefixed(el: &Element, prefix: &str) -> Element {
        Element {
            name: format!("{prefix}:{}", el.name),
            attrs: el.attrs.clone(),
            children: el
                .children
                .iter()
                .map(|c| match c {
                    Node::Element(e) => Node::Element(prefixed(e, prefix)),
                    other => other.clone(),
                })
                .collect(),
        }
    }
    let mut out = prefixed(el, prefix);
    out.attrs
        .insert(0, (format!("xmlns:{prefix}"), uri.to_owned()));
    out
}

/// Whether `el` (a child of `<metadata>`) is in namespace `uri`.
pub fn in_namespace(el: &Element, uri: &str) -> bool {
    let decl = match el.name.split_once(':') {
        Some((p, _)) => format!("xmlns:{p}"),
        None => "xmlns".to_owned(),
    };
    el.attr(&decl) == Some(uri)
}

/// The element in namespace `uri` among the children of a `<metadata>`
/// element's inner XML, stripped (see [`strip_ns`]).
pub fn find(inner: Option<&str>, uri: &str) -> Option<Element> {
    let root = Element::parse(&format!("<metadata>{}</metadata>", inner?)).ok()?;
    let found = root
        .elements()
        .find(|e| in_namespace(e, uri))
        .map(|e| strip_ns(e).1);
    found
}

/// The inner XML of `<metadata>` with the element of namespace `uri` replaced
/// by `new` (`None` removes it); `None` when nothing is left.
pub fn replace(
    inner: Option<&str>,
    uri: &str,
    new: Option<(&Element, &str)>,
) -> Result<Option<String>, String> {
    let mut root = Element::parse(&format!("<metadata>{}</metadata>", inner.unwrap_or("")))
        .map_err(|e| e.to_string())?;
    root.remove_elements(|e| in_namespace(e, uri));
    root.children
        .retain(|c| !matches!(c, Node::Text(t) if t.trim().is_empty()));
    if let Some((el, prefix)) = new {
        root.push(with_ns(el, prefix, uri));
    }
    if root.children.is_empty() {
        return Ok(None);
    }
    let xml = root.to_xml();
    Ok(Some(
        xml["<metadata>".len()..xml.len() - "</metadata>".len()].to_owned(),
    ))
}

/// Parse a script's metadata element: (its prefix if it had one, the element stripped).
pub fn parse_element(xml: &str) -> Result<(Option<String>, Element), String> {
    let el = Element::parse(xml).map_err(|e| e.to_string())?;
    Ok(strip_ns(&el))
}

/// Remove `root`'s `<metadata/>` when nothing is left in it (libvirt keeps an
/// empty one once its last element goes). Returns whether one was removed.
pub fn drop_empty(root: &mut Element) -> bool {
    root.remove_elements(|e| {
        e.name == "metadata" && e.elements().next().is_none() && e.text().trim().is_empty()
    }) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_and_prefix_round_trip() {
        let (p, el) =
            parse_element("<x:lab xmlns:x='urn:a' name='l'><x:vm n='1'/></x:lab>").unwrap();
        assert_eq!(p.as_deref(), Some("x"));
        assert_eq!(el.to_xml(), "<lab name='l'><vm n='1'/></lab>");
        let back = with_ns(&el, "x", "urn:a");
        assert_eq!(
            back.to_xml(),
            "<x:lab xmlns:x='urn:a' name='l'><x:vm n='1'/></x:lab>"
        );
    }

    #[test]
    fn find_and_replace_keep_other_namespaces() {
        let inner = "<a:one xmlns:a='urn:a'/><b:two xmlns:b=\"urn:b\" k='v'/>";
        assert_eq!(find(Some(inner), "urn:b").unwrap().to_xml(), "<two k='v'/>");
        assert!(find(Some(inner), "urn:c").is_none());
        let el = Element::new("three");
        let out = replace(Some(inner), "urn:b", Some((&el, "vs")))
            .unwrap()
            .unwrap();
        assert_eq!(out, "<a:one xmlns:a='urn:a'/><vs:three xmlns:vs='urn:b'/>");
        let gone = replace(Some("<a:one xmlns:a='urn:a'/>"), "urn:a", None).unwrap();
        assert_eq!(gone, None);
    }
}
