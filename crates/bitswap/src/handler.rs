//! The per-connection handler: one long-lived outbound stream that sends queued messages in
//! order, and up to [`MAX_INBOUND_STREAMS`] inbound streams read until they end.

use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionHandler, ConnectionHandlerEvent, StreamUpgradeError, SubstreamProtocol,
};
use libp2p::{Stream, StreamProtocol};

use crate::message::Message;
use crate::protocol::{self, Upgrade};

/// Inbound streams read at once on one connection; more are refused (reset) until one ends.
/// Kubo opens a fresh stream for many of its answers, so a handful is normal; thousands is not.
pub const MAX_INBOUND_STREAMS: usize = 32;

/// Consecutive failures to open or write the outbound stream before the queue is dropped.
const MAX_OUTBOUND_FAILURES: u8 = 3;

/// What the behaviour tells a handler.
#[derive(Debug)]
pub enum FromBehaviour {
    /// Send this message (after those queued before it).
    Send(Message),
}

/// What a handler tells the behaviour.
#[derive(Debug)]
pub enum ToBehaviour {
    /// A message arrived.
    Received(Message),
    /// Queued messages of this approximate size left (sent or dropped), for queue accounting.
    Drained(usize),
    /// The remote does not speak bitswap.
    Unsupported,
    /// A stream failed; the message is for logs.
    StreamError(String),
}

type Inbound = BoxFuture<'static, io::Result<Option<(Stream, StreamProtocol, Message)>>>;

enum Outbound {
    /// No stream yet, none requested.
    None,
    /// A stream was requested and is being negotiated.
    Opening,
    /// Ready to write.
    Idle(Stream, StreamProtocol),
    /// Writing a message of the given size.
    Sending(
        BoxFuture<'static, io::Result<(Stream, StreamProtocol)>>,
        usize,
    ),
    /// The remote does not speak bitswap: everything queued is dropped.
    Unsupported,
}

/// The bitswap connection handler.
pub struct Handler {
    queue: VecDeque<Message>,
    outbound: Outbound,
    failures: u8,
    inbound: FuturesUnordered<Inbound>,
    events: VecDeque<ToBehaviour>,
}

impl Handler {
    pub(crate) fn new() -> Self {
        Handler {
            queue: VecDeque::new(),
            outbound: Outbound::None,
            failures: 0,
            inbound: FuturesUnordered::new(),
            events: VecDeque::new(),
        }
    }

    fn drop_queue(&mut self) {
        let bytes: usize = self.queue.drain(..).map(|m| m.approx_size()).sum();
        if bytes > 0 {
            self.events.push_back(ToBehaviour::Drained(bytes));
        }
    }

    fn read_next(mut stream: Stream, protocol: StreamProtocol) -> Inbound {
        async move {
            Ok(protocol::read_message(&mut stream)
                .await?
                .map(|m| (stream, protocol, m)))
        }
        .boxed()
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = FromBehaviour;
    type ToBehaviour = ToBehaviour;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = Upgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Upgrade, ()> {
        SubstreamProtocol::new(Upgrade, ())
    }

    fn connection_keep_alive(&self) -> bool {
        // Busy while anything is queued or being written; idle connections are the swarm's
        // (and the connection manager's) to close.
        !self.queue.is_empty() || matches!(self.outbound, Outbound::Sending(..) | Outbound::Opening)
    }

    fn on_behaviour_event(&mut self, event: FromBehaviour) {
        match event {
            FromBehaviour::Send(msg) => {
                if matches!(self.outbound, Outbound::Unsupported) {
                    self.events
                        .push_back(ToBehaviour::Drained(msg.approx_size()));
                } else {
                    self.queue.push_back(msg);
                }
            }
        }
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<'_, Upgrade, Upgrade, (), ()>) {
        match event {
            // Beyond the limit the stream falls through to `_` and is dropped, which resets it.
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, protocol),
                ..
            }) if self.inbound.len() < MAX_INBOUND_STREAMS => {
                self.inbound.push(Self::read_next(stream, protocol));
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, protocol),
                ..
            }) => self.outbound = Outbound::Idle(stream, protocol),
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => match error {
                StreamUpgradeError::NegotiationFailed => {
                    self.outbound = Outbound::Unsupported;
                    self.drop_queue();
                    self.events.push_back(ToBehaviour::Unsupported);
                }
                other => {
                    self.outbound = Outbound::None;
                    self.failures += 1;
                    self.events
                        .push_back(ToBehaviour::StreamError(format!("open stream: {other}")));
                    if self.failures >= MAX_OUTBOUND_FAILURES {
                        self.drop_queue();
                    }
                }
            },
            _ => {}
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Upgrade, (), ToBehaviour>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
            }
            match std::mem::replace(&mut self.outbound, Outbound::None) {
                Outbound::None if !self.queue.is_empty() => {
                    self.outbound = Outbound::Opening;
                    return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                        protocol: SubstreamProtocol::new(Upgrade, ()),
                    });
                }
                Outbound::Idle(mut stream, protocol) => match self.queue.pop_front() {
                    Some(msg) => {
                        let size = msg.approx_size();
                        let encoded = msg.encode_parts(protocol::dialect(&protocol));
                        self.outbound = Outbound::Sending(
                            async move {
                                protocol::write_message(&mut stream, &encoded).await?;
                                Ok((stream, protocol))
                            }
                            .boxed(),
                            size,
                        );
                        continue;
                    }
                    None => self.outbound = Outbound::Idle(stream, protocol),
                },
                Outbound::Sending(mut fut, size) => match fut.poll_unpin(cx) {
                    Poll::Ready(Ok((stream, protocol))) => {
                        self.failures = 0;
                        self.outbound = Outbound::Idle(stream, protocol);
                        self.events.push_back(ToBehaviour::Drained(size));
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        // The message is lost with the stream; the client's timeouts re-ask.
                        self.failures += 1;
                        self.events.push_back(ToBehaviour::Drained(size));
                        self.events
                            .push_back(ToBehaviour::StreamError(format!("write: {e}")));
                        if self.failures >= MAX_OUTBOUND_FAILURES {
                            self.drop_queue();
                        }
                        continue;
                    }
                    Poll::Pending => self.outbound = Outbound::Sending(fut, size),
                },
                other => self.outbound = other,
            }
            match self.inbound.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(Some((stream, protocol, msg))))) => {
                    self.inbound.push(Self::read_next(stream, protocol));
                    return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(
                        ToBehaviour::Received(msg),
                    ));
                }
                Poll::Ready(Some(Ok(None))) => continue,
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(
                        ToBehaviour::StreamError(format!("read: {e}")),
                    ))
                }
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}
