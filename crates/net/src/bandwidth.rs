//! Bandwidth accounting for `stats bw`: bytes in and out of every stream, by protocol and by
//! peer, counted where they cross the muxer.
//!
//! Every connection's muxer (TCP+Yamux, QUIC, relayed) is wrapped in [`Counted`], whose streams
//! count what they read and write. A stream's protocol is learnt by watching its multistream-select
//! negotiation go by: the listener's side of the exchange is `/multistream/1.0.0`, then either
//! `na` or the protocol it accepted. So an outbound stream reads its protocol from what comes in
//! and an inbound stream from what it writes itself. Bytes before the protocol is known (the
//! negotiation itself) are credited to it once it is; a stream whose negotiation is never seen
//! to complete counts in the totals only.
//!
//! The counters on the hot path are atomics a stream resolves once; the maps are touched only
//! when a stream learns its protocol and when `stats bw` is asked. Rates are exponentially
//! weighted moving averages of one-second samples (updated by the network's tick), as
//! go-flow-metrics computes Kubo's.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent};
use libp2p::PeerId;
use parking_lot::Mutex;

/// Protocols tracked separately at most (the rest count under their totals only).
const MAX_PROTOCOLS: usize = 128;
/// Peers tracked at most; beyond it, peers with no open connection are forgotten.
const MAX_PEERS: usize = 4096;
/// Bytes of negotiation watched before a stream's protocol is given up on.
const MAX_SNIFF: usize = 1024;
/// Weight of the newest one-second sample in the rates.
const ALPHA: f64 = 0.5;

/// Bytes in and out, with their rates.
#[derive(Default)]
pub struct Counter {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Open connections (for peer counters: whether the peer may be forgotten).
    conns: AtomicUsize,
    rates: Mutex<Rates>,
}

#[derive(Default)]
struct Rates {
    last_in: u64,
    last_out: u64,
    rate_in: f64,
    rate_out: f64,
}

impl Counter {
    fn add_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn add_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn sample(&self, secs: f64) {
        let (i, o) = (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        );
        let mut r = self.rates.lock();
        let (di, d_o) = (
            (i - r.last_in) as f64 / secs,
            (o - r.last_out) as f64 / secs,
        );
        r.rate_in = ALPHA * di + (1.0 - ALPHA) * r.rate_in;
        r.rate_out = ALPHA * d_o + (1.0 - ALPHA) * r.rate_out;
        (r.last_in, r.last_out) = (i, o);
    }

    fn stat(&self) -> BandwidthStat {
        let r = self.rates.lock();
        BandwidthStat {
            total_in: self.bytes_in.load(Ordering::Relaxed),
            total_out: self.bytes_out.load(Ordering::Relaxed),
            rate_in: r.rate_in,
            rate_out: r.rate_out,
        }
    }
}

/// `stats bw` figures: bytes since start and bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BandwidthStat {
    /// Bytes received.
    pub total_in: u64,
    /// Bytes sent.
    pub total_out: u64,
    /// Bytes received per second, recently.
    pub rate_in: f64,
    /// Bytes sent per second, recently.
    pub rate_out: f64,
}

/// The node's bandwidth counters.
#[derive(Default)]
pub struct Bandwidth {
    total: Arc<Counter>,
    protocols: Mutex<HashMap<String, Arc<Counter>>>,
    peers: Mutex<HashMap<PeerId, Arc<Counter>>>,
    last_sample: Mutex<Option<Instant>>,
}

impl Bandwidth {
    /// All traffic.
    pub fn total(&self) -> BandwidthStat {
        self.total.stat()
    }

    /// Traffic of one protocol (zero when none was seen).
    pub fn protocol(&self, protocol: &str) -> BandwidthStat {
        self.protocols
            .lock()
            .get(protocol)
            .map(|c| c.stat())
            .unwrap_or_default()
    }

    /// Traffic with one peer (zero when none was seen).
    pub fn peer(&self, peer: &PeerId) -> BandwidthStat {
        self.peers
            .lock()
            .get(peer)
            .map(|c| c.stat())
            .unwrap_or_default()
    }

    /// Every protocol seen, with its traffic.
    pub fn protocols(&self) -> Vec<(String, BandwidthStat)> {
        let mut v: Vec<_> = self
            .protocols
            .lock()
            .iter()
            .map(|(p, c)| (p.clone(), c.stat()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Updates the rates; called about once a second.
    pub(crate) fn tick(&self) {
        let now = Instant::now();
        let secs = {
            let mut last = self.last_sample.lock();
            let secs = last.map_or(1.0, |l| now.duration_since(l).as_secs_f64());
            *last = Some(now);
            secs
        };
        if secs <= 0.0 {
            return;
        }
        self.total.sample(secs);
        for c in self.protocols.lock().values() {
            c.sample(secs);
        }
        for c in self.peers.lock().values() {
            c.sample(secs);
        }
    }

    fn peer_counter(&self, peer: PeerId) -> Arc<Counter> {
        let mut peers = self.peers.lock();
        if !peers.contains_key(&peer) && peers.len() >= MAX_PEERS {
            peers.retain(|_, c| c.conns.load(Ordering::Relaxed) > 0);
        }
        let c = peers.entry(peer).or_default().clone();
        c.conns.fetch_add(1, Ordering::Relaxed);
        c
    }

    fn protocol_counter(&self, protocol: &str) -> Option<Arc<Counter>> {
        let mut protocols = self.protocols.lock();
        if let Some(c) = protocols.get(protocol) {
            return Some(c.clone());
        }
        if protocols.len() >= MAX_PROTOCOLS {
            return None;
        }
        let c = Arc::new(Counter::default());
        protocols.insert(protocol.to_string(), c.clone());
        Some(c)
    }

    /// Wraps a connection's muxer so its streams are counted.
    pub(crate) fn wrap(self: &Arc<Self>, peer: PeerId, muxer: StreamMuxerBox) -> Counted {
        Counted {
            inner: muxer,
            peer: self.peer_counter(peer),
            bandwidth: self.clone(),
        }
    }
}

/// A muxer whose streams count their bytes.
pub struct Counted {
    inner: StreamMuxerBox,
    peer: Arc<Counter>,
    bandwidth: Arc<Bandwidth>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.peer.conns.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counted {
    fn stream(&self, inner: libp2p::core::muxing::SubstreamBox, inbound: bool) -> CountedStream {
        CountedStream {
            inner,
            inbound,
            sniff: Some(Sniff::default()),
            protocol: None,
            peer: self.peer.clone(),
            bandwidth: self.bandwidth.clone(),
        }
    }
}

impl StreamMuxer for Counted {
    type Substream = CountedStream;
    type Error = io::Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<CountedStream, io::Error>> {
        let s = futures::ready!(Pin::new(&mut self.inner).poll_inbound(cx))?;
        Poll::Ready(Ok(self.stream(s, true)))
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<CountedStream, io::Error>> {
        let s = futures::ready!(Pin::new(&mut self.inner).poll_outbound(cx))?;
        Poll::Ready(Ok(self.stream(s, false)))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, io::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// Watches one direction of a multistream-select exchange for the accepted protocol.
#[derive(Default)]
struct Sniff {
    buf: Vec<u8>,
    /// Bytes counted before the protocol was known.
    pending_in: u64,
    pending_out: u64,
}

enum Sniffed {
    More,
    Protocol(String),
    GiveUp,
}

impl Sniff {
    /// Feeds bytes of the listener's side; answers once a protocol is accepted.
    fn feed(&mut self, bytes: &[u8]) -> Sniffed {
        self.buf
            .extend_from_slice(&bytes[..bytes.len().min(MAX_SNIFF)]);
        loop {
            let (len, rest) = match unsigned_varint_decode(&self.buf) {
                Varint::Value(len, rest) if len <= MAX_SNIFF => (len, rest),
                Varint::Incomplete => return Sniffed::More,
                Varint::Value(..) | Varint::Invalid => return Sniffed::GiveUp,
            };
            if rest.len() < len {
                return if self.buf.len() >= MAX_SNIFF {
                    Sniffed::GiveUp
                } else {
                    Sniffed::More
                };
            }
            let msg = &rest[..len];
            let consumed = self.buf.len() - rest.len() + len;
            let line = msg.strip_suffix(b"\n").unwrap_or(msg);
            match line {
                b"/multistream/1.0.0" | b"na" | b"" => {
                    self.buf.drain(..consumed);
                }
                proto => {
                    return match std::str::from_utf8(proto) {
                        Ok(p) if p.starts_with('/') => Sniffed::Protocol(p.to_string()),
                        _ => Sniffed::GiveUp,
                    };
                }
            }
        }
    }
}

enum Varint<'a> {
    Value(usize, &'a [u8]),
    Incomplete,
    Invalid,
}

/// An unsigned LEB128 varint of at most 9 bytes, and the bytes after it.
fn unsigned_varint_decode(buf: &[u8]) -> Varint<'_> {
    let mut v: u64 = 0;
    for (i, b) in buf.iter().enumerate() {
        if i == 9 {
            return Varint::Invalid;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Varint::Value(v as usize, &buf[i + 1..]);
        }
    }
    Varint::Incomplete
}

/// A stream that counts its bytes.
pub struct CountedStream {
    inner: libp2p::core::muxing::SubstreamBox,
    inbound: bool,
    sniff: Option<Sniff>,
    protocol: Option<Arc<Counter>>,
    peer: Arc<Counter>,
    bandwidth: Arc<Bandwidth>,
}

impl CountedStream {
    fn count(&mut self, n: usize, incoming: bool, bytes: &[u8]) {
        let bw = &self.bandwidth;
        if incoming {
            bw.total.add_in(n);
            self.peer.add_in(n);
        } else {
            bw.total.add_out(n);
            self.peer.add_out(n);
        }
        if let Some(p) = &self.protocol {
            if incoming {
                p.add_in(n)
            } else {
                p.add_out(n)
            }
            return;
        }
        let Some(sniff) = self.sniff.as_mut() else {
            return;
        };
        if incoming {
            sniff.pending_in += n as u64;
        } else {
            sniff.pending_out += n as u64;
        }
        // The listener's side names the protocol: what we read on streams we opened, what we
        // write on streams the peer opened.
        if incoming == self.inbound {
            return;
        }
        match sniff.feed(bytes) {
            Sniffed::More => {}
            Sniffed::GiveUp => self.sniff = None,
            Sniffed::Protocol(name) => {
                let (pin, pout) = (sniff.pending_in, sniff.pending_out);
                self.sniff = None;
                if let Some(c) = bw.protocol_counter(&name) {
                    c.add_in(pin as usize);
                    c.add_out(pout as usize);
                    self.protocol = Some(c);
                }
            }
        }
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = futures::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        self.count(n, true, &buf[..n]);
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = futures::ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.count(n, false, &buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Vec<u8> {
        let mut v = vec![(s.len() + 1) as u8];
        v.extend_from_slice(s.as_bytes());
        v.push(b'\n');
        v
    }

    #[test]
    fn sniffs_the_accepted_protocol_across_chunks() {
        let mut bytes = frame("/multistream/1.0.0");
        bytes.extend(frame("na"));
        bytes.extend(frame("/ipfs/bitswap/1.2.0"));
        bytes.extend_from_slice(b"\x05hello");
        let mut s = Sniff::default();
        let (a, b) = bytes.split_at(7);
        assert!(matches!(s.feed(a), Sniffed::More));
        match s.feed(b) {
            Sniffed::Protocol(p) => assert_eq!(p, "/ipfs/bitswap/1.2.0"),
            _ => panic!("protocol not found"),
        }
        let mut junk = Sniff::default();
        assert!(matches!(junk.feed(&[0xff; 20]), Sniffed::GiveUp));
        let mut garbage = Sniff::default();
        assert!(matches!(garbage.feed(&frame("hello")), Sniffed::GiveUp));
    }

    #[test]
    fn rates_follow_samples() {
        let c = Counter::default();
        c.add_in(1000);
        c.sample(1.0);
        let s = c.stat();
        assert_eq!(s.total_in, 1000);
        assert!((s.rate_in - 500.0).abs() < 1e-9);
        c.sample(1.0);
        assert!((c.stat().rate_in - 250.0).abs() < 1e-9);
    }
}
