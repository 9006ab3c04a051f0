//! The text of every script and module loaded in a session, by the name the
//! engine reports in positions, so diagnostics can quote the offending line.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Default)]
pub struct SourceMap(Arc<RwLock<HashMap<String, Arc<str>>>>);

impl SourceMap {
    pub fn insert(&self, name: impl Into<String>, text: impl Into<Arc<str>>) {
        self.0.write().unwrap().insert(name.into(), text.into());
    }

    pub fn get(&self, name: &str) -> Option<Arc<str>> {
        self.0.read().unwrap().get(name).cloned()
    }

    /// One line of a source (1-based), without its line ending.
    pub fn line(&self, name: &str, line: usize) -> Option<String> {
        let text = self.get(name)?;
        text.lines().nth(line.checked_sub(1)?).map(str::to_owned)
    }
}
