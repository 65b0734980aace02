//! `ping`: round trips over libp2p's ping protocol (`/ipfs/ping/1.0.0`: 32 random bytes sent,
//! the same 32 read back), on a stream of its own so that the periodic keep-alive pings of the
//! ping behaviour are not disturbed. The events follow Kubo's `ping` command: a note when the
//! peer must first be looked up, `PING <peer>.`, one result per ping a second apart, and the
//! average latency.

use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::multiaddr::Protocol;
use libp2p::PeerId;
use tokio::sync::mpsc;

use crate::swarm::PING_PROTOCOL;
use crate::Network;

/// How long one step (a lookup, a connection, one ping) may take, as Kubo's `kPingTimeout`.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// One line of `ping`'s output, as Kubo's `PingResult`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingEvent {
    /// Whether this line reports success.
    pub success: bool,
    /// The round trip, for a pong.
    pub time: Duration,
    /// A message (status, error or summary); empty for a pong.
    pub text: String,
}

impl PingEvent {
    fn text(success: bool, text: String) -> Self {
        PingEvent {
            success,
            time: Duration::ZERO,
            text,
        }
    }
}

enum RoundError {
    /// The stream failed (closed, reset, wrong echo).
    Stream(std::io::Error),
    /// No answer in time.
    Timeout,
}

impl std::fmt::Display for RoundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoundError::Stream(e) => write!(f, "{e}"),
            RoundError::Timeout => write!(f, "context deadline exceeded"),
        }
    }
}

/// One ping: 32 random bytes out, the same 32 back.
async fn round(stream: &mut libp2p::Stream) -> Result<Duration, RoundError> {
    let mut payload = [0u8; 32];
    getrandom::fill(&mut payload).map_err(|e| RoundError::Stream(std::io::Error::other(e)))?;
    let started = Instant::now();
    let exchange = async {
        stream.write_all(&payload).await?;
        stream.flush().await?;
        let mut back = [0u8; 32];
        stream.read_exact(&mut back).await?;
        if back != payload {
            return Err(std::io::Error::other("ping packet was incorrect"));
        }
        Ok(())
    };
    match tokio::time::timeout(STEP_TIMEOUT, exchange).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(RoundError::Stream(e)),
        Err(_) => Err(RoundError::Timeout),
    }
}

/// One failed ping.
fn fail(text: impl Into<String>) -> PingEvent {
    PingEvent::text(false, text.into())
}

/// Events, then `Err` when the command as a whole failed (Kubo's error after the stream).
pub(crate) type PingItem = Result<PingEvent, String>;

pub(crate) fn start(net: Network, peer: PeerId, count: usize) -> mpsc::Receiver<PingItem> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        if let Err(e) = run(&net, peer, count, &tx).await {
            if !e.is_empty() {
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    rx
}

/// Runs the pings; an empty error means the receiver went away.
async fn run(
    net: &Network,
    peer: PeerId,
    count: usize,
    tx: &mpsc::Sender<PingItem>,
) -> Result<(), String> {
    let send = |e: PingEvent| async move { tx.send(Ok(e)).await.map_err(|_| String::new()) };
    let connected = net
        .peers()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .any(|p| p.peer == peer);
    if !connected {
        let known = net
            .known_addrs()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, a)| a)
            .unwrap_or_default();
        let addrs = if known.is_empty() {
            send(PingEvent::text(true, format!("Looking up peer {peer}"))).await?;
            tokio::time::timeout(STEP_TIMEOUT, net.find_peer(peer))
                .await
                .map_err(|_| "peer lookup failed: context deadline exceeded".to_string())?
                .map_err(|e| format!("peer lookup failed: {e}"))?
        } else {
            known
        };
        let mut last = String::from("no addresses");
        let mut ok = false;
        for mut a in addrs {
            if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                a.push(Protocol::P2p(peer));
            }
            match tokio::time::timeout(STEP_TIMEOUT, net.connect(a)).await {
                Ok(Ok(_)) => {
                    ok = true;
                    break;
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "dial timed out".into(),
            }
        }
        if !ok {
            return Err(format!("ping failed: {last}"));
        }
    }
    send(PingEvent::text(true, format!("PING {peer}."))).await?;
    let mut control = net.control.clone();
    let mut stream = tokio::time::timeout(STEP_TIMEOUT, control.open_stream(peer, PING_PROTOCOL))
        .await
        .map_err(|_| "ping failed: opening a stream timed out".to_string())?
        .map_err(|e| format!("ping failed: {e}"))?;
    let (mut ok, mut total) = (0u32, Duration::ZERO);
    for i in 0..count {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // A rust-libp2p peer keeps one inbound ping stream per connection and drops the older
        // one when our node's own keep-alive ping opens another: a round that fails on the
        // stream is tried once more on a fresh one before it counts as failed.
        let mut result = round(&mut stream).await;
        if let Err(RoundError::Stream(_)) = &result {
            match tokio::time::timeout(STEP_TIMEOUT, control.open_stream(peer, PING_PROTOCOL)).await
            {
                Ok(Ok(s)) => {
                    stream = s;
                    result = round(&mut stream).await;
                }
                Ok(Err(e)) => return Err(format!("ping failed: {e}")),
                Err(_) => return Err("ping failed: opening a stream timed out".into()),
            }
        }
        let event = match result {
            Ok(rtt) => {
                ok += 1;
                total += rtt;
                PingEvent {
                    success: true,
                    time: rtt,
                    text: String::new(),
                }
            }
            Err(e) => fail(e.to_string()),
        };
        send(event).await?;
    }
    if ok == 0 {
        return Err("ping failed".into());
    }
    let average = total.as_secs_f64() * 1000.0 / f64::from(ok);
    send(PingEvent::text(
        true,
        format!("Average latency: {average:.2}ms"),
    ))
    .await
}
