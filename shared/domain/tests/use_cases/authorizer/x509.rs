//! X.509 custom authentication.

use super::*;

fn x509_request(pem: &str, principal: Option<&str>, client_id: &str) -> Value {
    let mut tls = json!({"serverName": "example-ats.iot.us-east-1.amazonaws.com",
        "x509CertificatePem": pem});
    if let Some(p) = principal {
        tls["principalId"] = json!(p);
    }
    json!({"signatureVerified": false, "protocols": ["tls", "mqtt"],
        "protocolData": {"tls": tls, "mqtt": {"clientId": client_id}},
        "connectionMetadata": {"id": "c0ffee"}})
}

fn device_certificate(serial: &str) -> (String, fleetguard_domain::model::CertificateId) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(rcgen::DnType::CommonName, serial);
    let pem = p
        .self_signed(&rcgen::KeyPair::generate().expect("key"))
        .expect("cert")
        .pem();
    let id = fleetguard_domain::model::CertificateId::of_der(
        &fleetguard_domain::x509::pem_to_der(&pem).expect("der"),
    );
    (pem, id)
}

#[tokio::test]
async fn an_x509_connection_is_the_certificates_and_the_registry_decides() {
    let fx = fx();
    let (pem, id) = device_certificate("SN1");
    let serial = Serial::parse("SN1").expect("serial");
    let put = |denied, held| {
        fx.store.certificates.lock().expect("lock").insert(
            id.clone(),
            fleetguard_domain::model::CertificateRecord {
                certificate_id: id.clone(),
                serial: serial.clone(),
                denied,
                held,
                updated_at: fleetguard_domain::model::Timestamp::now(),
            },
        );
    };
    assert_deny(
        &run(&fx, x509_request(&pem, Some(id.as_str()), "SN1")).await,
        Reason::UnknownIdentity,
    );
    put(false, false);
    let d = run(&fx, x509_request(&pem, Some(id.as_str()), "SN1")).await;
    assert_eq!(d.reason, Reason::Authorized, "{d:?}");
    assert_eq!(
        d.response.principal_id,
        id.as_str(),
        "echoes AWS's principalId"
    );
    let docs = docs(&d);
    let me = ctx_for("SN1");
    assert!(allowed(&docs, &me, "iot:Connect", "SN1"));
    assert!(!allowed(&docs, &me, "iot:Publish", "P/SN2/deleterecords/1"));
    // A password or token beside the certificate elevates nothing: still the certificate's identity.
    let mut with_token = x509_request(&pem, Some(id.as_str()), "SN1");
    with_token["token"] = json!("eyJhbGciOiJub25lIn0.e30.");
    let d = run(&fx, with_token).await;
    assert_eq!(d.response.principal_id, id.as_str());
    // Refusals.
    let other = "0".repeat(64);
    assert_deny(
        &run(&fx, x509_request(&pem, Some(&other), "SN1")).await,
        Reason::CertificateIdMismatch,
    );
    assert_deny(
        &run(&fx, x509_request(&pem, Some(id.as_str()), "SN2")).await,
        Reason::ClientIdMismatch,
    );
    assert_deny(
        &run(&fx, x509_request("not a certificate", None, "SN1")).await,
        Reason::MalformedCertificate,
    );
    put(false, true);
    assert_deny(
        &run(&fx, x509_request(&pem, Some(id.as_str()), "SN1")).await,
        Reason::CertificateHeld,
    );
    put(true, false);
    assert_deny(
        &run(&fx, x509_request(&pem, Some(id.as_str()), "SN1")).await,
        Reason::CertificateRevoked,
    );
}
