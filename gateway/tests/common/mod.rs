//! What the gateway's tests share: reading a client's next packet.

use rumqttc::{Event, EventLoop, Packet};
use std::time::Duration;

/// The next incoming packet (PINGRESP skipped), or the connection's error, within `secs`.
pub async fn incoming(ev: &mut EventLoop, secs: u64) -> Result<Packet, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, ev.poll()).await {
            Err(_) => return Err("timed out".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(Event::Incoming(p))) if !matches!(p, Packet::PingResp) => return Ok(p),
            Ok(Ok(_)) => {}
        }
    }
}

/// Whether the connection ends within a few packets (the gateway or a DeleteConnection closed it).
pub async fn closes(ev: &mut EventLoop, secs: u64) -> bool {
    for _ in 0..10 {
        if incoming(ev, secs).await.is_err() {
            return true;
        }
    }
    false
}
