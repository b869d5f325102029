//! MQTT topic names and filters as AWS IoT Core takes them.

/// Longest topic AWS IoT accepts, bytes (AWS IoT Core quotas: topic size 256 bytes).
pub const MAX_TOPIC_BYTES: usize = 256;
/// Most forward slashes in a topic or filter (quotas: 7 in the name, so 8 levels).
pub const MAX_LEVELS: usize = 8;

/// A topic a client may publish to: no wildcards, within AWS's limits, not empty.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_BYTES
        && !topic.contains(['+', '#', '\0'])
        && topic.split('/').count() <= MAX_LEVELS
}

/// Topics only AWS IoT publishes on (lifecycle and registration events, fleet provisioning's
/// replies): a client publishing there is refused.
pub fn reserved_for_aws(topic: &str) -> bool {
    topic.starts_with("$aws/events/") || crate::claim::reserved(topic)
}

/// A filter a client may subscribe to: `+` alone in a level, `#` alone and last.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_TOPIC_BYTES || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.len() <= MAX_LEVELS
        && levels.iter().enumerate().all(|(i, l)| match *l {
            "+" => true,
            "#" => i == levels.len() - 1,
            l => !l.contains(['+', '#']),
        })
}

/// Whether `filter` matches `topic` (MQTT 3.1.1 section 4.7; `$`-topics only by explicit filters).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mqtt_says() {
        assert!(matches("P/SN1/#", "P/SN1/deleterecords/r1/accepted"));
        assert!(matches("P/SN1/#", "P/SN1"));
        assert!(matches("P/+/x", "P/SN1/x"));
        assert!(!matches("P/+/x", "P/SN1/y"));
        assert!(!matches("P/SN1/x", "P/SN1/x/y"));
        assert!(!matches("#", "$aws/events/presence/connected/SN1"));
        assert!(matches(
            "$aws/events/presence/connected/+",
            "$aws/events/presence/connected/SN1"
        ));
        assert!(
            valid_filter("P/+/deleterecords/#") && !valid_filter("P/a#") && !valid_filter("P/#/x")
        );
        assert!(valid_topic("P/SN1/x") && !valid_topic("P/+/x") && !valid_topic(""));
        assert!(!valid_topic(&"a/".repeat(9)));
    }
}
