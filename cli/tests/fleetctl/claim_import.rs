//! The README's claim-provisioning commands, run as a new user runs them: the `fleetctl` binary against
//! the local emulator imports the manufacturing CSV with proof columns, reports bad lines by number and
//! writes nothing of them, and `devices show` tells the proof kind and whether it was used without
//! printing any material. Then the imported device provisions by claim through the hook.

use fleetguard_domain::model::Serial;
use fleetguard_domain::ports::Registry;
use fleetguard_domain::provisioning::enrollment::secret_hash;
use fleetguard_tests::{enrollment_secret, hook_request, unique, FactoryKey, Stack, TestCa};

fn fleetctl(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    let run = stack.fleetctl(env!("CARGO_BIN_EXE_fleetctl"), args, None);
    (run.code, run.out, run.err)
}

/// The registry entry `devices show` prints first (pretty JSON), before the audit lines.
fn shown_json(text: &str) -> serde_json::Value {
    let end = text.find("\n}\n").map(|i| i + 2).unwrap_or(text.len());
    serde_json::from_str(&text[..end]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn import_reads_proof_columns_reports_bad_lines_and_show_prints_no_material() {
    let stack = Stack::new().await;
    let (factory, secret_dev, plain) = (unique("SN"), unique("SN"), unique("SN"));
    let (bad_key, bad_hash, bad_claim) = (unique("SN"), unique("SN"), unique("SN"));
    let key = FactoryKey::new();
    let secret = enrollment_secret();
    let hash = secret_hash(&secret);
    let claim = "c1".repeat(32);
    let csv = format!(
        "serial,attestation_key,secret_sha256,claims\n\
         {factory},{key},,{claim}\n\
         {secret_dev},,{hash},\n\
         {plain}\n\
         {bad_key},bm90IGEga2V5,,\n\
         {bad_hash},,abc123,\n\
         {bad_claim},,{hash},not-a-certificate-id\n",
        key = key.public_b64()
    );
    let path = std::env::temp_dir().join(format!("{}.csv", unique("manufacturing")));
    std::fs::write(&path, csv).unwrap();

    let (code, out, err) = fleetctl(&stack, &["devices", "import", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("imported 3, already present 0, invalid 3"),
        "{out}"
    );
    for line in ["line 5:", "line 6:", "line 7:"] {
        assert!(err.contains(line), "{line} not reported: {err}");
    }
    let registry = stack.registry();
    for s in [&bad_key, &bad_hash, &bad_claim] {
        let serial = Serial::parse(s).unwrap();
        assert_eq!(
            registry.get_device(&serial).await.unwrap(),
            None,
            "{s} written"
        );
    }

    let (code, shown, _) = fleetctl(&stack, &["devices", "show", &factory]);
    assert_eq!(code, 0);
    let view = shown_json(&shown);
    assert_eq!(view["proof"]["kind"], "factory_key");
    assert_eq!(view["proof"]["used"], false);
    let (_, shown_secret, _) = fleetctl(&stack, &["devices", "show", &secret_dev]);
    assert!(
        shown_secret.contains("\"one_time_secret\""),
        "{shown_secret}"
    );
    for text in [&shown, &shown_secret, &out, &err] {
        assert!(!text.contains(&key.public_b64()), "key printed");
        assert!(!text.contains(&hash), "secret hash printed");
    }

    // The imported device provisions by claim; show then says the proof was used, binding pending.
    let aws = TestCa::new("AWS issuer (test)");
    stack.register_issuer_ca(&aws).await;
    let (pem, cert) = stack.issue_by_aws(&aws, "csr-subject").await;
    let r = stack
        .claim_hook()
        .handle(
            hook_request(
                &claim,
                &pem,
                Some(&format!("claim.{factory}")),
                key.prove_now(&factory, &cert),
            ),
            time::OffsetDateTime::now_utc(),
        )
        .await;
    assert!(r.allow_provisioning);
    let (_, shown, _) = fleetctl(&stack, &["devices", "show", &factory]);
    assert!(shown.contains("\"used\": true"), "{shown}");
    assert!(shown.contains("pending"), "{shown}");
    let _ = std::fs::remove_file(path);
}
