//! The topic rules of `infra/template.yaml`, run as AWS IoT's rules engine runs them: the SQL the
//! template uses (`SELECT` of `*`, payload fields by name, `'literal' AS x`, `topic(n)`,
//! `principal()`, `clientid()`, `timestamp()`, each `AS` a name; `FROM '<topic filter>'`; `WHERE
//! <field> = '<literal>'`), and the
//! Lambda action invoked through the local Lambda runtime (cargo lambda), answered asynchronously.
//! SQL outside that subset is a start-up error, never silently ignored.

use crate::lambda::Lambda;
use crate::topics;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// One SELECT item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Star,
    Field { name: String, alias: String },
    Literal { value: String, alias: String },
    Topic { level: Option<usize>, alias: String },
    Principal { alias: String },
    ClientId { alias: String },
    Timestamp { alias: String },
}

/// A topic rule with a Lambda action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub from: String,
    /// The function's binary (the template's `BuildProperties.Binary`), as the local runtime names it.
    pub function: String,
    select: Vec<Item>,
    /// `WHERE <field> = '<literal>'`: the payload's field must be that string.
    condition: Option<(String, String)>,
}

/// Who published: what `principal()` and `clientid()` return.
pub struct Publisher<'a> {
    pub principal: &'a str,
    pub client_id: &'a str,
}

/// The publisher of the events AWS IoT raises itself (lifecycle, registration).
pub const AWS_IOT: Publisher<'static> = Publisher {
    principal: "iot.amazonaws.com",
    client_id: "n/a",
};

/// The function AWS IoT calls while a client connects without a certificate, named in the template:
/// the custom authorizer (`AWS::IoT::Authorizer`), as the local runtime names it (its binary). (The
/// handshake validators belong to the endpoints: [`crate::endpoints`].)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectFunctions {
    pub authorizer: Option<String>,
}

/// The function `arn` names (`{"Fn::GetAtt": [<Function>, Arn]}`, unresolved) as the local runtime
/// names it: its `BuildProperties.Binary`. `None` for anything else.
pub(crate) fn function_binary(resources: &Map<String, Value>, arn: &Value) -> Option<String> {
    arn["Fn::GetAtt"][0]
        .as_str()
        .and_then(|f| resources.get(f))
        .and_then(|f| f["Metadata"]["BuildProperties"]["Binary"].as_str())
        .map(str::to_owned)
}

/// The [`ConnectFunctions`] of a SAM template (its text).
pub fn connect_functions(template: &str) -> Result<ConnectFunctions, String> {
    let t: Value = serde_norway::from_str(template).map_err(|e| format!("template: {e}"))?;
    let resources = t["Resources"].as_object().ok_or("template: no Resources")?;
    let mut found = ConnectFunctions::default();
    for r in resources.values() {
        if r["Type"] == "AWS::IoT::Authorizer" {
            found.authorizer =
                function_binary(resources, &r["Properties"]["AuthorizerFunctionArn"]);
        }
    }
    Ok(found)
}

fn identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Splits a SELECT list on the commas outside quotes.
fn split_items(list: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in list.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_owned()).collect()
}

fn parse_item(text: &str) -> Result<Item, String> {
    if text == "*" {
        return Ok(Item::Star);
    }
    let unsupported = || format!("unsupported SQL select item {text:?}");
    let (expr, alias) = match text.rsplit_once(" AS ") {
        Some((e, a)) if identifier(a.trim()) => (e.trim(), a.trim().to_owned()),
        Some(_) => return Err(unsupported()),
        None => (text, String::new()),
    };
    if identifier(expr) {
        let alias = if alias.is_empty() {
            expr.to_owned()
        } else {
            alias
        };
        return Ok(Item::Field {
            name: expr.to_owned(),
            alias,
        });
    }
    if alias.is_empty() {
        return Err(unsupported());
    }
    if let Some(lit) = expr.strip_prefix('\'').and_then(|e| e.strip_suffix('\'')) {
        if !lit.contains('\'') {
            return Ok(Item::Literal {
                value: lit.to_owned(),
                alias,
            });
        }
    }
    match expr.replace(' ', "").as_str() {
        "principal()" => Ok(Item::Principal { alias }),
        "clientid()" => Ok(Item::ClientId { alias }),
        "timestamp()" => Ok(Item::Timestamp { alias }),
        "topic()" => Ok(Item::Topic { level: None, alias }),
        t => match t.strip_prefix("topic(").and_then(|r| r.strip_suffix(')')) {
            Some(n) => n
                .parse()
                .ok()
                .filter(|n: &usize| *n >= 1)
                .map(|n| Item::Topic {
                    level: Some(n),
                    alias,
                })
                .ok_or_else(unsupported),
            None => Err(unsupported()),
        },
    }
}

/// A rule's SELECT items, FROM filter and WHERE condition.
type Parsed = (Vec<Item>, String, Option<(String, String)>);

/// Parses `SELECT <items> FROM '<filter>' [WHERE <field> = '<literal>']`.
fn parse_sql(sql: &str) -> Result<Parsed, String> {
    let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = sql
        .strip_prefix("SELECT ")
        .ok_or_else(|| format!("unsupported SQL (no SELECT): {sql:?}"))?;
    let (list, from) = rest
        .rsplit_once(" FROM ")
        .ok_or_else(|| format!("unsupported SQL (no FROM): {sql:?}"))?;
    let (from, condition) = match from.split_once(" WHERE ") {
        Some((f, w)) => (f, Some(parse_condition(w)?)),
        None => (from, None),
    };
    let filter = from
        .trim()
        .strip_prefix('\'')
        .and_then(|f| f.strip_suffix('\''))
        .filter(|f| topics::valid_filter(f))
        .ok_or_else(|| format!("unsupported SQL FROM (a bad filter?): {from:?}"))?;
    let items = split_items(list)
        .iter()
        .map(|i| parse_item(i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((items, filter.to_owned(), condition))
}

/// The one WHERE form the template uses: `<field> = '<literal>'`.
fn parse_condition(text: &str) -> Result<(String, String), String> {
    let unsupported = || format!("unsupported SQL WHERE {text:?}");
    let (field, literal) = text.split_once('=').ok_or_else(unsupported)?;
    let (field, literal) = (field.trim(), literal.trim());
    let literal = literal
        .strip_prefix('\'')
        .and_then(|l| l.strip_suffix('\''))
        .filter(|l| !l.contains('\''))
        .ok_or_else(unsupported)?;
    if !identifier(field) {
        return Err(unsupported());
    }
    Ok((field.to_owned(), literal.to_owned()))
}

/// `Fn::Sub` with the given parameters; an unknown `${...}` is an error.
fn substitute(text: &str, params: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| format!("unterminated ${{ in {text:?}"))?;
        let name = &rest[i + 2..i + end];
        let value = params
            .get(name)
            .ok_or_else(|| format!("no value for ${{{name}}} in {text:?}"))?;
        out.push_str(value);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The topic rules of a SAM template (its text), with `Fn::Sub` resolved from `params` (e.g.
/// `AWS::StackName`, `CaCertificateId`).
pub fn load(template: &str, params: &HashMap<String, String>) -> Result<Vec<Rule>, String> {
    let t: Value = serde_norway::from_str(template).map_err(|e| format!("template: {e}"))?;
    let resources = t["Resources"].as_object().ok_or("template: no Resources")?;
    let mut rules = Vec::new();
    for (name, r) in resources {
        if r["Type"] != "AWS::IoT::TopicRule" {
            continue;
        }
        let payload = &r["Properties"]["TopicRulePayload"];
        let sql = match &payload["Sql"] {
            Value::String(s) => s.clone(),
            v => match v["Fn::Sub"].as_str() {
                Some(s) => substitute(s, params)?,
                None => return Err(format!("{name}: Sql is neither a string nor Fn::Sub")),
            },
        };
        let (select, from, condition) = parse_sql(&sql).map_err(|e| format!("{name}: {e}"))?;
        let actions = payload["Actions"].as_array().cloned().unwrap_or_default();
        for action in actions {
            let function = function_binary(resources, &action["Lambda"]["FunctionArn"])
                .ok_or_else(|| {
                    format!("{name}: only Lambda actions of a function with BuildProperties.Binary are supported: {action}")
                })?;
            rules.push(Rule {
                name: name.clone(),
                from: from.clone(),
                function: function.to_owned(),
                select: select.clone(),
                condition: condition.clone(),
            });
        }
    }
    Ok(rules)
}

impl Rule {
    /// The event the rule sends for a message on `topic`, or `None` if its FROM does not match.
    /// Payload fields come only from a JSON object payload; an absent value is left out, as AWS
    /// leaves out undefined values.
    pub fn event(
        &self,
        topic: &str,
        payload: &[u8],
        from: &Publisher<'_>,
        now_ms: i64,
    ) -> Option<Value> {
        if !topics::matches(&self.from, topic) {
            return None;
        }
        let body: Option<Map<String, Value>> = serde_json::from_slice(payload).ok();
        if let Some((field, literal)) = &self.condition {
            let value = body
                .as_ref()
                .and_then(|b| b.get(field))
                .and_then(Value::as_str);
            if value != Some(literal.as_str()) {
                return None;
            }
        }
        let mut out = Map::new();
        for item in &self.select {
            match item {
                Item::Star => {
                    if let Some(b) = &body {
                        out.extend(b.clone());
                    }
                }
                Item::Field { name, alias } => {
                    if let Some(v) = body.as_ref().and_then(|b| b.get(name)) {
                        out.insert(alias.clone(), v.clone());
                    }
                }
                Item::Literal { value, alias } => {
                    out.insert(alias.clone(), Value::String(value.clone()));
                }
                Item::Topic { level: None, alias } => {
                    out.insert(alias.clone(), Value::String(topic.to_owned()));
                }
                Item::Topic {
                    level: Some(n),
                    alias,
                } => {
                    if let Some(l) = topic.split('/').nth(n - 1) {
                        out.insert(alias.clone(), Value::String(l.to_owned()));
                    }
                }
                Item::Principal { alias } => {
                    out.insert(alias.clone(), Value::String(from.principal.to_owned()));
                }
                Item::ClientId { alias } => {
                    out.insert(alias.clone(), Value::String(from.client_id.to_owned()));
                }
                Item::Timestamp { alias } => {
                    out.insert(alias.clone(), Value::from(now_ms));
                }
            }
        }
        Some(Value::Object(out))
    }
}

/// How Lambda treats a function's failed asynchronous invocations (its `EventInvokeConfig`).
#[derive(Clone, Debug)]
pub struct AsyncInvoke {
    /// Retries after the first attempt (Lambda's default: 2).
    pub max_retries: u32,
    /// The function's ARN, as the destination record names it.
    pub function_arn: String,
    /// Its on-failure destination; `None`: the event is dropped after the last attempt (logged).
    pub on_failure: Option<fleetguard_aws::failed_events::FailedEvents>,
}

/// The rules and where their Lambda actions go.
#[derive(Default)]
pub struct Rules {
    pub rules: Vec<Rule>,
    /// The local Lambda runtime (`cargo lambda watch`) the actions go to.
    pub lambda: Arc<Lambda>,
    /// Each function's asynchronous invoke configuration, by binary (unset: two retries, dropped).
    async_invoke: std::sync::RwLock<HashMap<String, AsyncInvoke>>,
    /// Lambda waits about a minute before the first retry and two before the second; here retry n
    /// waits n times this (one second unless set).
    retry_delay: std::sync::RwLock<Option<Duration>>,
}

impl Rules {
    pub fn new(rules: Vec<Rule>, lambda: Arc<Lambda>) -> Self {
        Self {
            rules,
            lambda,
            ..Self::default()
        }
    }

    /// How `function` (a binary) is invoked asynchronously: retries and on-failure destination.
    pub fn set_async_invoke(&self, function: &str, config: AsyncInvoke) {
        self.async_invoke
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(function.to_owned(), config);
    }

    /// Each of `functions`' asynchronous invoke configuration (the template's, resolved for `stack`),
    /// its destination queue looked up with `sdk` (Lambda's own view) and written with the function's
    /// role, as Lambda writes it.
    pub async fn configure_async_invokes(
        &self,
        functions: &[fleetguard_aws::template::LocalFunction],
        sdk: &fleetguard_aws::SdkConfig,
        stack: &str,
        region: &str,
        account: &str,
    ) -> Result<(), String> {
        for f in functions {
            let Some(of) = &f.on_failure else { continue };
            let on_failure = match &of.queue_arn {
                Some(arn) => {
                    let role = fleetguard_aws::local::role_config(sdk, &f.binary, stack);
                    let queue =
                        fleetguard_aws::failed_events::FailedEvents::for_arn(sdk, &role, arn)
                            .await
                            .map_err(|e| format!("{}: on-failure queue {arn}: {e}", f.binary))?;
                    Some(queue)
                }
                None => None,
            };
            self.set_async_invoke(
                &f.binary,
                AsyncInvoke {
                    max_retries: of.max_retries,
                    function_arn: format!(
                        "arn:aws:lambda:{region}:{account}:function:{}",
                        f.binary
                    ),
                    on_failure,
                },
            );
        }
        Ok(())
    }

    /// The wait before the first retry (the second waits twice as long).
    pub fn set_retry_delay(&self, delay: Duration) {
        *self.retry_delay.write().unwrap_or_else(|e| e.into_inner()) = Some(delay);
    }

    /// Where the Lambda actions (and the gateway's authorizer calls) go, e.g. `http://127.0.0.1:9000`.
    pub fn set_lambda_endpoint(&self, endpoint: &str) {
        self.lambda.set_endpoint(endpoint);
    }

    /// Runs every rule matching `topic`: each Lambda action invoked in the background (the rules
    /// engine invokes asynchronously; a failure is logged as the error action would record it).
    pub fn on_publish(&self, topic: &str, payload: &[u8], from: &Publisher<'_>) {
        if self.lambda.endpoint().is_none() {
            return;
        }
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        for rule in &self.rules {
            let Some(event) = rule.event(topic, payload, from, now_ms) else {
                continue;
            };
            let config = self
                .async_invoke
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&rule.function)
                .cloned();
            let delay = self
                .retry_delay
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(Duration::from_secs(1));
            let (name, function, lambda) = (
                rule.name.clone(),
                rule.function.clone(),
                self.lambda.clone(),
            );
            tokio::spawn(async move {
                invoke_async(&lambda, &name, &function, &event, config, delay).await;
            });
        }
    }
}

/// One asynchronous invocation as Lambda runs it: the first attempt and up to `max_retries` more,
/// then Lambda's destination record to the on-failure queue (or, without one, the event is dropped:
/// logged, as the issue that added the queue found it).
async fn invoke_async(
    lambda: &Lambda,
    rule: &str,
    function: &str,
    event: &Value,
    config: Option<AsyncInvoke>,
    delay: Duration,
) {
    let retries = config.as_ref().map_or(2, |c| c.max_retries);
    let mut last_error = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(delay * attempt).await;
        }
        match lambda
            .invoke(function, event, Duration::from_secs(300))
            .await
        {
            Ok(_) => {
                tracing::info!(rule = %rule, attempt = attempt + 1, "rule action invoked");
                return;
            }
            Err(e) => {
                tracing::warn!(rule = %rule, attempt = attempt + 1, error = %e, "invocation failed");
                last_error = e;
            }
        }
    }
    let Some((arn, queue)) = config.and_then(|c| c.on_failure.map(|q| (c.function_arn, q))) else {
        tracing::error!(rule = %rule, function = %function, "every attempt failed; no on-failure destination: event dropped");
        return;
    };
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let record = fleetguard_aws::failed_events::destination_record(
        &arn,
        &uuid::Uuid::new_v4().to_string(),
        &now,
        retries + 1,
        event,
        &last_error,
    );
    match queue.send(&record).await {
        Ok(()) => {
            tracing::warn!(rule = %rule, function = %function, "every attempt failed: event sent to the on-failure destination")
        }
        Err(e) => {
            tracing::error!(rule = %rule, function = %function, error = %e, "every attempt failed and the destination refused the record")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_s_rules_load_and_build_their_events() {
        let template = include_str!("../../infra/template.yaml");
        let params = HashMap::from([
            ("AWS::StackName".to_owned(), "fg".to_owned()),
            ("CaCertificateId".to_owned(), "ca1".to_owned()),
        ]);
        let rules = load(template, &params).unwrap();
        let delete = rules.iter().find(|r| r.name == "DeleteRecordRule").unwrap();
        assert_eq!(
            (delete.from.as_str(), delete.function.as_str()),
            ("P/+/deleterecords/+", "delete-record")
        );
        let who = Publisher {
            principal: "abc",
            client_id: "SN1",
        };
        let e = delete
            .event(
                "P/SN1/deleterecords/r1",
                br#"{"request_id":"q","principal":"forged","x":1}"#,
                &who,
                7,
            )
            .unwrap();
        assert_eq!(
            e,
            serde_json::json!({"serial": "SN1", "record_id": "r1", "principal": "abc",
                "client_id": "SN1", "received_at": 7, "request_id": "q"})
        );
        assert!(delete.event("P/SN1/other", b"{}", &who, 7).is_none());
        let tamper = rules.iter().find(|r| r.name == "TamperRule").unwrap();
        assert_eq!(
            tamper.event("P/SN1/tamper", b"x", &who, 7).unwrap()["trigger"],
            "tamper"
        );
        assert!(rules
            .iter()
            .any(|r| r.from == "fleetguard/fg/security/violations"));
        assert!(rules
            .iter()
            .any(|r| r.from == "$aws/events/certificates/registered/ca1"));
        assert!(rules.iter().any(|r| r.function == "rotator"));
        assert_eq!(
            connect_functions(template).unwrap(),
            ConnectFunctions {
                authorizer: Some("authorizer".into()),
            }
        );
        // The ways in and the claim template, resolved for stack "fg".
        let stack = fleetguard_aws::template::LocalStack::new("fg", "us-east-1", "123456789012");
        let endpoints = crate::endpoints::load(template, &stack).unwrap();
        let seen: Vec<_> = endpoints
            .iter()
            .map(|e| {
                (
                    e.configuration.as_str(),
                    e.authentication,
                    e.validator.as_deref(),
                )
            })
            .collect();
        use crate::endpoints::Authentication::*;
        assert_eq!(
            seen,
            [
                ("fg-devices", AwsX509, Some("handshake-validator")),
                ("fg-x509auth", CustomAuthX509, Some("handshake-validator"))
            ]
        );
        let off = stack.clone().parameter("HandshakeValidation", "disabled");
        assert!(crate::endpoints::load(template, &off).unwrap().is_empty());
        let templates = crate::claim::load(template, &stack).unwrap();
        assert_eq!(templates.len(), 1);
        assert_eq!(
            (templates[0].name.as_str(), templates[0].hook.as_deref()),
            ("fg-claim", Some("provisioning-hook"))
        );
        assert_eq!(
            templates[0].body["Resources"]["policy"]["Properties"]["PolicyName"],
            "fg-fleet-device"
        );
    }

    #[test]
    fn sql_outside_the_subset_is_refused() {
        for sql in [
            "SELECT * FROM 'a/b' WHERE x > 1",
            "SELECT upper(x) AS y FROM 'a'",
            "SELECT a + b AS c FROM 'a'",
            "DELETE FROM 'a'",
            "SELECT * FROM a",
            "SELECT topic(0) AS t FROM 'a'",
        ] {
            assert!(parse_sql(sql).is_err(), "{sql}");
        }
    }
}
