//! The one reader of libvirt's own XML test documents, for the integration
//! tests and (through `#[path]` in src/testing.rs) the unit tests alike. They
//! are expected in ../shared/conformance/libvirt/FOLDER beside the repository
//! (see its SOURCE.md); a missing folder, an empty one or a missing file fails
//! the test: a test that reads no document proves nothing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

fn folder_path(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/libvirt")
        .join(folder)
}

/// Every document of `folder` as sorted (file name, text) pairs.
pub fn conformance_documents(folder: &str) -> Vec<(String, String)> {
    let dir = folder_path(folder);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "libvirt's conformance documents are expected in {}: {e}",
            dir.display()
        )
    });
    let mut docs: Vec<(String, String)> = entries
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "no documents in {}", dir.display());
    docs
}

/// One document by folder and file name.
pub fn conformance_document(folder: &str, file: &str) -> String {
    let path = folder_path(folder).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "libvirt's conformance document is expected at {}: {e}",
            path.display()
        )
    })
}

#[test]
#[should_panic(expected = "libvirt's conformance documents are expected in")]
fn a_missing_folder_fails_the_test() {
    conformance_documents("no-such-folder");
}
