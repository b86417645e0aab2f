//! "Did you mean": the known name closest to a typo.

/// The known name closest to `word` by edit distance, if it is close enough to be a likely
/// typo (at most 2 edits, or a third of the name's length for long names).
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_near_names_only() {
        let names = ["host", "haproxy", "rabbitmq", "mongodb"];
        assert_eq!(closest("hosst", names), Some("host"));
        assert_eq!(closest("rabitmq", names), Some("rabbitmq"));
        assert_eq!(closest("zzzzzzzz", names), None);
        assert_eq!(
            closest("pagerdutty", ["pagerduty", "slack"]),
            Some("pagerduty")
        );
    }
}
