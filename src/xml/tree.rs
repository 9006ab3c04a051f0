//! A lossless XML element tree. serde drops what a type does not model; edits
//! of existing libvirt objects therefore go through this tree, which keeps every
//! element, attribute, comment and text node it read, in order.
use std::borrow::Cow;
use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
    Comment(String),
    CData(String),
    /// Processing instructions and declarations, kept verbatim.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    /// Attributes in document order, unescaped.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("the document has no root element")]
    NoRoot,
    #[error("elements nested deeper than {max} levels (at byte {position}); libvirt refuses such documents too")]
    TooDeep { position: u64, max: usize },
}

/// The deepest element nesting [`Element::parse`] accepts: libxml2's own
/// limit (libvirt's parser refuses deeper documents), and far below what the
/// recursive walks over a tree (drop, clone, writing) can hold on any stack.
pub const MAX_DEPTH: usize = 256;

impl Element {
    pub fn new(name: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            ..Element::default()
        }
    }

    /// Parse a document; its root element is returned.
    pub fn parse(xml: &str) -> Result<Element, TreeError> {
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<Element> = Vec::new();
        let mut root = None;
        let malformed = |reader: &Reader<&[u8]>, message: String| TreeError::Malformed {
            position: reader.buffer_position(),
            message,
        };
        loop {
            let event = reader
                .read_event()
                .map_err(|e| malformed(&reader, e.to_string()))?;
            match event {
                Event::Start(start) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(TreeError::TooDeep {
                            position: reader.buffer_position(),
                            max: MAX_DEPTH,
                        });
                    }
                    stack.push(element_from(&start).map_err(|m| malformed(&reader, m))?)
                }
                Event::Empty(start) => {
                    let el = element_from(&start).map_err(|m| malformed(&reader, m))?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
                        None => set_root(&mut root, el).map_err(|m| malformed(&reader, m))?,
                    }
                }
                Event::End(_) => {
                    let el = stack
                        .pop()
                        .ok_or_else(|| malformed(&reader, "unexpected end tag".into()))?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
                        None => set_root(&mut root, el).map_err(|m| malformed(&reader, m))?,
                    }
                }
                Event::Text(text) => {
                    if let Some(parent) = stack.last_mut() {
                        let raw = text[..].to_owned();
                        let value = unescape(&raw).map_err(|m| malformed(&reader, m))?;
                        // Text after an entity reference continues the same text node.
                        match parent.children.last_mut() {
                            Some(Node::Text(t)) => t.push_str(&value),
                            _ => parent.children.push(Node::Text(value)),
                        }
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(parent) = stack.last_mut() {
                        let raw = format!("&{};", &r[..]);
                        let value = unescape(&raw).map_err(|m| malformed(&reader, m))?;
                        match parent.children.last_mut() {
                            Some(Node::Text(t)) => t.push_str(&value),
                            _ => parent.children.push(Node::Text(value)),
                        }
                    }
                }
                Event::CData(data) => {
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(Node::CData(data[..].to_owned()));
                    }
                }
                Event::Comment(c) => {
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(Node::Comment(c[..].to_owned()));
                    }
                }
                Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(TreeError::Malformed {
                position: reader.buffer_position(),
                message: format!("unclosed element <{}>", stack.last().unwrap().name),
            });
        }
        root.ok_or(TreeError::NoRoot)
    }

    /// The document as text (no XML declaration, as libvirt writes it).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            out.push_str(&escape(v, true));
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                Node::Element(e) => e.write(out),
                Node::Text(t) => out.push_str(&escape(t, false)),
                Node::Comment(c) => {
                    let _ = write!(out, "<!--{c}-->");
                }
                Node::CData(c) => {
                    let _ = write!(out, "<![CDATA[{c}]]>");
                }
                Node::Other(o) => out.push_str(o),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Set (or add, at the end) an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((name.to_owned(), value)),
        }
    }

    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(i).1)
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.name == name)
    }

    /// All child elements named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    /// The first child named `name`, created (appended) if absent.
    pub fn ensure_child(&mut self, name: &str) -> &mut Element {
        if self.child(name).is_none() {
            self.children.push(Node::Element(Element::new(name)));
        }
        self.child_mut(name).expect("just ensured")
    }

    /// Follow a path of child names (`["ip", "dhcp"]`), first match at each step.
    pub fn path(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |el, name| el.child(name))
    }

    pub fn path_mut(&mut self, path: &[&str]) -> Option<&mut Element> {
        let mut el = self;
        for name in path {
            el = el.child_mut(name)?;
        }
        Some(el)
    }

    /// Remove the children for which `remove` says so; returns how many went.
    pub fn remove_elements(&mut self, mut remove: impl FnMut(&Element) -> bool) -> usize {
        let before = self.children.len();
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if remove(e)));
        before - self.children.len()
    }

    pub fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// The concatenated text content (of direct text children).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) | Node::CData(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Replace the content with one text node.
    pub fn set_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        // Empty text is no child: `<name/>` reads back the same way.
        self.children = if text.is_empty() {
            Vec::new()
        } else {
            vec![Node::Text(text)]
        };
    }

    /// Builder: with an attribute.
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Element {
        self.set_attr(name, value);
        self
    }

    /// Builder: with a child element.
    pub fn with_child(mut self, child: Element) -> Element {
        self.push(child);
        self
    }

    /// Builder: with text content.
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.set_text(text);
        self
    }

    /// The same document without whitespace-only text nodes (for comparisons).
    pub fn normalized(&self) -> Element {
        let mut el = self.clone();
        el.children
            .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
        for child in el.children.iter_mut() {
            if let Node::Element(e) = child {
                *e = e.normalized();
            }
        }
        el
    }
}

/// Apply an edit made on a typed projection of `old` back onto `old`, keeping
/// everything the projection does not model.
///
/// `base` is the projection as read from `old` (the typed model written back as
/// an element), `new` the projection after the edit. Attributes and child
/// elements that appear in `base` are modelled: they take `new`'s values (or go
/// when `new` dropped them). Everything else in `old` (unknown attributes and
/// elements, comments, whitespace) is kept where it was. Children of `old` and
/// `base` correspond by name and position among same-named siblings (a model
/// keeps list order); `base` and `new` children correspond by equality first,
/// then by name and order, so removing one list entry keeps the others' extras.
pub fn apply_edit(old: &Element, base: &Element, new: &Element) -> Element {
    let mut out = Element::new(new.name.clone());
    for (k, v) in &old.attrs {
        if let Some(nv) = new.attr(k) {
            out.attrs.push((k.clone(), nv.to_owned()));
        } else if base.attr(k).is_none() {
            out.attrs.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in &new.attrs {
        if old.attr(k).is_none() {
            out.attrs.push((k.clone(), v.clone()));
        }
    }

    let b_elems: Vec<&Element> = base.elements().collect();
    let n_elems: Vec<&Element> = new.elements().collect();
    let mut n_for_b: Vec<Option<usize>> = vec![None; b_elems.len()];
    let mut n_used = vec![false; n_elems.len()];
    for (bi, be) in b_elems.iter().enumerate() {
        if let Some(ni) = (0..n_elems.len()).find(|&ni| !n_used[ni] && n_elems[ni] == *be) {
            n_for_b[bi] = Some(ni);
            n_used[ni] = true;
        }
    }
    for (bi, be) in b_elems.iter().enumerate() {
        if n_for_b[bi].is_none() {
            // Same name, and recognisably the same entry: a shared attribute, or
            // the only element of that name on both sides.
            let single = |els: &[&Element]| els.iter().filter(|e| e.name == be.name).count() == 1;
            let (b_single, n_single) = (single(&b_elems), single(&n_elems));
            if let Some(ni) = (0..n_elems.len()).find(|&ni| {
                let ne = n_elems[ni];
                !n_used[ni]
                    && ne.name == be.name
                    && ((b_single && n_single) || be.attrs.iter().any(|a| ne.attrs.contains(a)))
            }) {
                n_for_b[bi] = Some(ni);
                n_used[ni] = true;
            }
        }
    }

    let text_modelled = has_text(base) || has_text(new);
    let mut text_done = false;
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for node in &old.children {
        match node {
            Node::Element(oe) => {
                let ordinal = match seen.iter_mut().find(|(n, _)| *n == oe.name) {
                    Some((_, c)) => {
                        *c += 1;
                        *c - 1
                    }
                    None => {
                        seen.push((&oe.name, 1));
                        0
                    }
                };
                let bi = b_elems
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.name == oe.name)
                    .nth(ordinal)
                    .map(|(i, _)| i);
                match bi {
                    None => out.children.push(node.clone()),
                    Some(bi) => {
                        if let Some(ni) = n_for_b[bi] {
                            out.push(apply_edit(oe, b_elems[bi], n_elems[ni]));
                        }
                    }
                }
            }
            Node::Text(t) | Node::CData(t) if text_modelled && !t.trim().is_empty() => {
                if !text_done {
                    text_done = true;
                    let text = new.text();
                    if !text.is_empty() {
                        out.children.push(Node::Text(text));
                    }
                }
            }
            other => out.children.push(other.clone()),
        }
    }
    if text_modelled && !text_done && has_text(new) {
        out.children.push(Node::Text(new.text()));
    }
    for (ni, ne) in n_elems.iter().enumerate() {
        if n_used[ni] {
            continue;
        }
        // After the last sibling of the same name, else before trailing whitespace.
        let pos = out
            .children
            .iter()
            .rposition(|n| matches!(n, Node::Element(e) if e.name == ne.name))
            .map(|p| p + 1)
            .unwrap_or_else(|| match out.children.last() {
                Some(Node::Text(t)) if t.trim().is_empty() => out.children.len() - 1,
                _ => out.children.len(),
            });
        out.children.insert(pos, Node::Element((*ne).clone()));
    }
    out
}

fn has_text(el: &Element) -> bool {
    el.children
        .iter()
        .any(|n| matches!(n, Node::Text(t) | Node::CData(t) if !t.trim().is_empty()))
}

fn element_from(start: &BytesStart) -> Result<Element, String> {
    let name = start.name().0.to_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = attr.key.0.to_owned();
        let raw: &str = &attr.value;
        attrs.push((key, unescape(raw)?));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

/// A document has one root: a second one is an error, not a replacement
/// (`<a/><b/>` kept only `<b/>`).
fn set_root(root: &mut Option<Element>, el: Element) -> Result<(), String> {
    if let Some(first) = root {
        return Err(format!(
            "more than one root element (<{}> and <{}>): give one element",
            first.name, el.name
        ));
    }
    *root = Some(el);
    Ok(())
}

fn unescape(raw: &str) -> Result<String, String> {
    quick_xml::escape::unescape(raw)
        .map(|c| c.into_owned())
        .map_err(|e| e.to_string())
}

/// Text made safe for XML with quick-xml's escapes: `<`, `>`, `&` and `\r`
/// (which a parser would read as `\n`); in an attribute also the quotes, and
/// `\n` and `\t`, which a conforming parser (libvirt's libxml2) turns into
/// spaces there. quick-xml keeps its attribute escaper to itself, so those
/// two are added here. The one XML escaper (scripts' `xml_escape` uses it).
pub fn escape(text: &str, attribute: bool) -> Cow<'_, str> {
    if !attribute {
        return quick_xml::escape::partial_escape(text);
    }
    let escaped = quick_xml::escape::escape(text);
    if !escaped.contains(['\n', '\t']) {
        return escaped;
    }
    Cow::Owned(escaped.replace('\n', "&#10;").replace('\t', "&#9;"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_keep_what_a_parser_would_change() {
        assert_eq!(
            escape("a<b>&'\"\r\n\t", false),
            "a&lt;b&gt;&amp;'\"&#13;\n\t"
        );
        assert_eq!(
            escape("a<b>&'\"\r\n\t", true),
            "a&lt;b&gt;&amp;&apos;&quot;&#13;&#10;&#9;"
        );
        assert!(matches!(escape("plain text", true), Cow::Borrowed(_)));
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth))
    }

    #[test]
    fn nesting_deeper_than_libxml2_allows_is_an_error_not_a_stack_overflow() {
        let ok = Element::parse(&nested(MAX_DEPTH)).unwrap();
        assert_eq!(Element::parse(&ok.to_xml()).unwrap(), ok);
        for depth in [MAX_DEPTH + 1, 100_000] {
            let err = Element::parse(&nested(depth)).unwrap_err();
            assert!(
                matches!(err, TreeError::TooDeep { max: MAX_DEPTH, .. }),
                "{err}"
            );
        }
        // Elements that close themselves add no depth of their own.
        let wide = format!("<r>{}</r>", "<a/>".repeat(100_000));
        assert_eq!(Element::parse(&wide).unwrap().elements().count(), 100_000);
    }

    #[test]
    fn attribute_whitespace_and_carriage_returns_survive_an_xml_parser() {
        let el = Element::new("host")
            .with_attr("name", "a\nb\tc\rd")
            .with_text("x\r\ny");
        let xml = el.to_xml();
        assert_eq!(xml, "<host name='a&#10;b&#9;c&#13;d'>x&#13;\ny</host>");
        assert_eq!(Element::parse(&xml).unwrap(), el);
    }

    #[test]
    fn a_second_root_is_an_error() {
        let e = Element::parse("<a/><b/>").unwrap_err().to_string();
        assert!(
            e.contains("more than one root element (<a> and <b>)"),
            "{e}"
        );
    }

    #[test]
    fn round_trip_keeps_everything() {
        let xml = "<network ipv6='yes'>\n  <name>lab</name>\n  <!-- keep me -->\n  <metadata><app:x xmlns:app='urn:a'>a &amp; b</app:x></metadata>\n  <unknown foo=\"it's\"><deep/></unknown>\n</network>";
        let tree = Element::parse(xml).unwrap();
        let again = Element::parse(&tree.to_xml()).unwrap();
        assert_eq!(tree, again);
        assert_eq!(tree.path(&["metadata", "app:x"]).unwrap().text(), "a & b");
        assert_eq!(tree.child("unknown").unwrap().attr("foo"), Some("it's"));
        assert!(tree.to_xml().contains("<!-- keep me -->"));
    }

    #[test]
    fn edits_keep_unmodelled_parts() {
        let mut tree = Element::parse("<a><b x='1'/><c/><b x='2'/></a>").unwrap();
        tree.child_mut("b").unwrap().set_attr("x", "9");
        tree.ensure_child("d").set_text("t");
        assert_eq!(tree.remove_elements(|e| e.name == "c"), 1);
        assert_eq!(tree.to_xml(), "<a><b x='9'/><b x='2'/><d>t</d></a>");
    }

    #[test]
    fn malformed_xml_is_an_error() {
        assert!(matches!(
            Element::parse("<a><b></a>"),
            Err(TreeError::Malformed { .. })
        ));
        assert!(matches!(
            Element::parse("<a>"),
            Err(TreeError::Malformed { .. })
        ));
        assert!(matches!(Element::parse(""), Err(TreeError::NoRoot)));
    }

    #[test]
    fn apply_edit_keeps_unmodelled_and_takes_edits() {
        let old = Element::parse(
            "<n a='1' x='keep'>\n <h mac='m1' extra='e1'/>\n <h mac='m2' extra='e2'/>\n <h mac='m3'/>\n <u/>\n <t>old</t>\n</n>",
        )
        .unwrap();
        // The model knows `a`, the `h` list with `mac`, and `t`'s text.
        let base = Element::parse("<n a='1'><h mac='m1'/><h mac='m2'/><h mac='m3'/><t>old</t></n>")
            .unwrap();
        let new = Element::parse("<n a='2'><h mac='m2'/><h mac='m3'/><h mac='m4'/><t>new</t></n>")
            .unwrap();
        let out = apply_edit(&old, &base, &new);
        assert_eq!(
            out.to_xml(),
            "<n a='2' x='keep'>\n \n <h mac='m2' extra='e2'/>\n <h mac='m3'/><h mac='m4'/>\n <u/>\n <t>new</t>\n</n>"
        );
        // No edit: nothing changes at all.
        assert_eq!(apply_edit(&old, &base, &base), old);
    }
}
