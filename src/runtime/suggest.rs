//! "Did you mean ...?": the closest known name to a misspelt one.

/// The candidate closest to `word`, when it is close enough to be a typo:
/// at most a third of the word's letters differ (a swap counts once).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    // Ties go to the word sharing the longer start (`vcpu`: `vcpus`, not `cpu`).
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by(|(da, a), (db, b)| {
            da.cmp(db)
                .then(strsim::jaro_winkler(word, b).total_cmp(&strsim::jaro_winkler(word, a)))
                .then(a.cmp(b))
        })
        .map(|(_, c)| c)
}

/// The problem text for an unknown key in an option map: the closest key
/// when there is one, else every key.
pub fn unknown_key(what: &str, key: &str, known: &[&str]) -> String {
    let place = if what.is_empty() {
        String::new()
    } else {
        format!(" in {what}")
    };
    match closest(key, known.iter().copied()) {
        Some(best) => format!("unknown key{place}; did you mean '{best}'?"),
        None => format!("unknown key{place} (known: {})", known.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word_and_strangers_nothing() {
        let names = ["network", "networks", "pool", "vm", "node_info"];
        assert_eq!(closest("netwrok", names), Some("network"));
        assert_eq!(closest("nodeinfo", names), Some("node_info"));
        assert_eq!(closest("pol", names), Some("pool"));
        assert_eq!(closest("vcpu", ["cpu", "vcpus"]), Some("vcpus"));
        assert_eq!(closest("reboot", names), None);
        assert_eq!(
            unknown_key("vm", "memroy", &["name", "memory", "vcpus"]),
            "unknown key in vm; did you mean 'memory'?"
        );
        assert_eq!(
            unknown_key("vm", "colour", &["name", "memory"]),
            "unknown key in vm (known: name, memory)"
        );
    }
}
