//! QUIC with one interop fix for go-libp2p before late 2024 (Kubo 0.22 among them).
//!
//! Kubo's bitswap answers on a fresh stream: it writes the multistream protocol header and the
//! message without waiting for our confirmation (go-multistream's "lazy" dialer), then closes
//! the stream. On QUIC, go-libp2p's close also stops reading (STOP_SENDING), so when our side
//! writes the protocol confirmation it gets "stopped by peer", the negotiation fails, and the
//! block inside the stream is dropped unread. (go-multistream fixed its side in PR #115.)
//!
//! A peer that stopped reading a stream it opened no longer wants what we write on it, so for
//! inbound streams a stopped send direction is treated as a sink: writes succeed and go
//! nowhere, and reading what the peer sent proceeds. Streams we open keep the error, so our
//! own messages are never silently lost.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::quic;

/// A QUIC connection whose inbound streams tolerate STOP_SENDING.
pub struct Connection(pub quic::Connection);

/// A QUIC stream; `inbound` ones swallow writes once the peer stopped reading.
pub struct Stream {
    inner: quic::Stream,
    inbound: bool,
    stopped: bool,
}

impl StreamMuxer for Connection {
    type Substream = Stream;
    type Error = quic::Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Stream, quic::Error>> {
        Pin::new(&mut self.0)
            .poll_inbound(cx)
            .map_ok(|inner| Stream {
                inner,
                inbound: true,
                stopped: false,
            })
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Stream, quic::Error>> {
        Pin::new(&mut self.0)
            .poll_outbound(cx)
            .map_ok(|inner| Stream {
                inner,
                inbound: false,
                stopped: false,
            })
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), quic::Error>> {
        Pin::new(&mut self.0).poll_close(cx)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, quic::Error>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl Stream {
    /// Whether `result` is the peer having stopped reading an inbound stream, which then
    /// counts as success from here on.
    fn tolerate<T>(&mut self, result: Poll<io::Result<T>>, ok: T) -> Poll<io::Result<T>> {
        match result {
            // quinn reports STOP_SENDING on a write as ConnectionReset.
            Poll::Ready(Err(e)) if self.inbound && e.kind() == io::ErrorKind::ConnectionReset => {
                self.stopped = true;
                Poll::Ready(Ok(ok))
            }
            other => other,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.stopped {
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.tolerate(r, buf.len())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.stopped {
            return Poll::Ready(Ok(()));
        }
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.tolerate(r, ())
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.stopped {
            return Poll::Ready(Ok(()));
        }
        let r = Pin::new(&mut self.inner).poll_close(cx);
        self.tolerate(r, ())
    }
}
