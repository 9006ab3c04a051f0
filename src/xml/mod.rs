//! libvirt's XML documents: parse, write and edit them losslessly; no libvirt
//! calls, no Rhai, no script specs (those live beside their script object in
//! `api/`). Two shapes, chosen per document:
//! - a serde model where virtscript models the document whole and scripts
//!   read and edit it as a map (`network`: a network's `config` is its XML);
//! - a typed view over the lossless element tree ([`tree`]) where virtscript
//!   models part of a large document and must keep the rest (`domain`,
//!   `storage`, `snapshot`, `clone`, `metadata`).
pub mod clone;
pub mod domain;
pub mod metadata;
pub mod network;
#[cfg(test)]
mod props;
pub mod snapshot;
pub mod storage;
pub mod tree;

/// libvirt's own XML test documents (../shared/conformance/libvirt/FOLDER) as
/// sorted (file name, text) pairs; a missing or empty folder fails the test
/// (a test that reads no document proves nothing).
#[cfg(test)]
pub(crate) fn conformance_documents(folder: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/libvirt")
        .join(folder);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("libvirt's conformance documents: {}: {e}", dir.display()));
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

/// One conformance document by folder and file name; a missing one fails the test.
#[cfg(test)]
pub(crate) fn conformance_document(folder: &str, file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/libvirt")
        .join(folder)
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A bad value in a document or a spec: which field, what value, what is wrong.
/// The bindings turn it into a script error naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem} (got {value:?})")]
pub struct FieldError {
    pub field: String,
    pub value: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, value: impl ToString, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            value: value.to_string(),
            problem: problem.into(),
        }
    }
}
