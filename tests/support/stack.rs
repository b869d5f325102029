//! An isolated fleetguard stack inside the shared emulator: its tables, policies, roles and functions, and fleetctl runs.

use super::*;

/// An isolated fleetguard stack inside the shared emulator.
pub struct Stack {
    pub emulator: &'static Emulator,
    pub sdk: SdkConfig,
    pub tables: Tables,
    pub fleet_policy: String,
    pub security_topic: String,
    pub prefix: String,
    pub ddb: aws_sdk_dynamodb::Client,
    pub iot: aws_sdk_iot::Client,
    /// The use cases wired to the adapters exactly as the Lambdas and fleetctl wire them.
    pub services: Services,
    /// The fleet CA in KMS (as `fleetctl ca init-kms` registers it), which signs rotated certificates.
    pub fleet_ca: fleetguard_aws::ca_init::KmsCa,
    /// The template resolved for this stack (its parameters change as a test registers its CA).
    pub local: std::sync::Mutex<LocalStack>,
    /// Each function's use cases, signed with its own role's key (`infra/template.yaml`'s policies,
    /// which the emulator enforces), by binary name.
    functions: std::collections::BTreeMap<String, Services>,
}

/// The emulator's account.
pub const ACCOUNT: &str = "123456789012";

/// A device provisioned through JITR whose key the test holds.
pub struct KeyedDevice {
    pub serial: Serial,
    pub certificate_id: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// What one `fleetctl` run came to: exit code, stdout, stderr.
pub struct CliRun {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl CliRun {
    /// Asserts the exit code (printing what the command said otherwise).
    pub fn expect_code(self, code: i32) -> CliRun {
        assert_eq!(self.code, code, "{}{}", self.out, self.err);
        self
    }
}

impl Stack {
    /// Runs the `fleetctl` binary at `bin` (a CLI test's `env!("CARGO_BIN_EXE_fleetctl")`) as the
    /// README tells a user to: `--stack <prefix>` against the emulator, with the revoker's settings in
    /// the environment and `stdin` piped in.
    pub fn fleetctl(&self, bin: &str, args: &[&str], stdin: Option<&str>) -> CliRun {
        self.fleetctl_env(bin, args, stdin, &[])
    }

    /// As [`Self::fleetctl`], with `env` added (e.g. `AWS_ENDPOINT_URL_LAMBDA`: the local runtime).
    pub fn fleetctl_env(
        &self,
        bin: &str,
        args: &[&str],
        stdin: Option<&str>,
        env: &[(&str, &str)],
    ) -> CliRun {
        let mut child = Command::new(bin)
            .envs(env.iter().copied())
            .arg("--stack")
            .arg(&self.prefix)
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.emulator.endpoint)
            .env("AWS_REGION", REGION)
            // An operator under the template's OperatorPolicy (enforced by the emulator); the deploy
            // steps (`ca`, `setup-local`) run with the deployer's credentials.
            .env(
                "AWS_ACCESS_KEY_ID",
                if matches!(args.first(), Some(&"ca" | &"setup-local")) {
                    "testing".to_owned()
                } else {
                    local_access_key("fleetctl")
                },
            )
            .env("AWS_SESSION_TOKEN", &self.prefix)
            .env("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET)
            .env("FLEETGUARD_FLEET_POLICY", &self.fleet_policy)
            .env(
                "FLEETGUARD_QUARANTINE_GROUP",
                format!("{}-quarantine", self.prefix),
            )
            .env("FLEETGUARD_OPERATOR", "ops-tester")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run fleetctl");
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.unwrap_or_default().as_bytes())
                .expect("stdin");
        }
        let out = child.wait_with_output().expect("fleetctl output");
        CliRun {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn new() -> Stack {
        let emulator = Emulator::shared();
        let sdk = emulator.sdk_config().await;
        let prefix = unique("fg");
        let tables = Tables::with_prefix(&prefix);
        let services = Services::new(sdk.clone(), tables.clone(), 30);
        let ddb = services.ddb.clone();
        dynamodb::create_tables(&ddb, &tables)
            .await
            .expect("create tables");
        let iot = aws_sdk_iot::Client::new(&sdk);
        let fleet_policy = format!("{prefix}-fleet-device");
        // As CloudFormation creates it (AWS::IoT::ThingGroup): the revoker's role may not.
        iot.create_thing_group()
            .thing_group_name(format!("{prefix}-quarantine"))
            .send()
            .await
            .expect("create the quarantine group");
        let kms = fleetguard_aws::kms::client(&sdk);
        let key = fleetguard_aws::kms::KmsSigner::create_key(&kms, &prefix)
            .await
            .expect("create the CA key");
        let signer = services.kms_signer(&key).await.expect("CA key");
        let fleet_ca = fleetguard_aws::ca_init::register_kms_ca(&services, &signer, &prefix, 3650)
            .await
            .expect("register the fleet CA");
        let failed_events = fleetguard_aws::local::ensure_failed_events_queue(
            &sdk,
            &format!("{prefix}-failed-events"),
        )
        .await
        .expect("create the failed-events queue");
        let local = LocalStack::new(&prefix, REGION, ACCOUNT)
            .resource("FailedEventsQueue", failed_events.as_str())
            .parameter(
                "RotationCaCertificateId",
                fleet_ca.ca_certificate_id.as_str(),
            )
            .parameter("IotDataEndpoint", emulator.endpoint.as_str())
            .resource("RegistryTable", tables.registry.as_str())
            .resource("AuditTable", tables.audit.as_str())
            .resource("RecordsTable", tables.records.as_str())
            .resource("FleetDevicePolicy", fleet_policy.as_str())
            .resource("QuarantineGroup", format!("{prefix}-quarantine"))
            .resource("FleetCaKey", key.as_str());
        // As a deploy's second pass sets it: devices connect only through the validated domain.
        let domain = local
            .device_domain_name(&template_text())
            .expect("the devices' domain");
        let local = local.parameter("DeviceDomainName", domain);
        // The fleet policy and the batch claim certificates' policy, as CloudFormation creates them
        // (AWS::IoT::Policy), with setup-local's own helper.
        let fleet = fleetguard_aws::local::fleet_policy_from_template(&template_text(), &local)
            .expect("the template's fleet policy");
        let claim = local
            .resource_property(&template_text(), "ClaimPolicy", "PolicyDocument")
            .expect("the claim policy");
        for (name, document) in [
            (fleet_policy.clone(), fleet),
            (format!("{prefix}-claim"), claim.to_string()),
        ] {
            fleetguard_aws::local::ensure_policy(&iot, &name, &document)
                .await
                .expect("create the policy");
        }
        // The key policy is the only grant on the CA key (the rotator's Sign and GetPublicKey).
        let key_policy = local
            .resource_property(&template_text(), "FleetCaKey", "KeyPolicy")
            .expect("the CA key's policy");
        kms.put_key_policy()
            .key_id(&key)
            .policy_name("default")
            .policy(key_policy.to_string())
            .send()
            .await
            .expect("put the CA key's policy");
        let security_topic = local
            .functions(&template_text())
            .expect("template")
            .into_iter()
            .find_map(|f| f.environment.get("FLEETGUARD_SECURITY_TOPIC").cloned())
            .expect("delete-record's security topic");
        let mut functions = std::collections::BTreeMap::new();
        for binary in local_lambda::FUNCTIONS {
            // Each function's use cases signed with its own role's key.
            let role_sdk = fleetguard_aws::local::role_config(&sdk, binary, &prefix);
            functions.insert(
                binary.to_owned(),
                Services::new(role_sdk, tables.clone(), 30),
            );
        }
        let stack = Stack {
            fleet_ca,
            emulator,
            sdk,
            tables,
            fleet_policy,
            security_topic,
            prefix,
            ddb,
            iot,
            services,
            local: std::sync::Mutex::new(local),
            functions,
        };
        stack.register_roles();
        stack
    }

    /// Registers every function's role, as the template resolves for this stack now, with the
    /// emulator (which then authorizes each function's calls with it).
    pub fn register_roles(&self) {
        self.register_roles_from(&template_text(), "");
    }

    /// As [`Self::register_roles`], from `template` (a test's altered copy). `tag` marks the roles in
    /// the emulator's usage (`provisioner~<tag>`), which `scripts/iam-report.sh` leaves out.
    pub fn register_roles_from(&self, template: &str, tag: &str) {
        let local = self.local.lock().expect("local stack").clone();
        let roles = local.roles(template).expect("the template resolves");
        let body = fleetguard_aws::local::roles_request(&self.prefix, &roles, tag);
        self.emulator
            .control("POST", "/_fleetguard/iam/roles", &body.to_string())
            .expect("register the stack's roles");
    }

    /// Sets a template parameter of this stack (the device CA, say) and registers the roles again.
    pub fn set_parameter(&self, name: &str, value: &str) {
        {
            let mut local = self.local.lock().expect("local stack");
            local.parameters.insert(name.to_owned(), value.to_owned());
        }
        self.register_roles();
    }

    /// The use cases of function `binary` (`provisioner`, `delete-record`...), signed with its role.
    pub fn function(&self, binary: &str) -> &Services {
        self.functions
            .get(binary)
            .unwrap_or_else(|| panic!("no function {binary}"))
    }

    pub fn records(&self) -> DynamoRecords {
        self.services.records()
    }

    /// Rotation settings as the template's defaults set them.
    pub fn rotation_config(&self) -> fleetguard_domain::lifecycle::rotation::RotationConfig {
        fleetguard_domain::lifecycle::rotation::RotationConfig {
            fleet_policy: self.fleet_policy.clone(),
            validity_days: 365,
            confirm_hours: 24,
            grace_hours: 24,
            min_interval_hours: 24,
            expiry_window_days: 30,
        }
    }

    /// What `fleetctl devices request-rotation <serial>` does: the device's next rotation is due.
    pub async fn request_rotation(&self, serial: &Serial) {
        let asked = fleetguard_domain::lifecycle::rotation::request_rotation(
            &self.registry(),
            &self.services.rotations(),
            &self.publisher(),
            serial,
            "fleetctl:test",
            OffsetDateTime::now_utc(),
        )
        .await
        .expect("request rotation");
        assert!(asked, "{serial}: an active device with a certificate");
    }

    /// The rotator as its Lambda wires it: the stack's CA key in KMS and its registered CA.
    pub async fn rotation(&self) -> fleetguard_aws::services::AwsRotation {
        self.function("rotator")
            .rotation(
                self.rotation_config(),
                &self.fleet_ca.key_id,
                self.fleet_ca.ca_certificate_id.as_str(),
            )
            .await
            .expect("rotation service")
    }

    /// A rotate (`action` "rotate", with `csr`) or confirm event as the rotation rules forward it.
    pub fn rotation_event(
        action: &str,
        serial: &Serial,
        principal: &str,
        csr: Option<&str>,
        received_at: i64,
    ) -> serde_json::Value {
        serde_json::json!({
            "action": action, "serial": serial.as_str(), "principal": principal,
            "client_id": serial.as_str(), "received_at": received_at, "csr": csr,
            "request_id": format!("{action}-{received_at}"),
        })
    }

    pub fn publisher(&self) -> IotPublisher {
        self.services.iot_data()
    }

    /// The JITR step: AWS IoT's registration event for `cert_id` under `ca_id`, handled now by the
    /// stack's provisioner (under its own role).
    pub async fn jitr(
        &self,
        cert_id: &str,
        ca_id: &str,
    ) -> fleetguard_domain::provisioning::jitr::Decision {
        self.provisioner()
            .handle(jitr_event(cert_id, ca_id), OffsetDateTime::now_utc())
            .await
            .expect("the provisioner answers")
    }

    pub fn provisioner(&self) -> AwsProvisioner {
        self.function("provisioner")
            .provisioner(ProvisioningConfig {
                fleet_policy: self.fleet_policy.clone(),
                refused_status: CertificateStatus::Revoked,
                ca_cache: fleetguard_domain::provisioning::jitr::DEFAULT_CA_CACHE,
                quarantine_group: Some(format!("{}-quarantine", self.prefix)),
                // The template's CaCertificateId: the one device CA the stack provisions for.
                trusted_cas: self
                    .local
                    .lock()
                    .expect("local stack")
                    .parameters
                    .get("CaCertificateId")
                    .and_then(|id| CertificateId::parse(id).ok())
                    .into_iter()
                    .collect(),
            })
    }

    pub fn delete_service(&self) -> AwsDeleteRecord {
        self.function("delete-record")
            .delete_record(self.security_topic.clone())
    }

    /// The revoker as the template configures it, for this stack's policy and quarantine group.
    pub fn revocation_config(&self) -> fleetguard_domain::lifecycle::revocation::RevocationConfig {
        fleetguard_domain::lifecycle::revocation::RevocationConfig {
            fleet_policy: self.fleet_policy.clone(),
            quarantine_group: format!("{}-quarantine", self.prefix),
            defender_action: fleetguard_domain::lifecycle::revocation::Action::Quarantine,
            violation_threshold: 1,
            violation_window: time::Duration::hours(1),
            rollback_lookback: time::Duration::hours(24),
            shared_serial_action:
                fleetguard_domain::lifecycle::revocation::SharedSerialAction::Quarantine,
        }
    }

    pub fn revoker(&self) -> AwsRevoker {
        self.function("revoker").revoker(self.revocation_config())
    }

    pub async fn group_members(&self, group: &str) -> Vec<String> {
        crate::iot_view::group_members(&self.iot, group).await
    }

    /// As [`Self::provision_device`], with a key the test holds (to connect over MQTT).
    pub async fn provision_device_with_key(&self, ca: &TestCa, ca_id: &str) -> KeyedDevice {
        let serial = Serial::parse(&unique("SN")).expect("serial");
        self.registry()
            .import_serial(&serial)
            .await
            .expect("import");
        let key = KeyPair::generate().expect("key");
        let cert_pem = ca.issue_for_key(serial.as_str(), &key);
        let certificate_id = self.auto_register(&cert_pem, ca).await;
        let d = self
            .provisioner()
            .handle(
                jitr_event(&certificate_id, ca_id),
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("provision");
        assert_eq!(d.reason, fleetguard_domain::model::Reason::Provisioned);
        KeyedDevice {
            serial,
            certificate_id,
            cert_pem,
            key_pem: key.serialize_pem(),
        }
    }

    /// A device's status in the registry.
    pub async fn device_status(&self, serial: &Serial) -> fleetguard_domain::model::DeviceStatus {
        self.registry()
            .get_device(serial)
            .await
            .expect("read the device")
            .expect("the device exists")
            .status
    }

    /// Allow-lists a new serial and provisions a device for it through JITR. Returns (serial, cert id).
    pub async fn provision_device(&self, ca: &TestCa, ca_id: &str) -> (Serial, String) {
        let serial = Serial::parse(&unique("SN")).expect("serial");
        self.registry()
            .import_serial(&serial)
            .await
            .expect("import");
        let cert_id = self.auto_register(&ca.issue(serial.as_str()), ca).await;
        let d = self
            .provisioner()
            .handle(jitr_event(&cert_id, ca_id), OffsetDateTime::now_utc())
            .await
            .expect("provision");
        assert_eq!(d.reason, fleetguard_domain::model::Reason::Provisioned);
        (serial, cert_id)
    }

    /// A live record at version 1.
    pub async fn seed_record(&self, serial: &Serial, record_id: &str) -> RecordId {
        let record_id = RecordId::parse(record_id).expect("record id");
        self.records()
            .put(&Record {
                serial: serial.clone(),
                record_id: record_id.clone(),
                version: 1,
                deleted_at: None,
                deleted_by: None,
                delete_reason: None,
                delete_request: None,
                restored_at: None,
                restored_by: None,
                data: Some("payload".into()),
            })
            .await
            .expect("seed record");
        record_id
    }

    pub async fn record(&self, serial: &Serial, record_id: &RecordId) -> Option<Record> {
        self.records()
            .get(serial, record_id)
            .await
            .expect("get record")
    }

    /// Payloads published on exactly this topic, as JSON.
    pub fn published_on(&self, topic: &str) -> Vec<serde_json::Value> {
        self.emulator
            .published()
            .into_iter()
            .filter(|(t, _)| t == topic)
            .filter_map(|(_, p)| serde_json::from_slice(&p).ok())
            .collect()
    }

    /// Puts an operator (custom-authorizer principal) into the registry.
    pub async fn put_operator(&self, principal_id: &str, active: bool, serials: &[&Serial]) {
        use fleetguard_domain::authorization::authorizer::{
            Identity, IdentityKind, OperatorStatus, PrincipalId,
        };
        let identity = Identity {
            principal_id: PrincipalId::parse(principal_id).expect("principal id"),
            kind: IdentityKind::Operator {
                operator_id: "alice".into(),
                serials: serials.iter().map(|s| (*s).clone()).collect(),
                status: if active {
                    OperatorStatus::Active
                } else {
                    OperatorStatus::Disabled
                },
            },
            failed_attempts: 0,
            failures_since: None,
        };
        self.ddb
            .put_item()
            .table_name(&self.tables.registry)
            .set_item(Some(
                fleetguard_aws::schema::identity_item(&identity).expect("item"),
            ))
            .send()
            .await
            .expect("put operator");
    }

    /// Sets a device's registry status directly (simulates quarantine/revocation in tests).
    pub async fn set_device_status(&self, serial: &Serial, status: &str) {
        use aws_sdk_dynamodb::types::AttributeValue as V;
        self.ddb
            .update_item()
            .table_name(&self.tables.registry)
            .set_key(Some(fleetguard_aws::schema::device_key(serial)))
            .update_expression("SET #s = :s")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", V::S(status.into()))
            .send()
            .await
            .expect("set status");
    }

    pub fn registry(&self) -> DynamoRegistry {
        self.services.registry()
    }

    pub fn audit(&self) -> DynamoAudit {
        self.services.audit()
    }

    pub fn control(&self) -> IotControlAdapter {
        self.services.iot()
    }

    pub fn claim_hook(&self) -> AwsClaimHook {
        self.function("provisioning-hook")
            .claim_hook(fleetguard_domain::provisioning::claim::DEFAULT_PROOF_WINDOW_SECONDS)
            .with_quarantine_group(Some(format!("{}-quarantine", self.prefix)))
    }

    /// Allow-lists a serial with enrollment material (`fleetctl devices import` columns).
    pub async fn import_enrolled(
        &self,
        serial: &Serial,
        key: &str,
        secret_hash: &str,
        claims: &str,
    ) {
        let enrollment = fleetguard_domain::provisioning::enrollment::enrollment_from_columns(
            key,
            secret_hash,
            claims,
        )
        .expect("columns");
        let device = fleetguard_domain::model::Device::manufactured(
            serial.clone(),
            enrollment,
            fleetguard_domain::model::Timestamp::now(),
        );
        assert!(self
            .registry()
            .import_device(&device)
            .await
            .expect("import"));
    }

    /// A certificate as AWS issues it to a claim device (CreateKeysAndCertificate or
    /// CreateCertificateFromCsr with `subject` in the CSR): registered, not yet active.
    /// Returns (PEM, certificate id).
    pub async fn issue_by_aws(&self, issuer: &TestCa, subject: &str) -> (String, String) {
        let pem = issuer.issue(subject);
        // As fleet-provision-api documents: PENDING_ACTIVATION until RegisterThing succeeds.
        let id = self.register_pending(&pem, &issuer.pem()).await;
        assert_eq!(id, certificate_id_of(&pem));
        (pem, id)
    }

    /// Registers `pem` under the CA `ca_pem`, PENDING_ACTIVATION. Returns its certificate id.
    pub async fn register_pending(&self, pem: &str, ca_pem: &str) -> String {
        crate::iot_view::register_pending(&self.iot, pem, ca_pem).await
    }

    /// What RegisterThing does after the hook allowed: the thing named by the serial, the fleet
    /// policy and the thing attached to the certificate, the certificate ACTIVE.
    pub async fn register_thing(&self, serial: &Serial, cert_id: &str) {
        use fleetguard_domain::ports::IotControl;
        let control = self.control();
        let arn = self.certificate_arn(cert_id).await;
        control.ensure_thing(serial).await.expect("thing");
        control
            .attach_policy(&self.fleet_policy, &arn)
            .await
            .expect("policy");
        control
            .attach_thing_principal(serial, &arn)
            .await
            .expect("principal");
        control
            .set_certificate_status(
                &fleetguard_domain::model::CertificateId::parse(cert_id).expect("id"),
                CertificateStatus::Active,
            )
            .await
            .expect("activate");
    }

    /// Registers a CA with AWS IoT (ACTIVE, auto-registration on). Returns its certificate id.
    pub async fn register_ca(&self, ca: &TestCa) -> String {
        let id = self.register_ca_pem(&ca.pem()).await;
        // The device CA a test registered last is the stack's `CaCertificateId` (the template names
        // one; a deploy takes it as a parameter).
        self.set_parameter("CaCertificateId", &id);
        id
    }

    /// As [`Self::register_ca`], for a CA given as PEM.
    /// Registers a CA (ACTIVE, auto-registration on) that is not the stack's device CA.
    pub async fn register_ca_pem(&self, pem: &str) -> String {
        crate::iot_view::register_ca(&self.iot, pem).await
    }

    /// A stand-in for the CA AWS IoT issues claim-flow certificates with: registered so the emulator
    /// takes its certificates, not the stack's device CA.
    pub async fn register_issuer_ca(&self, ca: &TestCa) -> String {
        self.register_ca_pem(&ca.pem()).await
    }

    /// Registers a device certificate PENDING_ACTIVATION, as JITR's auto-registration does on first
    /// connect. Returns the certificate id (SHA-256 of the DER with the emulator's valid-cert mode).
    pub async fn auto_register(&self, device_pem: &str, ca: &TestCa) -> String {
        self.register_pending(device_pem, &ca.pem()).await
    }

    /// The certificate's status as AWS IoT describes it, parsed once.
    pub async fn certificate_status(&self, id: &str) -> CertificateStatus {
        self.describe(id)
            .await
            .status
            .map_or(CertificateStatus::Unknown, |s| {
                CertificateStatus::parse(s.as_str())
            })
    }

    async fn describe(&self, id: &str) -> aws_sdk_iot::types::CertificateDescription {
        self.iot
            .describe_certificate()
            .certificate_id(id)
            .send()
            .await
            .expect("describe certificate")
            .certificate_description
            .expect("certificate description")
    }

    pub async fn certificate_arn(&self, id: &str) -> String {
        self.describe(id).await.certificate_arn.unwrap_or_default()
    }

    /// The certificate's PEM as AWS IoT holds it (what a device presents at the handshake).
    pub async fn certificate_pem(&self, id: &str) -> String {
        self.describe(id).await.certificate_pem.unwrap_or_default()
    }

    pub async fn thing_exists(&self, name: &str) -> bool {
        self.iot
            .describe_thing()
            .thing_name(name)
            .send()
            .await
            .is_ok()
    }

    pub async fn thing_principals(&self, name: &str) -> Vec<String> {
        crate::iot_view::thing_principals(&self.iot, name).await
    }

    pub async fn principal_policies(&self, cert_arn: &str) -> Vec<String> {
        crate::iot_view::attached_policies(&self.iot, cert_arn).await
    }

    /// Number of items in a table (small test tables only).
    pub async fn count(&self, table: &str) -> usize {
        self.ddb
            .scan()
            .table_name(table)
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default()
            .len()
    }
}

/// AWS API calls made between two `Emulator::calls()` snapshots, by operation.
pub fn call_diff(
    before: &serde_json::Value,
    after: &serde_json::Value,
) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for (op, n) in after.as_object().expect("calls") {
        let d = n.as_u64().unwrap_or(0) - before.get(op).and_then(|b| b.as_u64()).unwrap_or(0);
        if d > 0 {
            out.insert(op.clone(), d);
        }
    }
    out
}
