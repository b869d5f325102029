//! Resource ARNs of the AWS IoT data plane and the action → resource-type table
//! (iot-action-resources: `client/`, `topic/`, `topicfilter/`, `thing/`).

use super::error::PolicyError;
use serde::{Deserialize, Serialize};

/// The resource types the data-plane actions are authorized against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// `client/<client id>`: `iot:Connect`.
    Client,
    /// `topic/<topic name>`: `iot:Publish`, `iot:Receive`, `iot:RetainPublish`, ...
    Topic,
    /// `topicfilter/<topic filter>`: `iot:Subscribe`.
    TopicFilter,
    /// `thing/<thing name>`: shadow and job-execution actions.
    Thing,
}

impl ResourceType {
    /// The ARN path prefix, e.g. `topicfilter`.
    pub fn prefix(self) -> &'static str {
        match self {
            ResourceType::Client => "client",
            ResourceType::Topic => "topic",
            ResourceType::TopicFilter => "topicfilter",
            ResourceType::Thing => "thing",
        }
    }

    /// All four types.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Client,
        ResourceType::Topic,
        ResourceType::TopicFilter,
        ResourceType::Thing,
    ];

    fn from_prefix(p: &str) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.prefix() == p)
    }
}

/// Data-plane actions whose resource type is known (iot-action-resources). Matching is
/// case-insensitive; actions not listed (e.g. `greengrass:*` or future IoT actions) are evaluated
/// without a resource-type check.
pub const KNOWN_ACTIONS: &[(&str, ResourceType)] = &[
    ("iot:Connect", ResourceType::Client),
    ("iot:Publish", ResourceType::Topic),
    ("iot:Receive", ResourceType::Topic),
    ("iot:RetainPublish", ResourceType::Topic),
    ("iot:GetRetainedMessage", ResourceType::Topic),
    ("iot:Subscribe", ResourceType::TopicFilter),
    ("iot:GetThingShadow", ResourceType::Thing),
    ("iot:UpdateThingShadow", ResourceType::Thing),
    ("iot:DeleteThingShadow", ResourceType::Thing),
    ("iot:ListNamedShadowsForThing", ResourceType::Thing),
    ("iot:DescribeJobExecution", ResourceType::Thing),
    ("iot:GetPendingJobExecutions", ResourceType::Thing),
    ("iot:UpdateJobExecution", ResourceType::Thing),
    ("iot:StartNextPendingJobExecution", ResourceType::Thing),
];

/// The resource type an action is authorized against, if the action is a known data-plane action.
pub fn resource_type_for_action(action: &str) -> Option<ResourceType> {
    KNOWN_ACTIONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(action))
        .map(|(_, t)| *t)
}

/// Region prefixes of the partitions other than `aws` (the AWS SDKs' partition table:
/// `^cn-…`, `^us-gov-…`, `^us-iso-…`, `^us-isob-…`, `^eu-isoe-…`, `^us-isof-…`, `^eusc-…`).
const PARTITIONS: &[(&str, &str)] = &[
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-iso-", "aws-iso"),
    ("us-isob-", "aws-iso-b"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
    ("eusc-", "aws-eusc"),
];

/// The partition a region belongs to: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`,
/// `aws-iso` for `us-iso-*`, `aws-iso-b` for `us-isob-*`, `aws-iso-e` for `eu-isoe-*`,
/// `aws-iso-f` for `us-isof-*`, `aws-eusc` for `eusc-*`, otherwise `aws`. An ARN with the wrong
/// partition matches nothing, so a hard-coded `arn:aws:` would silently deny in China or GovCloud.
pub fn partition_for_region(region: &str) -> &'static str {
    PARTITIONS
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, partition)| partition)
}

/// Builds `arn:<partition>:iot:<region>:<account>:<type>/<name>`, the partition derived from the
/// region ([`partition_for_region`]). The name is inserted verbatim: a client id of `+` gives
/// `client/+`.
pub fn iot_arn(region: &str, account: &str, rtype: ResourceType, name: &str) -> String {
    format!(
        "arn:{}:iot:{region}:{account}:{}/{name}",
        partition_for_region(region),
        rtype.prefix()
    )
}

/// ARN of the client id (for `iot:Connect`).
pub fn client_arn(region: &str, account: &str, client_id: &str) -> String {
    iot_arn(region, account, ResourceType::Client, client_id)
}

/// ARN of a topic name (for `iot:Publish`, `iot:Receive`, `iot:RetainPublish`).
pub fn topic_arn(region: &str, account: &str, topic: &str) -> String {
    iot_arn(region, account, ResourceType::Topic, topic)
}

/// ARN of a topic filter (for `iot:Subscribe`).
pub fn topic_filter_arn(region: &str, account: &str, filter: &str) -> String {
    iot_arn(region, account, ResourceType::TopicFilter, filter)
}

/// ARN of a thing (for the shadow and job actions).
pub fn thing_arn(region: &str, account: &str, thing: &str) -> String {
    iot_arn(region, account, ResourceType::Thing, thing)
}

/// Turns a bare client id / topic / topic filter / thing name into the ARN of the resource type
/// the action is authorized against. Unknown actions are an error (the type is not known).
pub fn arn_for_action(
    action: &str,
    region: &str,
    account: &str,
    name: &str,
) -> Result<String, PolicyError> {
    let rtype = resource_type_for_action(action).ok_or_else(|| {
        PolicyError::InvalidRequest(format!(
            "cannot build a resource ARN for action {action:?}: its resource type is unknown; pass a full ARN"
        ))
    })?;
    Ok(iot_arn(region, account, rtype, name))
}

/// A request resource ARN split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedArn {
    /// `aws`, `aws-cn`, ...
    pub partition: String,
    /// `iot`.
    pub service: String,
    /// Region.
    pub region: String,
    /// Account id.
    pub account: String,
    /// The resource type, when the resource part starts with a known `<type>/`.
    pub resource_type: Option<ResourceType>,
    /// Everything after `<type>/` (or the whole resource part when the type is unknown).
    pub name: String,
}

/// Parses a request ARN (`arn:<partition>:<service>:<region>:<account>:<resource>`).
pub fn parse_arn(arn: &str) -> Result<ParsedArn, PolicyError> {
    let bad =
        |why: &str| PolicyError::InvalidRequest(format!("resource {arn:?} is not an ARN: {why}"));
    let mut parts = arn.splitn(6, ':');
    let head = parts.next().unwrap_or_default();
    if head != "arn" {
        return Err(bad("it must start with \"arn:\""));
    }
    let partition = parts.next().ok_or_else(|| bad("missing partition"))?;
    let service = parts.next().ok_or_else(|| bad("missing service"))?;
    let region = parts.next().ok_or_else(|| bad("missing region"))?;
    let account = parts.next().ok_or_else(|| bad("missing account"))?;
    let resource = parts.next().ok_or_else(|| bad("missing resource"))?;
    if partition.is_empty() || service.is_empty() {
        return Err(bad("empty partition or service"));
    }
    let (resource_type, name) = match resource.split_once('/') {
        Some((t, n)) => match ResourceType::from_prefix(t) {
            Some(rt) => (Some(rt), n.to_owned()),
            None => (None, resource.to_owned()),
        },
        None => (None, resource.to_owned()),
    };
    Ok(ParsedArn {
        partition: partition.to_owned(),
        service: service.to_owned(),
        region: region.to_owned(),
        account: account.to_owned(),
        resource_type,
        name,
    })
}

/// The resource type named by a policy `Resource` pattern when its type segment is literal
/// (`...:topic/...`); `None` when the type part is itself wildcarded (`*`, `...:*`, `...:top*`).
pub(crate) fn pattern_resource_types(raw: &str) -> Vec<ResourceType> {
    // The resource part is after the fifth ':'; a wildcard before that point may swallow colons.
    let mut colons = 0;
    let mut start = None;
    for (i, c) in raw.char_indices() {
        if c == '*' || c == '?' {
            return ResourceType::ALL.to_vec();
        }
        if c == ':' {
            colons += 1;
            if colons == 5 {
                start = Some(i + 1);
                break;
            }
        }
    }
    let Some(start) = start else {
        return ResourceType::ALL.to_vec();
    };
    let resource = &raw[start..];
    // Type segment: characters up to '/', stopping early at a wildcard or variable.
    let mut ty = String::new();
    for c in resource.chars() {
        match c {
            '/' => {
                return ResourceType::from_prefix(&ty).into_iter().collect();
            }
            '*' | '?' | '$' => return ResourceType::ALL.to_vec(),
            other => ty.push(other),
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_build_the_right_type() {
        assert_eq!(
            arn_for_action("iot:Subscribe", "us-east-1", "1", "a/+/b"),
            Ok("arn:aws:iot:us-east-1:1:topicfilter/a/+/b".to_owned())
        );
        assert_eq!(
            arn_for_action("IOT:CONNECT", "r", "1", "c"),
            Ok("arn:aws:iot:r:1:client/c".to_owned())
        );
        assert!(arn_for_action("iot:Whatever", "r", "1", "c").is_err());
        let p = parse_arn("arn:aws:iot:us-east-1:1:topic/a/b:c").expect("arn");
        assert_eq!(p.resource_type, Some(ResourceType::Topic));
        assert_eq!(p.name, "a/b:c");
        assert!(parse_arn("topic/a").is_err());
        assert!(parse_arn("arn:aws:iot").is_err());
    }

    #[test]
    fn partition_follows_the_region() {
        for (region, partition) in [
            ("us-east-1", "aws"),
            ("eu-west-1", "aws"),
            ("", "aws"),
            ("cn-north-1", "aws-cn"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-gov-east-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("eu-isoe-west-1", "aws-iso-e"),
            ("us-isof-south-1", "aws-iso-f"),
            ("eusc-de-east-1", "aws-eusc"),
        ] {
            assert_eq!(partition_for_region(region), partition, "{region}");
        }
        assert_eq!(
            topic_arn("cn-north-1", "1", "P/SN1/x"),
            "arn:aws-cn:iot:cn-north-1:1:topic/P/SN1/x"
        );
        assert_eq!(
            client_arn("us-gov-west-1", "1", "SN1"),
            "arn:aws-us-gov:iot:us-gov-west-1:1:client/SN1"
        );
        assert_eq!(
            arn_for_action("iot:Subscribe", "us-isob-east-1", "1", "a/#"),
            Ok("arn:aws-iso-b:iot:us-isob-east-1:1:topicfilter/a/#".to_owned())
        );
    }

    #[test]
    fn pattern_types() {
        assert_eq!(
            pattern_resource_types("arn:aws:iot:us-east-1:1:topic/x"),
            vec![ResourceType::Topic]
        );
        assert_eq!(pattern_resource_types("*").len(), 4);
        assert_eq!(pattern_resource_types("arn:aws:iot:*:*:topic/x").len(), 4);
        assert_eq!(pattern_resource_types("arn:aws:iot:r:1:to*").len(), 4);
        assert!(pattern_resource_types("arn:aws:iot:r:1:job/x").is_empty());
    }
}
