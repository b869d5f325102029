//! Every fixture parses into the event type its function expects, and (where it can run offline)
//! gets the expected decision.

use fleetguard_domain::provisioning::claim::HookRequest;
use fleetguard_domain::provisioning::jitr::JitrEvent;
use fleetguard_domain::records::delete::DeleteRecordEvent;
use fleetguard_tests::workspace_root;
use secrecy::ExposeSecret;

fn fixture(name: &str) -> serde_json::Value {
    let path = workspace_root().join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

#[test]
fn jitr_fixture_parses() {
    let e: JitrEvent = serde_json::from_value(fixture("jitr-registered.json")).unwrap();
    assert_eq!(e.certificate_status.as_deref(), Some("PENDING_ACTIVATION"));
    assert!(fleetguard_domain::model::CertificateId::parse(&e.certificate_id).is_ok());
}

#[test]
fn hook_fixture_parses() {
    let e: HookRequest = serde_json::from_value(fixture("pre-provisioning-hook.json")).unwrap();
    assert_eq!(
        e.parameters.get("SerialNumber").map(String::as_str),
        Some("SN0001")
    );
}

#[test]
fn delete_record_fixture_parses() {
    let e: DeleteRecordEvent = serde_json::from_value(fixture("delete-record.json")).unwrap();
    assert_eq!(
        (e.serial.as_str(), e.record_id.as_str()),
        ("SN0001", "rec-42")
    );
    assert!(fleetguard_domain::model::Principal::parse(&e.principal).is_ok());
}

#[test]
fn rotation_fixture_parses_and_carries_a_valid_csr() {
    let e: fleetguard_domain::lifecycle::rotation::RotationEvent =
        serde_json::from_value(fixture("rotate-certificate.json")).unwrap();
    assert_eq!((e.action.as_str(), e.serial.as_str()), ("rotate", "SN0001"));
    let csr =
        fleetguard_domain::lifecycle::csr::validate_csr(e.csr.as_deref().unwrap(), None).unwrap();
    assert_eq!(csr.subject_serial.as_deref(), Some("SN0001"));
    assert_eq!(
        fixture("scheduled-event.json")["detail-type"],
        "Scheduled Event"
    );
}

#[test]
fn authorizer_fixtures_parse() {
    use fleetguard_domain::authorization::authorizer::{AuthorizerRequest, Credential};
    let mqtt = AuthorizerRequest::parse(fixture("authorizer-mqtt.json")).unwrap();
    assert_eq!(mqtt.client_id(), Some("SN0001"));
    match mqtt.credential().unwrap() {
        Credential::Password { username, .. } => assert_eq!(username, "SN0001"),
        other => panic!("{other:?}"),
    }
    let http = AuthorizerRequest::parse(fixture("authorizer-http.json")).unwrap();
    assert!(matches!(http.credential().unwrap(), Credential::Jwt(_)));
}

#[test]
fn revoker_fixtures_parse() {
    use fleetguard_domain::lifecycle::revocation::{Command, TamperReport, ViolationEvent};
    use fleetguard_domain::records::delete::SecurityEvent;
    let e: SecurityEvent = serde_json::from_value(fixture("security-event.json")).unwrap();
    assert_eq!(e.kind, "cross_serial_attempt");
    let t: TamperReport = serde_json::from_value(fixture("tamper.json")).unwrap();
    assert_eq!(t.trigger, "tamper");
    let c: Command = serde_json::from_value(fixture("revoke-command.json")).unwrap();
    assert!(c.rollback);
    let sns = fixture("defender-violation-sns.json");
    let message = sns
        .pointer("/Records/0/Sns/Message")
        .and_then(|m| m.as_str())
        .unwrap();
    let v: ViolationEvent = serde_json::from_str(message).unwrap();
    assert_eq!(v.violation_event_type, "in-alarm");
}

#[test]
fn handshake_fixture_parses_and_names_its_certificate() {
    let e: fleetguard_domain::authorization::handshake::HandshakeRequest =
        serde_json::from_value(fixture("client-certificate-validation.json")).unwrap();
    assert_eq!(e.client_certificate_chain.len(), 1);
    let der = fleetguard_domain::authorization::handshake::leaf_der(&e.client_certificate_chain[0])
        .unwrap();
    assert_eq!(
        e.principal_id.as_deref(),
        Some(fleetguard_domain::model::CertificateId::of_der(&der).as_str())
    );
    assert!(e.server_name.is_some() && e.connection_metadata.is_some());
}

#[test]
fn x509_authorizer_fixture_carries_the_certificate() {
    let r = fleetguard_domain::authorization::authorizer::AuthorizerRequest::parse(fixture(
        "authorizer-x509.json",
    ))
    .unwrap();
    match r.credential().unwrap() {
        fleetguard_domain::authorization::authorizer::Credential::Certificate {
            pem,
            principal_id,
        } => {
            let der = fleetguard_domain::x509::pem_to_der(&pem).unwrap();
            assert_eq!(
                principal_id.as_deref(),
                Some(fleetguard_domain::model::CertificateId::of_der(&der).as_str())
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The authorizer fixtures are what AWS publishes as the event: they parse with AWS's own request
/// type (aws_lambda_events, which follows the custom-auth-lambda page) and both readings agree on
/// every credential. The functions keep their own type: it redacts credentials from `Debug` and
/// tolerates absent fields, so a malformed event is an audited refusal, not a parse failure.
#[test]
fn authorizer_fixtures_are_what_aws_documents() {
    use aws_lambda_events::event::iot::IoTCoreCustomAuthorizerRequest;
    use base64::Engine;
    use fleetguard_domain::authorization::authorizer::AuthorizerRequest;
    for name in [
        "authorizer-mqtt.json",
        "authorizer-http.json",
        "authorizer-x509.json",
    ] {
        let raw = fixture(name);
        let aws: IoTCoreCustomAuthorizerRequest =
            serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours: AuthorizerRequest = serde_json::from_value(raw).expect("ours");
        assert_eq!(
            aws.token.as_deref(),
            ours.token.as_ref().map(ExposeSecret::expose_secret),
            "{name}: token"
        );
        assert_eq!(
            Some(aws.signature_verified),
            ours.signature_verified,
            "{name}"
        );
        assert_eq!(Some(aws.protocols.clone()), ours.protocols, "{name}");
        assert_eq!(
            aws.connection_metadata.and_then(|c| c.id),
            ours.connection_metadata.and_then(|c| c.id),
            "{name}: connection id"
        );
        let (aws_data, our_data) = (
            aws.protocol_data.expect("protocolData"),
            ours.protocol_data.expect("protocolData"),
        );
        match (aws_data.mqtt, our_data.mqtt) {
            (Some(a), Some(o)) => {
                assert_eq!(a.client_id, o.client_id, "{name}: client id");
                assert_eq!(a.username, o.username, "{name}: username");
                let decoded = o
                    .password
                    .map(|p| {
                        base64::engine::general_purpose::STANDARD
                            .decode(p.expose_secret())
                            .expect("base64 password")
                    })
                    .unwrap_or_default();
                assert_eq!(a.password.0, decoded, "{name}: password");
            }
            (None, None) => {}
            other => panic!("{name}: mqtt {:?}", (other.0.is_some(), other.1.is_some())),
        }
        match (aws_data.tls, our_data.tls) {
            (Some(a), Some(o)) => {
                assert_eq!(a.server_name, o.server_name, "{name}: server name");
                assert_eq!(
                    a.x509_certificate_pem, o.x509_certificate_pem,
                    "{name}: certificate"
                );
                assert_eq!(a.principal_id, o.principal_id, "{name}: principal id");
            }
            (None, None) => {}
            other => panic!("{name}: tls {:?}", (other.0.is_some(), other.1.is_some())),
        }
        match (aws_data.http, our_data.http) {
            (Some(a), Some(o)) => {
                let ours = o.headers.unwrap_or_default();
                assert_eq!(a.headers.len(), ours.len(), "{name}: headers");
                for (k, v) in &ours {
                    assert_eq!(
                        a.headers.get(k.as_str()).and_then(|h| h.to_str().ok()),
                        Some(v.expose_secret()),
                        "{name}: header {k}"
                    );
                }
                assert_eq!(
                    a.query_string.as_deref(),
                    o.query_string.as_ref().map(ExposeSecret::expose_secret),
                    "{name}: query string"
                );
            }
            (None, None) => {}
            other => panic!("{name}: http {:?}", (other.0.is_some(), other.1.is_some())),
        }
    }
}
