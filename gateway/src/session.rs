//! One MQTT 3.1.1 connection over mutual TLS: CONNECT first (within 10 s), authorized as AWS IoT
//! authorizes it, then PUBLISH / SUBSCRIBE / UNSUBSCRIBE / PINGREQ / DISCONNECT, each checked against
//! the certificate's policies. An unauthorized publish closes the connection, as AWS IoT does on
//! MQTT 3.1.1; an unauthorized subscription is refused in the SUBACK (0x80).

use crate::identity::CertificatePrincipal;
use crate::router::{allowed, Outbound, Router, Session};
use crate::topics;
use futures_util::{SinkExt, StreamExt};
use rmqtt_codec::types::QoS;
use rmqtt_codec::v3::{self, ConnectAck, ConnectAckReason, Packet, SubscribeReturnCode};
use rmqtt_codec::version::ProtocolVersion;
use rmqtt_codec::{MqttCodec, MqttPacket};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

/// Largest packet accepted (AWS IoT: 128 KB messages).
pub const MAX_PACKET: u32 = 128 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// How a connection ended (logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    NoConnect,
    NotAuthorized(&'static str),
    ClientDisconnect,
    Closed(&'static str),
    ProtocolError(String),
}

pub struct Settings {
    pub region: String,
    pub account: String,
    pub rules: Arc<crate::rules::Rules>,
}

type Stream<S> = Framed<S, MqttCodec>;

async fn send<S: AsyncRead + AsyncWrite + Unpin>(io: &mut Stream<S>, p: Packet) -> bool {
    io.send(MqttPacket::V3(p)).await.is_ok()
}

async fn next<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Stream<S>,
) -> Option<Result<MqttPacket, String>> {
    io.next()
        .await
        .map(|r| r.map(|(p, _)| p).map_err(|e| e.to_string()))
}

/// Refuses a CONNECT (CONNACK "not authorized"), then the connection ends.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(io: &mut Stream<S>, why: &'static str) -> Ended {
    let ack = ConnectAck {
        return_code: ConnectAckReason::NotAuthorized,
        session_present: false,
    };
    let _ = send(io, Packet::ConnectAck(ack)).await;
    Ended::NotAuthorized(why)
}

/// Serves one connection whose TLS identity is `principal` (None: AWS IoT does not know the
/// certificate: refused).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    principal: Option<CertificatePrincipal>,
    router: Router,
    settings: Arc<Settings>,
) -> Ended {
    let mut io = Framed::new(
        stream,
        MqttCodec::Version(rmqtt_codec::version::VersionCodec),
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, next(&mut io)).await {
        Ok(Some(Ok(MqttPacket::Version(ProtocolVersion::MQTT3)))) => {}
        Ok(Some(Ok(MqttPacket::Version(ProtocolVersion::MQTT5)))) => {
            // MQTT 5 comes later; refused plainly rather than half-served.
            return Ended::ProtocolError("MQTT 5 is not served yet".into());
        }
        Ok(Some(Err(e))) => return Ended::ProtocolError(e),
        _ => return Ended::NoConnect,
    }
    *io.codec_mut() = MqttCodec::V3(v3::Codec::new(MAX_PACKET));
    let connect = match tokio::time::timeout(CONNECT_TIMEOUT, next(&mut io)).await {
        Ok(Some(Ok(MqttPacket::V3(Packet::Connect(c))))) => c,
        Ok(Some(Err(e))) => return Ended::ProtocolError(e),
        _ => return Ended::NoConnect,
    };
    let client_id = connect.client_id.to_string();
    let Some(principal) = principal else {
        return refuse(&mut io, "certificate unknown to AWS IoT").await;
    };
    if principal.status != "ACTIVE" {
        return refuse(&mut io, "certificate not ACTIVE").await;
    }
    let policies = Arc::new(principal.policy_set());
    let ctx = principal.context(&client_id, &settings.region, &settings.account);
    if client_id.is_empty() || !allowed(&policies, &ctx, "iot:Connect", &client_id) {
        return refuse(&mut io, "iot:Connect not allowed").await;
    }
    let ack = ConnectAck {
        return_code: ConnectAckReason::ConnectionAccepted,
        session_present: false,
    };
    if !send(&mut io, Packet::ConnectAck(ack)).await {
        return Ended::Closed("CONNECTION_LOST");
    }
    let (tx, mut rx) = mpsc::channel(256);
    let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    router.connect(
        &client_id,
        Session {
            id,
            tx,
            subscriptions: Vec::new(),
            policies: policies.clone(),
            context: ctx.clone(),
        },
    );
    tracing::info!(client_id, principal = %principal.certificate_id, "connected");
    let keep_alive = match connect.keep_alive {
        0 => Duration::from_secs(3600),
        k => Duration::from_millis(u64::from(k) * 1500),
    };
    let mut packet_id: u16 = 0;
    let ended = loop {
        tokio::select! {
            inbound = tokio::time::timeout(keep_alive, next(&mut io)) => {
                let packet = match inbound {
                    Err(_) => break Ended::Closed("MQTT_KEEP_ALIVE_TIMEOUT"),
                    Ok(None) => break Ended::Closed("CONNECTION_LOST"),
                    Ok(Some(Err(e))) => break Ended::ProtocolError(e),
                    Ok(Some(Ok(MqttPacket::V3(p)))) => p,
                    Ok(Some(Ok(_))) => break Ended::ProtocolError("unexpected packet".into()),
                };
                match packet {
                    Packet::Publish(p) => {
                        let topic = p.topic.to_string();
                        if !topics::valid_topic(&topic)
                            || !allowed(&policies, &ctx, "iot:Publish", &topic)
                        {
                            break Ended::NotAuthorized("iot:Publish not allowed");
                        }
                        if let (QoS::AtLeastOnce, Some(packet_id)) = (p.qos, p.packet_id) {
                            if !send(&mut io, Packet::PublishAck { packet_id }).await {
                                break Ended::Closed("CONNECTION_LOST");
                            }
                        }
                        router.publish(&topic, p.payload.clone());
                        let from = crate::rules::Publisher {
                            principal: &principal.certificate_id,
                            client_id: &client_id,
                        };
                        settings.rules.on_publish(&topic, &p.payload, &from);
                    }
                    Packet::Subscribe { packet_id, topic_filters } => {
                        let mut status = Vec::new();
                        for (filter, qos) in topic_filters {
                            let filter = filter.to_string();
                            if topics::valid_filter(&filter)
                                && allowed(&policies, &ctx, "iot:Subscribe", &filter)
                            {
                                router.subscribe(&client_id, id, &filter);
                                // AWS IoT serves QoS 0 and 1.
                                let granted = if qos == QoS::AtMostOnce { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                                status.push(SubscribeReturnCode::Success(granted));
                            } else {
                                status.push(SubscribeReturnCode::Failure);
                            }
                        }
                        if !send(&mut io, Packet::SubscribeAck { packet_id, status }).await {
                            break Ended::Closed("CONNECTION_LOST");
                        }
                    }
                    Packet::Unsubscribe { packet_id, topic_filters } => {
                        for f in topic_filters {
                            router.unsubscribe(&client_id, id, &f);
                        }
                        if !send(&mut io, Packet::UnsubscribeAck { packet_id }).await {
                            break Ended::Closed("CONNECTION_LOST");
                        }
                    }
                    Packet::PingRequest => {
                        if !send(&mut io, Packet::PingResponse).await {
                            break Ended::Closed("CONNECTION_LOST");
                        }
                    }
                    Packet::PublishAck { .. } => {}
                    Packet::Disconnect => break Ended::ClientDisconnect,
                    other => break Ended::ProtocolError(format!("unexpected packet type {}", other.packet_type())),
                }
            }
            outbound = rx.recv() => match outbound {
                Some(Outbound::Publish { topic, payload }) => {
                    packet_id = packet_id.wrapping_add(1).max(1);
                    let publish = rmqtt_codec::types::Publish {
                        dup: false,
                        retain: false,
                        qos: QoS::AtLeastOnce,
                        topic: topic.into(),
                        packet_id: NonZeroU16::new(packet_id),
                        payload,
                        properties: None,
                    };
                    if !send(&mut io, Packet::Publish(Box::new(publish))).await {
                        break Ended::Closed("CONNECTION_LOST");
                    }
                }
                Some(Outbound::Close(reason)) => break Ended::Closed(reason),
                None => break Ended::Closed("SERVER_INITIATED_DISCONNECT"),
            },
        }
    };
    router.disconnect(&client_id, id);
    tracing::info!(client_id, ended = ?ended, "disconnected");
    ended
}
