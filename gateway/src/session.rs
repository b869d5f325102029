//! One MQTT connection (3.1.1 or 5, see [`crate::wire`]): CONNECT first (within 10 s),
//! authenticated by its client certificate or by the custom authorizer, authorized (`iot:Connect`)
//! and held to the client id's CONNECT quota, as AWS IoT does; then PUBLISH / SUBSCRIBE /
//! UNSUBSCRIBE / PINGREQ / DISCONNECT, each checked against the principal's policies. An
//! unauthorized publish closes a 3.1.1 connection (PUBACK 0x87 on 5); an unauthorized subscription
//! is refused in the SUBACK. Lifecycle events mark the session's start and end.

use crate::authorizer::Login;
use crate::identity::CertificatePrincipal;
use crate::lifecycle::Presence;
use crate::router::{allowed, Outbound, Router, Session};
use crate::topics;
use crate::wire::{Connack, ConnectInfo, In, NoConnect, Version, Wire};
use iot_policy::{ConnectionContext, PolicySet};
use rmqtt_codec::types::QoS;
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

pub use crate::wire::MAX_PACKET;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// How a connection ended (logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    NoConnect,
    NotAuthorized(&'static str),
    /// A certificate registered PENDING_ACTIVATION: the registration event went out, the connection
    /// is dropped (the device reconnects once it is ACTIVE).
    JustInTimeRegistration,
    /// Over the client id's CONNECT quota.
    Throttled,
    ClientDisconnect,
    Closed(&'static str),
    ProtocolError(String),
}

impl Ended {
    /// AWS's `disconnectReason` for a session that had connected.
    pub fn disconnect_reason(&self) -> &'static str {
        match self {
            Ended::ClientDisconnect => "CLIENT_INITIATED_DISCONNECT",
            Ended::Closed(r) => r,
            // AWS: AUTH_ERROR "failed to authenticate or authorization failed" (FORBIDDEN_ACCESS is
            // a client not allowed to be connected at all, such as a denied IP address).
            Ended::NotAuthorized(_) => "AUTH_ERROR",
            Ended::Throttled => "THROTTLED",
            Ended::ProtocolError(_) | Ended::NoConnect | Ended::JustInTimeRegistration => {
                "CLIENT_ERROR"
            }
        }
    }
}

pub struct Settings {
    pub region: String,
    pub account: String,
    pub rules: Arc<crate::rules::Rules>,
    /// The custom authorizer's function (connections without a client certificate), if any.
    pub authorizer: Option<String>,
    /// How long one of the authorizer's seconds lasts (`disconnectAfterInSeconds`,
    /// `refreshAfterInSeconds`): a second, or less in tests that watch a TTL run out.
    pub auth_second: Duration,
    /// AWS IoT, for a certificate session's policies read again (`None`: read at connect only).
    pub iot: Option<aws_sdk_iot::Client>,
    /// How soon a policy attached to or detached from a certificate (or its thing) reaches the
    /// certificate's live sessions. AWS IoT: within minutes (it caches policies); here this bound.
    pub policy_refresh: Duration,
    /// Fleet provisioning's MQTT API (`None`: not served).
    pub provisioning: Option<Arc<crate::claim::Provisioning>>,
}

/// How the connection proved who it is, from its TLS session (before any MQTT).
pub enum Authentication {
    /// A client certificate; `None` if AWS IoT does not know it.
    Certificate(Option<CertificatePrincipal>),
    /// No client certificate: the custom authorizer decides on CONNECT's username and password.
    Custom { server_name: Option<String> },
    /// X.509 custom authentication (`CUSTOM_AUTH_X509`): a certificate AWS IoT knows, then the
    /// custom authorizer with it; the policies it returns add to the certificate's.
    CertificateAndCustom {
        principal: CertificatePrincipal,
        server_name: Option<String>,
        pem: String,
    },
}

/// Who a session is, once authenticated.
struct Principal {
    /// What `principal()` gives.
    id: String,
    policies: Arc<PolicySet>,
    context: ConnectionContext,
    /// A custom-authorizer session: the login (for the refresh), when it must end, when to refresh.
    custom: Option<(Login, Instant, Instant)>,
    /// A certificate session: its certificate id (its policies are read again).
    certificate: Option<String>,
    /// An X.509 custom-auth session: the certificate's own policies, kept under each refreshed grant.
    attached: Vec<iot_policy::PolicyDocument>,
}

/// `grant`'s policies after `attached` (X.509 custom authentication adds, never narrows).
fn with_attached(attached: &[iot_policy::PolicyDocument], grant: PolicySet) -> PolicySet {
    if attached.is_empty() {
        return grant;
    }
    let mut docs = attached.to_vec();
    docs.extend(grant.documents().iter().cloned());
    PolicySet::from_documents(docs)
}

/// The session's principal, or why it is refused.
async fn authenticate(
    auth: Authentication,
    connect: &ConnectInfo,
    settings: &Settings,
) -> Result<Principal, &'static str> {
    let client_id = connect.client_id.clone();
    match auth {
        Authentication::Certificate(None) => Err("certificate unknown to AWS IoT"),
        Authentication::Certificate(Some(p)) if p.status != "ACTIVE" => {
            Err("certificate not ACTIVE")
        }
        Authentication::Certificate(Some(p)) => Ok(Principal {
            policies: Arc::new(p.policy_set()),
            context: p.context(&client_id, &settings.region, &settings.account),
            certificate: Some(p.certificate_id.clone()),
            id: p.certificate_id,
            custom: None,
            attached: Vec::new(),
        }),
        Authentication::Custom { server_name } => {
            custom(settings, connect, server_name, None, Vec::new()).await
        }
        Authentication::CertificateAndCustom { principal: p, .. } if p.status != "ACTIVE" => {
            Err("certificate not ACTIVE")
        }
        Authentication::CertificateAndCustom {
            principal: p,
            server_name,
            pem,
        } => {
            let attached = p.policy_set().documents().to_vec();
            let certificate = Some((pem, p.certificate_id.clone()));
            let mut principal =
                custom(settings, connect, server_name, certificate, attached).await?;
            // Its thing resolves the thing variables, as for any certificate connection.
            let principal_id = principal.context.principal_id.take();
            principal.context = ConnectionContext {
                principal_id,
                ..p.context(&client_id, &settings.region, &settings.account)
            };
            Ok(principal)
        }
    }
}

/// A session the custom authorizer admits (with the certificate of an X.509 custom-auth connection).
async fn custom(
    settings: &Settings,
    connect: &ConnectInfo,
    server_name: Option<String>,
    certificate: Option<(String, String)>,
    attached: Vec<iot_policy::PolicyDocument>,
) -> Result<Principal, &'static str> {
    let function = settings
        .authorizer
        .as_deref()
        .ok_or("no client certificate and no custom authorizer")?;
    let login = Login {
        server_name,
        username: connect.username.clone(),
        password: connect.password.clone(),
        client_id: connect.client_id.clone(),
        connection_id: crate::authorizer::connection_id(),
        certificate,
    };
    let grant = crate::authorizer::authorize(
        &settings.rules.lambda,
        function,
        &login,
        &settings.region,
        &settings.account,
    )
    .await
    .map_err(|e| {
        // The reason is logged, never the credentials.
        tracing::info!(client_id = %login.client_id, error = %e, "custom authentication refused");
        "custom authorizer refused"
    })?;
    let now = Instant::now();
    let (ttl, refresh) = (
        now + settings.auth_second * grant.disconnect_after,
        now + settings.auth_second * grant.refresh_after,
    );
    Ok(Principal {
        id: grant.principal_id,
        policies: Arc::new(with_attached(&attached, grant.policies)),
        context: grant.context,
        custom: Some((login, ttl, refresh)),
        certificate: None,
        attached,
    })
}

/// A message accepted from `from` (a client, the data plane, AWS IoT itself): the matching rules
/// run and the subscribed sessions receive it.
pub fn publish(
    router: &Router,
    rules: &crate::rules::Rules,
    topic: &str,
    payload: bytes::Bytes,
    from: &crate::rules::Publisher<'_>,
) {
    rules.on_publish(topic, &payload, from);
    router.publish(topic, payload);
}

/// Publishes an event AWS IoT raises itself (lifecycle, registration).
pub fn emit(
    router: &Router,
    rules: &crate::rules::Rules,
    event: Option<(String, serde_json::Value)>,
) {
    if let Some((topic, payload)) = event {
        let payload = bytes::Bytes::from(payload.to_string());
        publish(router, rules, &topic, payload, &crate::rules::AWS_IOT);
    }
}

/// Answers a fleet-provisioning request of session `id` in the background (the hook may take
/// seconds); the reply reaches that session only.
fn provision(
    router: &Router,
    settings: &Arc<Settings>,
    request: crate::claim::Request,
    topic: String,
    payload: bytes::Bytes,
    (principal, client_id, id): (&str, &str, u64),
) {
    let Some(provisioning) = settings.provisioning.clone() else {
        tracing::info!(client_id, topic, "fleet provisioning is not served here");
        return;
    };
    let (router, settings) = (router.clone(), settings.clone());
    let (principal, client_id) = (principal.to_owned(), client_id.to_owned());
    tokio::spawn(async move {
        let caller = crate::claim::Caller {
            principal: &principal,
            client_id: &client_id,
        };
        let (reply, body) = provisioning
            .handle(&topic, &request, &payload, &caller, &settings.rules.lambda)
            .await;
        let delivered = router.reply(&client_id, id, &reply, bytes::Bytes::from(body.to_string()));
        tracing::info!(client_id, reply, delivered, "fleet provisioning answered");
    });
}

/// Serves one connection authenticated as `auth` from `peer`.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    auth: Authentication,
    domain_name: &str,
    peer: std::net::SocketAddr,
    router: Router,
    settings: Arc<Settings>,
) -> Ended {
    let (mut io, connect) = match Wire::accept(stream, CONNECT_TIMEOUT).await {
        Ok(x) => x,
        Err(NoConnect::TimedOut) => return Ended::NoConnect,
        Err(NoConnect::Error(e)) => return Ended::ProtocolError(e),
    };
    let client_id = connect.client_id.clone();
    let principal = match authenticate(auth, &connect, &settings).await {
        Ok(p) => p,
        Err(why) => {
            io.connack(Connack::NotAuthorized).await;
            return Ended::NotAuthorized(why);
        }
    };
    let Principal {
        id: principal_id,
        mut policies,
        context: ctx,
        custom,
        certificate,
        attached,
    } = principal;
    // `iot:DomainName`: the endpoint the client reached, whatever else its context says.
    let at_domain = |mut ctx: ConnectionContext| {
        ctx.domain_name = Some(domain_name.to_owned());
        ctx
    };
    let ctx = at_domain(ctx);
    if client_id.is_empty() || !allowed(&policies, &ctx, "iot:Connect", &client_id) {
        io.connack(Connack::NotAuthorized).await;
        return Ended::NotAuthorized("iot:Connect not allowed");
    }
    let Some(version_number) = router.admit(&client_id, Instant::now()) else {
        io.connack(Connack::Throttled).await;
        return Ended::Throttled;
    };
    if !io.connack(Connack::Accepted).await {
        return Ended::Closed("CONNECTION_LOST");
    }
    let (tx, mut rx) = mpsc::channel(256);
    let (close, mut closed) = tokio::sync::watch::channel(None);
    let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    router.connect(
        &client_id,
        Session {
            id,
            tx,
            close,
            subscriptions: Vec::new(),
            policies: policies.clone(),
            context: ctx.clone(),
        },
    );
    let presence = Presence {
        client_id: client_id.clone(),
        session_identifier: format!("{:032x}", uuid::Uuid::new_v4().as_u128()),
        principal_identifier: principal_id.clone(),
        ip_address: peer.ip().to_string(),
        version_number,
    };
    emit(&router, &settings.rules, presence.connected());
    tracing::info!(client_id, principal = %principal_id, version = ?io.version, "connected");
    // A custom-authorizer session ends at its TTL and is authorized again at each refresh.
    let far = Instant::now() + Duration::from_secs(100 * 365 * 86_400);
    let (login, ttl, mut refresh_at) = match custom {
        Some((login, ttl, refresh)) => (Some(login), ttl, refresh),
        None => (None, far, far),
    };
    let mut ctx = ctx;
    // A certificate session reads its policies again within the bound (never: a custom session,
    // whose refresh above does that).
    let mut policy_at = match (&certificate, &settings.iot) {
        (Some(_), Some(_)) => Instant::now() + settings.policy_refresh,
        _ => far,
    };
    // Counted from the client's last packet (what it receives does not keep it alive).
    let keep_alive = match connect.keep_alive {
        0 => Duration::from_secs(3600),
        k => Duration::from_millis(u64::from(k) * 1500),
    };
    let mut last_in = Instant::now();
    let mut packet_id: u16 = 0;
    let ended = loop {
        tokio::select! {
            // A close is seen before anything else the session has to do.
            biased;
            _ = closed.changed() => break Ended::Closed(closed.borrow().unwrap_or("SERVER_INITIATED_DISCONNECT")),
            _ = tokio::time::sleep_until(ttl.into()) => break Ended::Closed("CUSTOMAUTH_TTL_EXPIRATION"),
            _ = tokio::time::sleep_until((last_in + keep_alive).into()) => break Ended::Closed("MQTT_KEEP_ALIVE_TIMEOUT"),
            _ = tokio::time::sleep_until(refresh_at.into()) => {
                let Some(login) = &login else { break Ended::Closed("SERVER_ERROR") };
                let Some(function) = settings.authorizer.as_deref() else { break Ended::Closed("AUTH_ERROR") };
                match crate::authorizer::authorize(&settings.rules.lambda, function, login, &settings.region, &settings.account).await {
                    Ok(grant) => {
                        let next = Arc::new(with_attached(&attached, grant.policies));
                        // The new grant must still allow this client id to be connected.
                        if !allowed(&next, &at_domain(grant.context.clone()), "iot:Connect", &client_id) {
                            tracing::info!(client_id, "custom authorization refresh: iot:Connect no longer allowed");
                            break Ended::Closed("AUTH_ERROR");
                        }
                        policies = next;
                        ctx = at_domain(ConnectionContext { principal_id: grant.context.principal_id, ..ctx });
                        router.set_policies(&client_id, id, policies.clone());
                        refresh_at = Instant::now() + settings.auth_second * grant.refresh_after;
                        tracing::info!(client_id, "custom authorization refreshed");
                    }
                    Err(e) => {
                        tracing::info!(client_id, error = %e, "custom authorization refresh refused");
                        break Ended::Closed("AUTH_ERROR");
                    }
                }
            }
            _ = tokio::time::sleep_until(policy_at.into()) => {
                policy_at = Instant::now() + settings.policy_refresh;
                let (Some(cert), Some(iot)) = (&certificate, &settings.iot) else { continue };
                match crate::identity::describe(iot, cert).await {
                    Ok(Some(p)) => {
                        policies = Arc::new(p.policy_set());
                        ctx = at_domain(p.context(&client_id, &settings.region, &settings.account));
                        router.set_grant(&client_id, id, policies.clone(), ctx.clone());
                    }
                    // No longer known to AWS IoT: nothing is granted.
                    Ok(None) => {
                        policies = Arc::new(PolicySet::from_documents(Vec::new()));
                        router.set_policies(&client_id, id, policies.clone());
                    }
                    // Kept until the next reading, as AWS IoT keeps serving its cached policies.
                    Err(e) => tracing::warn!(client_id, error = %e, "policies not read again"),
                }
            }
            inbound = io.next() => {
                let packet = match inbound {
                    None => break Ended::Closed("CONNECTION_LOST"),
                    Some(Err(e)) => break Ended::ProtocolError(e),
                    Some(Ok(p)) => p,
                };
                last_in = Instant::now();
                match packet {
                    In::Publish { qos: QoS::ExactlyOnce, .. } => {
                        // AWS IoT does not serve QoS 2 (CONNACK says so on MQTT 5).
                        break Ended::ProtocolError("QoS 2 is not supported".into());
                    }
                    In::Publish { topic, qos, packet_id, payload } => {
                        let allowed_here = topics::valid_topic(&topic)
                            && !topics::reserved_for_aws(&topic)
                            && allowed(&policies, &ctx, "iot:Publish", &topic);
                        if !allowed_here && io.version == Version::V3 {
                            break Ended::NotAuthorized("iot:Publish not allowed");
                        }
                        if let (QoS::AtLeastOnce, Some(packet_id)) = (qos, packet_id) {
                            if !io.puback(packet_id, allowed_here).await {
                                break Ended::Closed("CONNECTION_LOST");
                            }
                        }
                        if !allowed_here {
                            // MQTT 5: refused in the PUBACK (0x87), the connection stays.
                            tracing::info!(client_id, topic, "iot:Publish not allowed");
                            continue;
                        }
                        if let Some(request) = crate::claim::request(&topic) {
                            // AWS IoT answers the request itself, on this connection only.
                            provision(&router, &settings, request, topic, payload, (&principal_id, &client_id, id));
                            continue;
                        }
                        let from = crate::rules::Publisher {
                            principal: &principal_id,
                            client_id: &client_id,
                        };
                        publish(&router, &settings.rules, &topic, payload, &from);
                    }
                    In::Subscribe { packet_id, filters } => {
                        let mut granted = Vec::new();
                        for (filter, qos) in filters {
                            if topics::valid_filter(&filter)
                                && allowed(&policies, &ctx, "iot:Subscribe", &filter)
                                && router.subscribe(&client_id, id, &filter)
                            {
                                // AWS IoT serves QoS 0 and 1.
                                granted.push(Some(if qos == QoS::AtMostOnce { QoS::AtMostOnce } else { QoS::AtLeastOnce }));
                            } else {
                                granted.push(None);
                            }
                        }
                        if !io.suback(packet_id, granted).await {
                            break Ended::Closed("CONNECTION_LOST");
                        }
                    }
                    In::Unsubscribe { packet_id, filters } => {
                        for f in &filters {
                            router.unsubscribe(&client_id, id, f);
                        }
                        if !io.unsuback(packet_id, filters.len()).await {
                            break Ended::Closed("CONNECTION_LOST");
                        }
                    }
                    In::PingRequest => {
                        if !io.pingresp().await {
                            break Ended::Closed("CONNECTION_LOST");
                        }
                    }
                    In::PublishAck => {}
                    In::Disconnect => break Ended::ClientDisconnect,
                    In::Unexpected(what) => break Ended::ProtocolError(format!("unexpected {what}")),
                }
            }
            outbound = rx.recv() => match outbound {
                Some(Outbound::Publish { topic, payload }) => {
                    packet_id = packet_id.wrapping_add(1).max(1);
                    let id = NonZeroU16::new(packet_id).unwrap_or(NonZeroU16::MIN);
                    if !io.publish(topic, payload, id).await {
                        break Ended::Closed("CONNECTION_LOST");
                    }
                }
                None => break Ended::Closed("SERVER_INITIATED_DISCONNECT"),
            },
        }
    };
    // Unregistered first: a client that stopped reading cannot keep the session registered.
    router.disconnect(&client_id, id);
    io.disconnect(ended.disconnect_reason()).await;
    emit(
        &router,
        &settings.rules,
        presence.disconnected(ended.disconnect_reason()),
    );
    tracing::info!(client_id, ended = ?ended, "disconnected");
    ended
}
