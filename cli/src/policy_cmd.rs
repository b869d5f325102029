//! `fleetctl policy ...`: offline AWS IoT policy linting and evaluation.
//!
//! * `fleetctl policy check <policy.json>... [--fail-on low|medium|high|critical] [--json]`:
//!   lint; exit 0 when clean, 1 when a finding is at or above `--fail-on` (default medium),
//!   2 on error (unreadable file, malformed policy, unknown condition operator...).
//! * `fleetctl policy eval <policy.json>... --action iot:Publish --resource P/SN1/x
//!   --client-id SN1 --thing-name SN1 [--thing-attached] [--cert-subject CommonName=SN1 ...]
//!   [--cert-issuer K=V ...] [--source-ip IP] [--region R --account A] [--context ctx.json]
//!   [--json]`: decide and explain; exit 0 allow, 1 deny, 2 error. `--resource` is a full ARN or
//!   a bare client id / topic / topic filter / thing name, turned into the ARN the action needs.
//!   `--context` is a JSON `ConnectionContext` (snake_case fields); flags override it.
//!
//! A policy file argument of `-` reads standard input.

use iot_policy::{self as policy, ConnectionContext, Request, Severity};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The `policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Lint IoT policy documents (Device Defender-style audit, offline).
    Check {
        /// Policy documents (JSON); `-` for standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Lowest severity that makes the command fail (exit 1).
        #[arg(long, default_value = "medium", value_parser = parse_severity)]
        fail_on: Severity,
        /// Print findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a request against IoT policy documents and explain the decision.
    Eval(Box<EvalArgs>),
}

/// Arguments of `policy eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Policy documents (JSON), all attached to the same principal; `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Action, e.g. iot:Connect, iot:Publish, iot:Subscribe, iot:Receive.
    #[arg(long)]
    pub action: String,
    /// Full resource ARN, or a bare client id / topic / topic filter / thing name.
    #[arg(long)]
    pub resource: String,
    /// MQTT client id as sent.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Thing name of the connection.
    #[arg(long)]
    pub thing_name: Option<String>,
    /// The thing is attached to the connecting principal.
    #[arg(long)]
    pub thing_attached: bool,
    /// Thing type name.
    #[arg(long)]
    pub thing_type: Option<String>,
    /// Thing attribute NAME=VALUE (repeatable).
    #[arg(long = "thing-attr", value_name = "NAME=VALUE")]
    pub thing_attrs: Vec<String>,
    /// Certificate subject field FIELD=VALUE (repeatable; repeat a field for several values).
    #[arg(long = "cert-subject", value_name = "FIELD=VALUE")]
    pub cert_subject: Vec<String>,
    /// Certificate issuer field FIELD=VALUE (repeatable).
    #[arg(long = "cert-issuer", value_name = "FIELD=VALUE")]
    pub cert_issuer: Vec<String>,
    /// Certificate serial number.
    #[arg(long)]
    pub cert_serial: Option<String>,
    /// Source IP address of the connection.
    #[arg(long)]
    pub source_ip: Option<std::net::IpAddr>,
    /// Custom-authorizer principal id (informational).
    #[arg(long)]
    pub principal_id: Option<String>,
    /// Extra condition key KEY=VALUE (repeatable, e.g. iot:ConnectAttributes=LastWill).
    #[arg(long = "key", value_name = "KEY=VALUE")]
    pub extra_keys: Vec<String>,
    /// Region for building ARNs from bare names (default: context file, then AWS_REGION, then
    /// us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Account for building ARNs from bare names (default: context file, then the placeholder
    /// 123456789012, which only policies with an account wildcard match).
    #[arg(long)]
    pub account: Option<String>,
    /// Connection context as JSON (fields of iot_policy::ConnectionContext).
    #[arg(long)]
    pub context: Option<PathBuf>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Writes to stdout, ignoring a closed pipe (`fleetctl policy check ... | head`).
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

fn read_file(path: &Path) -> Result<String, String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("reading standard input: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn read_all(files: &[PathBuf]) -> Result<Vec<String>, String> {
    files.iter().map(|f| read_file(f)).collect()
}

fn kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Runs a `policy` subcommand; returns the process exit code (0 ok/allow, 1 findings/deny,
/// 2 error).
pub fn run(cmd: PolicyCmd) -> u8 {
    let result = match cmd {
        PolicyCmd::Check {
            files,
            fail_on,
            json,
        } => check(&files, fail_on, json),
        PolicyCmd::Eval(args) => run_eval(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn check(files: &[PathBuf], fail_on: Severity, json: bool) -> Result<u8, String> {
    let texts = read_all(files)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let findings = policy::lint(&refs).map_err(|e| describe_doc_error(&e.to_string(), files))?;
    let failing = findings.iter().filter(|f| f.severity >= fail_on).count();
    if json {
        let out = serde_json::json!({
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "fail_on": fail_on,
            "failed": failing > 0,
            "findings": findings,
        });
        emit(&format!("{out:#}\n"));
    } else {
        for f in &findings {
            let file = files
                .get(f.document)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            emit(&format!("{file}: {f}\n"));
        }
        emit(&format!(
            "{} finding(s), {failing} at or above {fail_on}
",
            findings.len()
        ));
    }
    Ok(u8::from(failing > 0))
}

fn describe_doc_error(msg: &str, files: &[PathBuf]) -> String {
    let names: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, f)| format!("document {i} = {}", f.display()))
        .collect();
    format!("{msg} ({})", names.join(", "))
}

fn run_eval(args: EvalArgs) -> Result<u8, String> {
    let EvalArgs {
        files,
        action,
        resource,
        client_id,
        thing_name,
        thing_attached,
        thing_type,
        thing_attrs,
        cert_subject,
        cert_issuer,
        cert_serial,
        source_ip,
        principal_id,
        extra_keys,
        region,
        account,
        context,
        json,
    } = args;
    let mut ctx: ConnectionContext = match &context {
        Some(p) => serde_json::from_str(&read_file(p)?)
            .map_err(|e| format!("context {}: {e}", p.display()))?,
        None => ConnectionContext::default(),
    };
    if client_id.is_some() {
        ctx.client_id = client_id;
    }
    if thing_name.is_some() {
        ctx.thing_name = thing_name;
    }
    if thing_attached {
        ctx.thing_attached = true;
    }
    if thing_type.is_some() {
        ctx.thing_type_name = thing_type;
    }
    for a in &thing_attrs {
        let (k, v) = kv(a)?;
        ctx.thing_attributes.insert(k, v);
    }
    for s in &cert_subject {
        let (k, v) = kv(s)?;
        ctx.cert_subject.entry(k).or_default().push(v);
    }
    for s in &cert_issuer {
        let (k, v) = kv(s)?;
        ctx.cert_issuer.entry(k).or_default().push(v);
    }
    for s in &extra_keys {
        let (k, v) = kv(s)?;
        ctx.extra_keys.entry(k).or_default().push(v);
    }
    if cert_serial.is_some() {
        ctx.cert_serial_number = cert_serial;
    }
    if source_ip.is_some() {
        ctx.source_ip = source_ip;
    }
    if principal_id.is_some() {
        ctx.principal_id = principal_id;
    }
    if let Some(r) = region {
        ctx.region = r;
    } else if ctx.region.is_empty() {
        ctx.region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    }
    if let Some(a) = account {
        ctx.account = a;
    } else if ctx.account.is_empty() {
        ctx.account = "123456789012".to_owned();
    }
    if !resource.starts_with("arn:") && (ctx.region.is_empty() || ctx.account.is_empty()) {
        return Err(format!(
            "--resource {resource:?} is not an ARN: pass --region and --account (or a full ARN)"
        ));
    }
    let request =
        Request::from_arn_or_target(&action, &resource, &ctx).map_err(|e| e.to_string())?;
    let texts = read_all(&files)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let decision = policy::evaluate(&refs, &request, &ctx)
        .map_err(|e| describe_doc_error(&e.to_string(), &files))?;
    if json {
        let out = serde_json::json!({ "decision": decision, "allowed": decision.is_allowed() });
        emit(&format!("{out:#}\n"));
    } else {
        emit(&decision.to_string());
        if let Some(p) = &ctx.principal_id {
            emit(&format!("  principal id: {p}\n"));
        }
    }
    Ok(if decision.is_allowed() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct TestCli {
        #[command(subcommand)]
        cmd: PolicyCmd,
    }

    const FLEET: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
 {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/P/${iot:Connection.Thing.ThingName}/*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}}]}"#;
    const BAD: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;

    fn write(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("fleetctl-policy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    }

    fn code(args: &[&str]) -> u8 {
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        run(TestCli::try_parse_from(argv).expect("args").cmd)
    }

    #[test]
    fn check_exit_codes() {
        let fleet = write("fleet.json", FLEET);
        let bad = write("bad.json", BAD);
        let broken = write("broken.json", "{");
        assert_eq!(code(&["check", &fleet]), 0);
        assert_eq!(code(&["check", &bad]), 1);
        assert_eq!(code(&["check", &bad, "--fail-on", "critical", "--json"]), 1);
        assert_eq!(code(&["check", &fleet, "--fail-on", "low"]), 0);
        assert_eq!(code(&["check", &broken]), 2);
        assert_eq!(code(&["check", "/nonexistent/policy.json"]), 2);
    }

    #[test]
    fn eval_exit_codes() {
        let fleet = write("fleet2.json", FLEET);
        let base = [
            "eval",
            &fleet,
            "--client-id",
            "SN1",
            "--thing-name",
            "SN1",
            "--region",
            "us-east-1",
            "--account",
            "123456789012",
        ];
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = base.to_vec();
            v.extend_from_slice(extra);
            code(&v)
        };
        let publish = [
            "--action",
            "iot:Publish",
            "--resource",
            "P/SN1/deleterecords/1",
        ];
        assert_eq!(with(&[&publish[..], &["--thing-attached"]].concat()), 0);
        assert_eq!(with(&publish), 1, "not attached");
        assert_eq!(
            with(&[
                "--thing-attached",
                "--action",
                "iot:Publish",
                "--resource",
                "P/SN2/x",
                "--json"
            ]),
            1
        );
        assert_eq!(
            with(&[
                "--thing-attached",
                "--action",
                "iot:Connect",
                "--resource",
                "arn:aws:iot:us-east-1:123456789012:client/SN1"
            ]),
            0
        );
        assert_eq!(
            with(&[
                "--action",
                "iot:Subscribe",
                "--resource",
                "arn:aws:iot:us-east-1:123456789012:topic/x"
            ]),
            2,
            "wrong resource type"
        );
        assert_eq!(
            with(&[
                "--action",
                "iot:Publish",
                "--resource",
                "x",
                "--cert-subject",
                "nonsense"
            ]),
            2
        );
        let ctx = write(
            "ctx.json",
            r#"{"client_id":"SN1","thing_name":"SN1","thing_attached":true,"region":"us-east-1","account":"123456789012"}"#,
        );
        assert_eq!(
            code(&[
                "eval",
                &fleet,
                "--context",
                &ctx,
                "--action",
                "iot:Publish",
                "--resource",
                "P/SN1/a"
            ]),
            0
        );
        let bad_ctx = write("badctx.json", r#"{"client":"SN1"}"#);
        assert_eq!(
            code(&[
                "eval",
                &fleet,
                "--context",
                &bad_ctx,
                "--action",
                "iot:Publish",
                "--resource",
                "P/SN1/a"
            ]),
            2
        );
    }
}
