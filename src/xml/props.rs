//! Round-trip properties (issue 19) over libvirt's conformance documents
//! (../shared/conformance/libvirt, see its SOURCE.md) with random edits:
//! writing a document and parsing it again gives the same tree, and a typed
//! network edit reads back as made, whatever the edited text holds.
use proptest::prelude::*;

use super::network::{DhcpHost, DnsTxt, NetworkDoc};
use super::tree::{Element, Node};

/// Every conformance document, from every folder.
fn all_documents() -> Vec<(String, String)> {
    [
        "networkxml2xmlin",
        "networkxml2xmlout",
        "networkxml2xmlupdateout",
        "qemuxml2xmloutdata",
        "domainsnapshotxml2xmlout",
        "storagepoolxml2xmlin",
        "storagevolxml2xmlin",
    ]
    .iter()
    .flat_map(|f| super::conformance_documents(f))
    .collect()
}

/// Text an edit may put anywhere: XML metacharacters, quotes, entities,
/// non-ASCII, tabs and newlines.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("'/><devices>".to_owned()),
        Just("a & b &amp; \"c\" 'd'".to_owned()),
        Just("]]> <!-- -->".to_owned()),
        Just("é漢字🦀".to_owned()),
        Just("tab\there\nnewline".to_owned()),
        "[a-zA-Z0-9 <>&'\"=/._:-]{0,20}",
    ]
}

/// An edit of a tree: an attribute set, or an element's text replaced.
#[derive(Debug, Clone)]
enum Edit {
    Attr(prop::sample::Index, String, String),
    Text(prop::sample::Index, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), "[a-z][a-zA-Z]{0,8}", text())
            .prop_map(|(i, k, v)| Edit::Attr(i, k, v)),
        (any::<prop::sample::Index>(), text()).prop_map(|(i, t)| Edit::Text(i, t)),
    ]
}

fn count(el: &Element) -> usize {
    1 + el.elements().map(count).sum::<usize>()
}

/// Call `f` on the `n`th element in document order; false if there is none.
fn at_nth(el: &mut Element, n: &mut usize, f: &dyn Fn(&mut Element)) -> bool {
    if *n == 0 {
        f(el);
        return true;
    }
    *n -= 1;
    el.elements_mut().any(|child| at_nth(child, n, f))
}

fn apply(tree: &mut Element, e: &Edit) {
    let total = count(tree);
    match e {
        Edit::Attr(i, k, v) => {
            at_nth(tree, &mut i.index(total), &|el| el.set_attr(k, v.clone()));
        }
        // Only elements without children get text, so mixed content stays as read.
        Edit::Text(i, t) => {
            at_nth(tree, &mut i.index(total), &|el| {
                if el.elements().next().is_none() {
                    el.set_text(t.clone())
                }
            });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_document_with_edits_writes_and_reads_back_the_same_tree(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 0..6),
    ) {
        let docs = all_documents();
        prop_assume!(!docs.is_empty());
        let (file, xml) = &docs[pick.index(docs.len())];
        let mut tree = Element::parse(xml).unwrap();
        for e in &edits {
            apply(&mut tree, e);
        }
        let written = tree.to_xml();
        let again = Element::parse(&written)
            .map_err(|e| TestCaseError::fail(format!("{file}: {e}\n{written}")))?;
        prop_assert_eq!(&again, &tree, "{}", file);
        prop_assert_eq!(again.to_xml(), written, "{}", file);
    }

    #[test]
    fn typed_network_edits_read_back_as_made(
        pick in any::<prop::sample::Index>(),
        name in "[a-zA-Z0-9<>&'\"_.-]{1,12}",
        txt in text(),
        host_name in text(),
        mtu in 68u32..65535,
    ) {
        let docs = super::conformance_documents("networkxml2xmlin");
        prop_assume!(!docs.is_empty());
        let (file, xml) = &docs[pick.index(docs.len())];
        let mut doc = NetworkDoc::parse(xml).unwrap();
        let mut def = doc.def().clone();
        def.name = name;
        def.mtu = Some(mtu);
        def.dns.get_or_insert_with(Default::default).txt.push(DnsTxt { name: "t".into(), value: txt });
        if let Some(ip) = def.ips.first_mut() {
            ip.dhcp.get_or_insert_with(Default::default).hosts.push(DhcpHost {
                mac: Some("52:54:00:00:00:99".into()),
                name: Some(host_name),
                ..DhcpHost::default()
            });
        }
        doc.set_def(def.clone());
        let written = doc.to_xml();
        let again = NetworkDoc::parse(&written)
            .map_err(|e| TestCaseError::fail(format!("{file}: {e}\n{written}")))?;
        prop_assert_eq!(again.def(), &def, "{}", file);
        prop_assert_eq!(again.tree(), doc.tree(), "{}", file);
    }
}

#[test]
fn the_conformance_documents_are_there() {
    // The properties above would pass vacuously without them.
    assert!(all_documents().len() > 100, "{}", all_documents().len());
    let mut tree = Element::parse("<a><b/></a>").unwrap();
    assert!(at_nth(&mut tree, &mut 1, &|el| el.set_text("x<")));
    assert_eq!(tree.to_xml(), "<a><b>x&lt;</b></a>");
    assert!(matches!(tree.children[0], Node::Element(_)));
    assert!(!at_nth(&mut tree, &mut 2, &|el| el.set_text("y")));
}
