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
pub mod domain_hostdev;
pub mod domcaps;
pub mod install;
pub mod metadata;
pub mod network;
pub mod osinfo;
#[cfg(test)]
mod props;
pub mod snapshot;
pub mod storage;
pub mod tree;

/// libvirt's own XML test documents, for the unit tests of the documents.
#[cfg(test)]
pub(crate) use crate::testing::{conformance_document, conformance_documents};

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
