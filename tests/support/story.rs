//! The fleetguard story, step by step, through the real functions served by `cargo lambda watch`
//! (the Lambda runtime API) against the emulator. The demo prints it; the end-to-end test runs it
//! and asserts every check. Setup that is not a Lambda in AWS either (registering the CA, importing
//! the allow-list, adding an operator) is done the way `fleetctl` does it.

use crate::local_lambda::LocalLambda;
use crate::{
    hook_request, jitr_event, mqtt_connect, now_ms, unique, FactoryKey, Stack, TestCa, TestIdp,
};
use fleetguard_domain::authorization::authorizer::{
    operator_principal, validate_response, AuthorizerResponse, Identity, IdentityStore,
};
use fleetguard_domain::model::CertificateStatus;
use fleetguard_domain::model::{RecordId, Serial};
use fleetguard_domain::ports::{AuditLog, Registry};
use iot_policy::{evaluate, ConnectionContext, Request};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://login.fleetguard.test";
pub const AUDIENCE: &str = "fleetguard";
/// The demo batch's claim certificate id.
const DEMO_CLAIM: &str = "c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1c1a1";

/// One expectation of the story and whether it held.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: String,
    pub ok: bool,
}

/// Tells a story: its steps and what it says are printed if `print` (the demo), its checks kept
/// either way (the tests assert them).
pub struct Narrator {
    print: bool,
    pub checks: Vec<Check>,
}

impl Narrator {
    pub fn new(print: bool) -> Self {
        Narrator {
            print,
            checks: Vec::new(),
        }
    }

    pub fn step(&self, n: u32, text: &str) {
        if self.print {
            println!("\n[{n}] {text}");
        }
    }

    pub fn say(&self, text: impl AsRef<str>) {
        if self.print {
            println!("    {}", text.as_ref());
        }
    }

    pub fn check(&mut self, what: impl Into<String>, ok: bool) {
        let what = what.into();
        if self.print {
            println!("    {} {what}", if ok { "ok  " } else { "FAIL" });
        }
        self.checks.push(Check { what, ok });
    }

    /// The checks that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }
}

/// Runs the story, told by its [`Narrator`].
pub struct Story<'a> {
    stack: &'a Stack,
    lambda: &'a LocalLambda,
    narrator: Narrator,
    /// The device CA, registered before the functions start, as before `sam deploy` (its id is the
    /// template's `CaCertificateId`).
    ca: Option<(TestCa, String)>,
}

impl std::ops::Deref for Story<'_> {
    type Target = Narrator;
    fn deref(&self) -> &Narrator {
        &self.narrator
    }
}

impl std::ops::DerefMut for Story<'_> {
    fn deref_mut(&mut self) -> &mut Narrator {
        &mut self.narrator
    }
}

type StepResult = Result<(), String>;

impl<'a> Story<'a> {
    /// `ca`: the device CA and its id, from [`Story::register_ca`] before the functions started.
    pub fn new(
        stack: &'a Stack,
        lambda: &'a LocalLambda,
        ca: (TestCa, String),
        print: bool,
    ) -> Self {
        Story {
            stack,
            lambda,
            narrator: Narrator::new(print),
            ca: Some(ca),
        }
    }

    /// The story's device CA, registered with AWS IoT (auto-registration on) before the stack is
    /// deployed: the template's `CaCertificateId` names it.
    pub async fn register_ca(stack: &Stack) -> (TestCa, String) {
        let ca = TestCa::new("fleetguard demo CA");
        let id = stack.register_ca(&ca).await;
        (ca, id)
    }

    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
        self.say(format!(
            "-> invoke {function} (Lambda runtime API, cargo lambda)"
        ));
        let out = self.lambda.invoke(function, payload).await?;
        self.say(format!("<- {out}"));
        Ok(out)
    }

    /// The whole story; an `Err` is a step that could not run at all (a function error).
    pub async fn run(&mut self, idp: &TestIdp) -> StepResult {
        let stack = self.stack;
        self.step(
            1,
            "Our device CA, registered with AWS IoT (auto-registration on) before the deploy",
        );
        let (ca, ca_id) = self.ca.take().ok_or("the story runs once")?;
        self.say(format!(
            "CA certificate id {ca_id} (the template's CaCertificateId)"
        ));

        self.step(
            2,
            "Import the manufacturing allow-list (fleetctl devices import)",
        );
        let good = Serial::parse(&unique("SN")).map_err(|e| e.to_string())?;
        let other = Serial::parse(&unique("SN")).map_err(|e| e.to_string())?;
        for s in [&good, &other] {
            stack
                .registry()
                .import_serial(s)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.say(format!("allow-listed {good} and {other}"));

        self.step(
            3,
            "A device connects for the first time (JITR event -> provisioner)",
        );
        let cert = stack.auto_register(&ca.issue(good.as_str()), &ca).await;
        let d = self
            .invoke("provisioner", &jitr_event(&cert, &ca_id))
            .await?;
        self.check(
            "provisioner accepted the allow-listed device",
            d["outcome"] == "accepted",
        );
        let status = stack.certificate_status(&cert).await;
        self.check(
            format!("its certificate is ACTIVE (is {status})"),
            status == CertificateStatus::Active,
        );
        self.check("its thing exists", stack.thing_exists(good.as_str()).await);
        let other_cert = stack.auto_register(&ca.issue(other.as_str()), &ca).await;
        let d = self
            .invoke("provisioner", &jitr_event(&other_cert, &ca_id))
            .await?;
        self.check("a second device is provisioned", d["outcome"] == "accepted");

        self.step(
            4,
            "A device whose serial is not on the allow-list connects: refused",
        );
        let stranger = unique("SN");
        let cert2 = stack.auto_register(&ca.issue(&stranger), &ca).await;
        let d = self
            .invoke("provisioner", &jitr_event(&cert2, &ca_id))
            .await?;
        self.check(
            "provisioner refused the stranger",
            d["outcome"] == "rejected",
        );
        let status = stack.certificate_status(&cert2).await;
        self.check(
            format!("the stranger's certificate is REVOKED (is {status})"),
            status == CertificateStatus::Revoked,
        );

        self.step(
            5,
            "A device provisions by claim: the pre-provisioning hook checks its factory key",
        );
        let claimed = Serial::parse(&unique("SN")).map_err(|e| e.to_string())?;
        let key = FactoryKey::new();
        // fleetctl devices import, with the attestation_key column from manufacturing.
        stack
            .import_enrolled(&claimed, &key.public_b64(), "", "")
            .await;
        let aws = TestCa::new("AWS IoT issuer (demo)");
        stack.register_issuer_ca(&aws).await;
        let client = format!("claim.{claimed}");
        let (stolen_pem, _) = stack.issue_by_aws(&aws, claimed.as_str()).await;
        let d = self
            .invoke(
                "provisioning-hook",
                &hook_request(
                    DEMO_CLAIM,
                    &stolen_pem,
                    Some(&client),
                    json!({ "SerialNumber": claimed.as_str() }),
                ),
            )
            .await?;
        self.check(
            "a stranger holding the batch's claim, naming the serial in its CSR, is refused",
            d["allowProvisioning"] == false,
        );
        let (pem, claimed_cert) = stack.issue_by_aws(&aws, "whatever-the-csr-said").await;
        let d = self
            .invoke(
                "provisioning-hook",
                &hook_request(
                    DEMO_CLAIM,
                    &pem,
                    Some(&client),
                    key.prove_now(claimed.as_str(), &claimed_cert),
                ),
            )
            .await?;
        self.check(
            "the device signing with its factory key is allowed; the hook names the thing",
            d["allowProvisioning"] == true
                && d["parameterOverrides"]["SerialNumber"] == claimed.as_str(),
        );
        // What AWS's RegisterThing does once the hook allowed.
        stack.register_thing(&claimed, &claimed_cert).await;
        let status = stack.certificate_status(&claimed_cert).await;
        self.check(
            format!("its certificate is ACTIVE (is {status})"),
            status == CertificateStatus::Active,
        );

        self.step(
            6,
            "An operator logs in over MQTT through the custom authorizer",
        );
        let store = stack.services.identities();
        let sub = unique("alice");
        store
            .put_identity(&Identity::operator(
                ISSUER,
                &sub,
                "alice",
                vec![good.clone(), other.clone()],
            ))
            .await
            .map_err(|e| e.to_string())?;
        let principal = operator_principal(ISSUER, &sub);
        let token = idp.token(&sub, 3600);
        let request = mqtt_connect(
            "alice?SDK=Rust&Version=1.0",
            token.as_bytes(),
            principal.as_str(),
        );
        self.say(format!(
            "operator alice, client id {principal} (token not shown)"
        ));
        let r = self.lambda.invoke("authorizer", &request).await?;
        self.check(
            "the authorizer authenticated the operator",
            r["isAuthenticated"] == true,
        );
        self.check(
            "the response is within AWS's limits",
            serde_json::from_value::<AuthorizerResponse>(r.clone())
                .is_ok_and(|resp| validate_response(&resp).is_ok()),
        );
        let docs: Vec<String> = r["policyDocuments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let ctx = ConnectionContext {
            client_id: Some(principal.to_string()),
            principal_id: Some(principal.to_string()),
            ..ConnectionContext::default()
        }
        .in_account(crate::REGION, "123456789012");
        let may = |topic: &str| {
            let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
            Request::for_target("iot:Publish", topic, &ctx)
                .ok()
                .and_then(|req| evaluate(&docs, &req, &ctx).ok())
                .is_some_and(|d| d.is_allowed())
        };
        self.say(format!(
            "{} policy document(s), scoped to {good} and {other}",
            docs.len()
        ));
        self.check(
            format!("the policy lets the operator delete on P/{good}/deleterecords/..."),
            may(&format!("P/{good}/deleterecords/rec-1")),
        );
        self.check(
            "and not on a serial it was not granted",
            !may(&format!("P/{stranger}/deleterecords/rec-1")),
        );
        let bad = mqtt_connect("alice", b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.x", "x");
        let r = self.lambda.invoke("authorizer", &bad).await?;
        self.check("a forged token is denied", r["isAuthenticated"] == false);

        self.step(7, "Each device has records");
        stack.seed_record(&good, "rec-1").await;
        let victim = stack.seed_record(&other, "rec-9").await;
        self.say(format!("{good}/rec-1 and {other}/rec-9"));

        self.step(
            8,
            "The device deletes its own record (soft delete, versioned, audited)",
        );
        let d = self
            .invoke(
                "delete-record",
                &crate::delete_event(good.as_str(), "rec-1", &cert, now_ms()),
            )
            .await?;
        self.check(
            "delete-record accepted the owner's delete",
            d["outcome"] == "accepted",
        );
        let rid = RecordId::parse("rec-1").map_err(|e| e.to_string())?;
        let record = stack.record(&good, &rid).await.ok_or("record missing")?;
        self.check(
            format!(
                "{good}/rec-1 is soft-deleted, not gone ({})",
                fleetguard_domain::records::delete::describe(&record)
            ),
            record.is_deleted(),
        );

        self.step(
            9,
            "The device is hijacked: it tries another serial's record",
        );
        let d = self
            .invoke(
                "delete-record",
                &crate::delete_event(other.as_str(), "rec-9", &cert, now_ms()),
            )
            .await?;
        self.check(
            "delete-record refused the cross-serial delete",
            d["outcome"] == "rejected",
        );
        self.check("and raised a security event", d["security_event"] == true);
        let record = stack
            .record(&other, &victim)
            .await
            .ok_or("record missing")?;
        self.check(format!("{other}/rec-9 is untouched"), !record.is_deleted());
        let events = stack.published_on(&stack.security_topic);
        self.check(
            format!("the event is on {}", stack.security_topic),
            !events.is_empty(),
        );

        self.step(
            10,
            "The tripwire: the security rule delivers the event to the revoker, which quarantines",
        );
        let event = events.last().cloned().ok_or("no security event")?;
        let r = self
            .invoke("revoker", &crate::security_rule_event(&event))
            .await?;
        self.check(
            "the revoker quarantined the hijacked device",
            r.as_array()
                .is_some_and(|a| a.iter().any(|x| x["outcome"] == "accepted")),
        );
        let status = stack.certificate_status(&cert).await;
        self.check(
            format!("its certificate is INACTIVE (is {status})"),
            status == CertificateStatus::Inactive,
        );
        self.check(
            "its MQTT connection was closed",
            stack
                .emulator
                .disconnects()
                .iter()
                .any(|c| c == good.as_str()),
        );

        self.step(
            11,
            "An operator revokes it for good and rolls back what it deleted",
        );
        let cmd = json!({"action": "revoke", "serial": good.as_str(), "rollback": true,
            "reason": "key extracted", "actor": "alice"});
        let r = self.invoke("revoker", &cmd).await?;
        let restored: u64 = r
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["restored"].as_u64()).sum())
            .unwrap_or(0);
        self.check(
            format!("the rollback restored {restored} record(s)"),
            restored >= 1,
        );
        let record = stack.record(&good, &rid).await.ok_or("record missing")?;
        self.check(format!("{good}/rec-1 is live again"), !record.is_deleted());
        let status = stack.certificate_status(&cert).await;
        self.check(
            format!("the certificate is REVOKED (is {status})"),
            status == CertificateStatus::Revoked,
        );
        let r = self
            .invoke(
                "delete-record",
                &crate::delete_event(good.as_str(), "rec-1", &cert, now_ms()),
            )
            .await?;
        self.check(
            "the revoked certificate can delete nothing",
            r["outcome"] == "rejected",
        );

        self.step(
            12,
            "The second device rotates its certificate (CSR -> signed by the fleet CA in KMS -> confirm)",
        );
        // Its factory certificate is far from expiry: a device rotates on its own only inside the
        // expiry window, earlier when an operator asks.
        self.say(format!("fleetctl devices request-rotation {other}"));
        stack.request_rotation(&other).await;
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let csr = fleetguard_testkit::pki::csr_pem(&key, other.as_str());
        let r = self
            .invoke(
                "rotator",
                &Stack::rotation_event("rotate", &other, &other_cert, Some(&csr), now_ms()),
            )
            .await?;
        self.check(
            "the rotator issued a certificate",
            r["reason"] == "certificate_issued",
        );
        let reply = stack
            .published_on(&format!("P/{other}/certificates/rotate/accepted"))
            .pop()
            .unwrap_or_default();
        let next = reply["certificate_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let chained = fleetguard_domain::x509::validate_device_certificate(
            reply["certificate_pem"].as_str().unwrap_or_default(),
            &stack.fleet_ca.ca_certificate_pem,
            time::OffsetDateTime::now_utc(),
        );
        self.check(
            format!("it came back on .../rotate/accepted, signed by the KMS CA for {other}"),
            chained.is_ok_and(|c| c.serial == other),
        );
        let status = stack.certificate_status(&next).await;
        self.check(
            format!("the new certificate is ACTIVE (is {status})"),
            status == CertificateStatus::Active,
        );
        let r = self
            .invoke(
                "rotator",
                &Stack::rotation_event("confirm", &other, &next, None, now_ms()),
            )
            .await?;
        self.check(
            "confirmed from a connection with the new certificate: the serial is bound to it",
            r["reason"] == "rotation_confirmed",
        );
        let d = self
            .invoke(
                "delete-record",
                &crate::delete_event(other.as_str(), "rec-9", &other_cert, now_ms()),
            )
            .await?;
        self.check(
            "the old certificate (in its grace period) can delete nothing",
            d["outcome"] == "rejected",
        );
        let d = self
            .invoke(
                "delete-record",
                &crate::delete_event(other.as_str(), "rec-9", &next, now_ms()),
            )
            .await?;
        self.check(
            "the new certificate deletes its own record",
            d["outcome"] == "accepted",
        );
        let w = self
            .invoke(
                "certificate-watch",
                &json!({"detail-type": "Scheduled Event"}),
            )
            .await?;
        self.say(format!(
            "certificate-watch: {} retired, {} device certificates expire within {} days",
            w["sweep"]["retired"],
            w["expiry"]["devices"].as_array().map_or(0, Vec::len),
            w["expiry"]["device_window_days"]
        ));

        self.step(13, "The audit trail of the device (newest first)");
        let mut entries = stack
            .audit()
            .for_serial(good.as_str(), 50)
            .await
            .map_err(|e| e.to_string())?;
        entries.sort_by(|a, b| b.at.cmp(&a.at));
        for e in &entries {
            self.say(format!(
                "{}  {:<12} {:<14} {:<9} {}",
                e.at,
                e.actor,
                e.action,
                e.outcome.as_str(),
                e.reason.as_str()
            ));
        }
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        self.check(
            "the trail holds the provisioning, the deletes, the quarantine, the revocation and the restore",
            ["provision", "delete_record", "quarantine", "revoke", "restore_record"]
                .iter()
                .all(|a| actions.contains(a)),
        );
        Ok(())
    }
}
