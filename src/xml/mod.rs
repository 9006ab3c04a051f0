//! Typed libvirt XML documents: plain serde data, no libvirt calls, no Rhai.
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
/// sorted (file name, text) pairs; none when the folder is not there.
#[cfg(test)]
pub(crate) fn conformance_documents(folder: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/libvirt")
        .join(folder);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut docs: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    docs.sort();
    docs
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
