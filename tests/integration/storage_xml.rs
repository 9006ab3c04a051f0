//! Conformance of the typed storage XML (src/xml/storage.rs) against libvirt's
//! own test documents, with libvirt's test driver as the oracle: each document
//! is defined as is and, under another name, as our parse -> serialise; the XML
//! libvirt then reports must be the same apart from name, uuid, key and the
//! volume path (which follow from the name).
use virt::connect::Connect;
use virt::storage_vol::StorageVol;
use virtscript::xml::storage::{PoolXml, VolumeXml};
use virtscript::xml::tree::{Element, Node};

/// libvirt's answer for our renamed definition, with the new name put back
/// (libvirt derives keys, volume paths and logical pools' source names and
/// targets from it), and without the uuid where the input had none.
fn comparable(xml: &str, renamed: Option<(&str, &str)>, keep_uuid: bool) -> Element {
    fn rename(el: &mut Element, from: &str, to: &str) {
        // The tree keeps text split around entity references: join it first.
        let mut children: Vec<Node> = Vec::new();
        for child in el.children.drain(..) {
            match (children.last_mut(), child) {
                (Some(Node::Text(prev)), Node::Text(t)) => prev.push_str(&t),
                (_, child) => children.push(child),
            }
        }
        el.children = children;
        for (_, v) in el.attrs.iter_mut() {
            if !from.is_empty() {
                *v = v.replace(from, to);
            }
        }
        for child in el.children.iter_mut() {
            match child {
                Node::Element(e) => rename(e, from, to),
                Node::Text(t) if !from.is_empty() => *t = t.replace(from, to),
                _ => {}
            }
        }
    }
    let mut el = Element::parse(xml).unwrap().normalized();
    let (from, to) = renamed.unwrap_or(("", ""));
    rename(&mut el, from, to);
    if !keep_uuid {
        el.remove_elements(|e| e.name == "uuid");
    }
    el
}

#[test]
fn pool_documents_agree_with_libvirt() {
    virt::error::clear_error_callback();
    let conn = Connect::open(Some("test:///default")).unwrap();
    let mut rejected = Vec::new();
    let mut compared = 0;
    for (file, xml) in crate::support::conformance_documents("storagepoolxml2xmlin") {
        let ours = PoolXml::parse(&xml).unwrap_or_else(|e| panic!("{file}: {e}"));
        let keep_uuid = ours.uuid.is_some();
        let mut renamed = ours.clone();
        let base = if ours.name.is_empty() {
            ours.source.name.clone().unwrap_or_default()
        } else {
            ours.name.clone()
        };
        renamed.name = format!("ours-{base}");
        let original = match conn.define_storage_pool_xml(&xml, 0) {
            Ok(pool) => {
                let out = pool.xml_desc(0).unwrap();
                pool.undefine().unwrap();
                out
            }
            Err(e) => {
                // Ours must be refused too: the parse must not "repair" a document.
                assert!(
                    conn.define_storage_pool_xml(&renamed.to_xml(), 0).is_err(),
                    "{file}: libvirt refused the original ({}) but accepted ours",
                    e.message()
                );
                rejected.push(file);
                continue;
            }
        };
        let pool = conn
            .define_storage_pool_xml(&renamed.to_xml(), 0)
            .unwrap_or_else(|e| panic!("{file}: ours refused: {}", e.message()));
        let again = pool.xml_desc(0).unwrap();
        pool.undefine().unwrap();
        assert_eq!(PoolXml::parse(&again).unwrap().name, renamed.name, "{file}");
        let original_name = PoolXml::parse(&original).unwrap().name;
        assert_eq!(
            comparable(&again, Some((&renamed.name, &original_name)), keep_uuid),
            comparable(&original, None, keep_uuid),
            "{file}: libvirt sees our serialisation differently\n--- original\n{original}\n--- ours\n{again}"
        );
        compared += 1;
    }
    // The test driver accepts every pool document here (a refusal would be
    // checked above to be a refusal of our serialisation too).
    assert_eq!(rejected, Vec::<String>::new(), "rejected pools");
    assert!(compared >= 12, "compared only {compared}");
}

#[test]
fn volume_documents_agree_with_libvirt() {
    virt::error::clear_error_callback();
    let conn = Connect::open(Some("test:///default")).unwrap();
    let pool = conn.lookup_storage_pool_by_name("default-pool").unwrap();
    let mut rejected = Vec::new();
    let mut compared = 0;
    for (file, xml) in crate::support::conformance_documents("storagevolxml2xmlin") {
        let ours = VolumeXml::parse(&xml).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut renamed = ours.clone();
        renamed.name = format!("ours-{}", ours.name);
        let original = match StorageVol::create_xml(&pool, &xml, 0) {
            Ok(vol) => {
                let out = vol.xml_desc(0).unwrap();
                vol.delete(0).unwrap();
                out
            }
            Err(e) => {
                assert!(
                    StorageVol::create_xml(&pool, &renamed.to_xml(), 0).is_err(),
                    "{file}: libvirt refused the original ({}) but accepted ours",
                    e.message()
                );
                rejected.push(file);
                continue;
            }
        };
        let vol = StorageVol::create_xml(&pool, &renamed.to_xml(), 0)
            .unwrap_or_else(|e| panic!("{file}: ours refused: {}", e.message()));
        let again = vol.xml_desc(0).unwrap();
        vol.delete(0).unwrap();
        assert_eq!(VolumeXml::parse(&again).unwrap().name, renamed.name);
        assert_eq!(
            comparable(&again, Some((&renamed.name, &ours.name)), true),
            comparable(&original, None, true),
            "{file}: libvirt sees our serialisation differently\n--- original\n{original}\n--- ours\n{again}"
        );
        compared += 1;
    }
    // Refused by the test driver's dir pool: luks and "none" are not file
    // formats it knows, and the nocapacity documents test a parse failure.
    assert_eq!(
        rejected,
        [
            "vol-luks-cipher.xml",
            "vol-luks.xml",
            "vol-partition.xml",
            "vol-qcow2-nocapacity-backing.xml",
            "vol-qcow2-nocapacity.xml"
        ],
        "rejected volumes"
    );
    assert!(compared >= 20, "compared only {compared}");
}
