//! The expiry watch: exactly the certificates inside its window are nudged.

use super::*;

#[tokio::test]
async fn the_expiry_watch_finds_exactly_the_certificates_inside_the_window() {
    let f = Fleet::new().await;
    let now = OffsetDateTime::now_utc();
    let mut inside = Vec::new();
    for (serial, days) in [("E1", 1), ("E2", 29), ("E3", 31), ("E4", 400), ("E5", -1)] {
        let s = Serial::parse(serial).unwrap();
        let mut d = Device::manufactured(
            s.clone(),
            Enrollment::default(),
            fleetguard_domain::model::Timestamp::at(now),
        );
        d.status = DeviceStatus::Active;
        d.certificate_id = Some(CertificateId::of_der(serial.as_bytes()));
        d.set_certificate_not_after(&fleetguard_domain::model::Timestamp::at(
            now + Duration::days(days),
        ));
        f.registry.import_device(&d).await.unwrap();
        if (0..=30).contains(&days) {
            inside.push(serial);
        }
    }
    // A quarantined device inside the window is not nudged (it cannot rotate).
    let q = Serial::parse("E6").unwrap();
    let mut d = Device::manufactured(
        q,
        Enrollment::default(),
        fleetguard_domain::model::Timestamp::at(now),
    );
    d.status = DeviceStatus::Quarantined;
    d.set_certificate_not_after(&fleetguard_domain::model::Timestamp::at(
        now + Duration::days(2),
    ));
    f.registry.import_device(&d).await.unwrap();
    // A CA expiring in 60 days: inside a 90-day window, outside a 30-day one.
    let short = TestSigner::default().ca_pem("short-lived CA", 60).await;
    let short_id = f.iot.inner.register_ca(&short).unwrap();

    let report = expiry::find(&f.rotations, &f.iot, now, 30, 90)
        .await
        .unwrap();
    let found: Vec<&str> = report.devices.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(found, inside);
    assert_eq!(report.cas.len(), 1);
    assert_eq!(report.cas[0].certificate_id, short_id.to_string());
    assert!(expiry::find(&f.rotations, &f.iot, now, 30, 30)
        .await
        .unwrap()
        .cas
        .is_empty());

    expiry::notify(&f.publisher, &f.audit, "alerts", &report)
        .await
        .unwrap();
    expiry::notify(&f.publisher, &f.audit, "alerts", &report)
        .await
        .unwrap();
    let published = f.publisher.published();
    assert_eq!(published[0].0, "P/E1/certificates/rotate/required");
    assert_eq!(published[0].1["reason"], "certificate_expiring");
    assert_eq!(published[2].0, "alerts");
    assert_eq!(published[2].1["devices"].as_array().unwrap().len(), 2);
    // Audited once a day however often the watch runs.
    assert_eq!(
        f.reasons(),
        [
            Reason::CertificateExpiring,
            Reason::CertificateExpiring,
            Reason::CaExpiring
        ]
    );
    let _ = f
        .rotations
        .due(&fleetguard_domain::model::Timestamp::at(now), 10)
        .await
        .unwrap();
}
