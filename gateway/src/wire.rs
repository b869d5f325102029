//! MQTT 3.1.1 and 5 on one connection, through rmqtt-codec: the version is read from CONNECT, and
//! the session speaks in version-neutral terms ([`In`], and the replies below). What differs, as
//! AWS IoT Core does it (mqtt5-support: reason codes): a refused CONNECT is CONNACK 5 on 3.1.1 and
//! 0x87 on 5; an unauthorized publish closes a 3.1.1 connection but gets PUBACK 0x87 on 5 (the
//! connection stays); an unauthorized subscription is SUBACK 0x80 / 0x87; and on 5 the server says
//! why it closes a session (DISCONNECT with a reason code).

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rmqtt_codec::types::QoS;
use rmqtt_codec::version::{ProtocolVersion, VersionCodec};
use rmqtt_codec::{v3, v5, MqttCodec, MqttPacket};
use secrecy::SecretSlice;
use std::num::NonZeroU16;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

/// Largest packet accepted (AWS IoT: 128 KB messages).
pub const MAX_PACKET: u32 = 128 * 1024;
/// How long one packet may take to be written.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V3,
    V5,
}

/// What CONNECT says.
#[derive(Clone)]
pub struct ConnectInfo {
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<SecretSlice<u8>>,
    pub keep_alive: u16,
}

/// A client's packet after CONNECT, whatever the version.
#[derive(Debug)]
pub enum In {
    Publish {
        topic: String,
        qos: QoS,
        packet_id: Option<NonZeroU16>,
        payload: Bytes,
    },
    Subscribe {
        packet_id: NonZeroU16,
        filters: Vec<(String, QoS)>,
    },
    Unsubscribe {
        packet_id: NonZeroU16,
        filters: Vec<String>,
    },
    PingRequest,
    PublishAck,
    Disconnect,
    Unexpected(String),
}

/// How a CONNECT is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connack {
    Accepted,
    NotAuthorized,
    /// Over the client id's CONNECT quota.
    Throttled,
}

pub struct Wire<S> {
    io: Framed<S, MqttCodec>,
    pub version: Version,
}

/// Why a connection ended before its CONNECT was read.
#[derive(Debug)]
pub enum NoConnect {
    TimedOut,
    Error(String),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    /// Reads CONNECT (within `wait`), choosing the version it names.
    pub async fn accept(stream: S, wait: Duration) -> Result<(Wire<S>, ConnectInfo), NoConnect> {
        let mut io = Framed::new(stream, MqttCodec::Version(VersionCodec));
        let read = |r: Option<Result<(MqttPacket, u32), rmqtt_codec::error::DecodeError>>| match r {
            Some(Ok((p, _))) => Ok(p),
            Some(Err(e)) => Err(NoConnect::Error(e.to_string())),
            None => Err(NoConnect::Error("closed before CONNECT".into())),
        };
        let version = match tokio::time::timeout(wait, io.next()).await {
            Err(_) => return Err(NoConnect::TimedOut),
            Ok(r) => match read(r)? {
                MqttPacket::Version(ProtocolVersion::MQTT3) => Version::V3,
                MqttPacket::Version(ProtocolVersion::MQTT5) => Version::V5,
                _ => return Err(NoConnect::Error("not a CONNECT".into())),
            },
        };
        *io.codec_mut() = match version {
            Version::V3 => MqttCodec::V3(v3::Codec::new(MAX_PACKET)),
            Version::V5 => MqttCodec::V5(v5::Codec::new(MAX_PACKET, MAX_PACKET)),
        };
        let packet = match tokio::time::timeout(wait, io.next()).await {
            Err(_) => return Err(NoConnect::TimedOut),
            Ok(r) => read(r)?,
        };
        let info = match packet {
            MqttPacket::V3(v3::Packet::Connect(c)) => ConnectInfo {
                client_id: c.client_id.to_string(),
                username: c.username.as_ref().map(|u| u.to_string()),
                password: c.password.as_ref().map(|p| p.to_vec().into()),
                keep_alive: c.keep_alive,
            },
            MqttPacket::V5(v5::Packet::Connect(c)) => ConnectInfo {
                client_id: c.client_id.to_string(),
                username: c.username.as_ref().map(|u| u.to_string()),
                password: c.password.as_ref().map(|p| p.to_vec().into()),
                keep_alive: c.keep_alive,
            },
            _ => return Err(NoConnect::Error("not a CONNECT".into())),
        };
        Ok((Wire { io, version }, info))
    }

    /// False if the packet could not be written within [`WRITE_TIMEOUT`] (a client that stopped
    /// reading is treated as gone).
    async fn send(&mut self, p: MqttPacket) -> bool {
        matches!(
            tokio::time::timeout(WRITE_TIMEOUT, self.io.send(p)).await,
            Ok(Ok(()))
        )
    }

    /// The next packet; `None` when the client closed the connection.
    pub async fn next(&mut self) -> Option<Result<In, String>> {
        let packet = match self.io.next().await? {
            Ok((p, _)) => p,
            Err(e) => return Some(Err(e.to_string())),
        };
        Some(Ok(match packet {
            MqttPacket::V3(p) => match p {
                v3::Packet::Publish(p) => In::Publish {
                    topic: p.topic.to_string(),
                    qos: p.qos,
                    packet_id: p.packet_id,
                    payload: p.payload.clone(),
                },
                v3::Packet::Subscribe {
                    packet_id,
                    topic_filters,
                } => In::Subscribe {
                    packet_id,
                    filters: topic_filters
                        .into_iter()
                        .map(|(f, q)| (f.to_string(), q))
                        .collect(),
                },
                v3::Packet::Unsubscribe {
                    packet_id,
                    topic_filters,
                } => In::Unsubscribe {
                    packet_id,
                    filters: topic_filters.into_iter().map(|f| f.to_string()).collect(),
                },
                v3::Packet::PingRequest => In::PingRequest,
                v3::Packet::PublishAck { .. } => In::PublishAck,
                v3::Packet::Disconnect => In::Disconnect,
                other => In::Unexpected(format!("packet type {}", other.packet_type())),
            },
            MqttPacket::V5(p) => match p {
                v5::Packet::Publish(p) => In::Publish {
                    topic: p.topic.to_string(),
                    qos: p.qos,
                    packet_id: p.packet_id,
                    payload: p.payload.clone(),
                },
                v5::Packet::Subscribe(s) => In::Subscribe {
                    packet_id: s.packet_id,
                    filters: s
                        .topic_filters
                        .into_iter()
                        .map(|(f, o)| (f.to_string(), o.qos))
                        .collect(),
                },
                v5::Packet::Unsubscribe(u) => In::Unsubscribe {
                    packet_id: u.packet_id,
                    filters: u.topic_filters.into_iter().map(|f| f.to_string()).collect(),
                },
                v5::Packet::PingRequest => In::PingRequest,
                v5::Packet::PublishAck(_) => In::PublishAck,
                v5::Packet::Disconnect(_) => In::Disconnect,
                other => In::Unexpected(format!("packet type {}", other.packet_type())),
            },
            MqttPacket::Version(_) => In::Unexpected("a second CONNECT".into()),
        }))
    }

    pub async fn connack(&mut self, outcome: Connack) -> bool {
        let p = match self.version {
            Version::V3 => MqttPacket::V3(v3::Packet::ConnectAck(v3::ConnectAck {
                session_present: false,
                return_code: match outcome {
                    Connack::Accepted => v3::ConnectAckReason::ConnectionAccepted,
                    Connack::NotAuthorized => v3::ConnectAckReason::NotAuthorized,
                    Connack::Throttled => v3::ConnectAckReason::ServiceUnavailable,
                },
            })),
            Version::V5 => MqttPacket::V5(v5::Packet::ConnectAck(Box::new(v5::ConnectAck {
                reason_code: match outcome {
                    Connack::Accepted => v5::ConnectAckReason::Success,
                    Connack::NotAuthorized => v5::ConnectAckReason::NotAuthorized,
                    Connack::Throttled => v5::ConnectAckReason::ConnectionRateExceeded,
                },
                // AWS IoT serves QoS 0 and 1, no retained messages here, 128 KB packets.
                max_qos: QoS::AtLeastOnce,
                retain_available: false,
                max_packet_size: Some(MAX_PACKET),
                shared_subscription_available: false,
                subscription_identifiers_available: false,
                ..Default::default()
            }))),
        };
        self.send(p).await
    }

    /// Acknowledges a QoS 1 publish; `allowed == false` is PUBACK 0x87 (MQTT 5 only: on 3.1.1 the
    /// session closes the connection instead).
    pub async fn puback(&mut self, packet_id: NonZeroU16, allowed: bool) -> bool {
        let p = match self.version {
            Version::V3 => MqttPacket::V3(v3::Packet::PublishAck { packet_id }),
            Version::V5 => MqttPacket::V5(v5::Packet::PublishAck(v5::PublishAck {
                packet_id,
                reason_code: if allowed {
                    v5::PublishAckReason::Success
                } else {
                    v5::PublishAckReason::NotAuthorized
                },
                ..Default::default()
            })),
        };
        self.send(p).await
    }

    /// One entry per filter: the QoS granted, or `None` (refused: 0x80 / 0x87).
    pub async fn suback(&mut self, packet_id: NonZeroU16, granted: Vec<Option<QoS>>) -> bool {
        let p = match self.version {
            Version::V3 => MqttPacket::V3(v3::Packet::SubscribeAck {
                packet_id,
                status: granted
                    .into_iter()
                    .map(|g| match g {
                        Some(q) => v3::SubscribeReturnCode::Success(q),
                        None => v3::SubscribeReturnCode::Failure,
                    })
                    .collect(),
            }),
            Version::V5 => MqttPacket::V5(v5::Packet::SubscribeAck(v5::SubscribeAck {
                packet_id,
                properties: Default::default(),
                reason_string: None,
                status: granted
                    .into_iter()
                    .map(|g| match g {
                        Some(QoS::AtMostOnce) => v5::SubscribeAckReason::GrantedQos0,
                        Some(_) => v5::SubscribeAckReason::GrantedQos1,
                        None => v5::SubscribeAckReason::NotAuthorized,
                    })
                    .collect(),
            })),
        };
        self.send(p).await
    }

    pub async fn unsuback(&mut self, packet_id: NonZeroU16, filters: usize) -> bool {
        let p = match self.version {
            Version::V3 => MqttPacket::V3(v3::Packet::UnsubscribeAck { packet_id }),
            Version::V5 => MqttPacket::V5(v5::Packet::UnsubscribeAck(v5::UnsubscribeAck {
                packet_id,
                properties: Default::default(),
                reason_string: None,
                status: vec![v5::UnsubscribeAckReason::Success; filters],
            })),
        };
        self.send(p).await
    }

    pub async fn pingresp(&mut self) -> bool {
        let p = match self.version {
            Version::V3 => MqttPacket::V3(v3::Packet::PingResponse),
            Version::V5 => MqttPacket::V5(v5::Packet::PingResponse),
        };
        self.send(p).await
    }

    /// Delivers a message at QoS 1.
    pub async fn publish(&mut self, topic: String, payload: Bytes, packet_id: NonZeroU16) -> bool {
        let publish = rmqtt_codec::types::Publish {
            dup: false,
            retain: false,
            qos: QoS::AtLeastOnce,
            topic: topic.into(),
            packet_id: Some(packet_id),
            payload,
            properties: None,
        };
        let p = match self.version {
            Version::V3 => MqttPacket::V3(v3::Packet::Publish(Box::new(publish))),
            Version::V5 => MqttPacket::V5(v5::Packet::Publish(Box::new(publish))),
        };
        self.send(p).await
    }

    /// Tells an MQTT 5 client why the server ends its session (`reason`: AWS's disconnectReason);
    /// 3.1.1 has no server DISCONNECT, the connection just closes.
    pub async fn disconnect(&mut self, reason: &str) {
        if self.version != Version::V5 {
            return;
        }
        use v5::DisconnectReasonCode as C;
        let code = match reason {
            "DUPLICATE_CLIENTID" => C::SessionTakenOver,
            "API_INITIATED_DISCONNECT" => C::AdministrativeAction,
            "MQTT_KEEP_ALIVE_TIMEOUT" => C::KeepAliveTimeout,
            "CUSTOMAUTH_TTL_EXPIRATION" => C::MaximumConnectTime,
            "AUTH_ERROR" | "FORBIDDEN_ACCESS" => C::NotAuthorized,
            "THROTTLED" => C::MessageRateTooHigh,
            "CLIENT_ERROR" => C::ProtocolError,
            _ => C::UnspecifiedError,
        };
        let d = v5::Disconnect {
            reason_code: code,
            ..Default::default()
        };
        let _ = self.send(MqttPacket::V5(v5::Packet::Disconnect(d))).await;
    }
}
