//! Gossipsub with Kubo's semantics: several local subscribers per topic, our own messages
//! delivered to our own subscribers, publishing with no peers is not an error.

use std::collections::HashMap;

use libp2p::gossipsub::{self, IdentTopic, PublishError};
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use crate::Error;

/// Messages queued per subscriber; a subscriber that falls this far behind loses messages
/// (counted in the log), as a slow Kubo subscriber does.
pub(crate) const SUBSCRIPTION_QUEUE: usize = 256;

/// A pubsub message as delivered to subscribers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubsubMessage {
    /// The publisher (signed).
    pub from: PeerId,
    /// The payload.
    pub data: Vec<u8>,
    /// The publisher's sequence number, 8 bytes big-endian.
    pub seqno: Vec<u8>,
    /// The topic.
    pub topic: String,
}

/// A live subscription; dropping it unsubscribes (when it was the topic's last).
pub struct Subscription {
    topic: String,
    rx: mpsc::Receiver<PubsubMessage>,
}

impl Subscription {
    pub(crate) fn new(topic: String, rx: mpsc::Receiver<PubsubMessage>) -> Self {
        Subscription { topic, rx }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message; `None` once the network stops.
    pub async fn next(&mut self) -> Option<PubsubMessage> {
        self.rx.recv().await
    }
}

pub(crate) enum Command {
    Publish {
        topic: String,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Subscribe {
        topic: String,
        tx: mpsc::Sender<PubsubMessage>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Topics(oneshot::Sender<Vec<String>>),
    Peers {
        topic: Option<String>,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
}

/// Local subscribers by topic.
#[derive(Default)]
pub(crate) struct Subscribers {
    topics: HashMap<String, Vec<mpsc::Sender<PubsubMessage>>>,
}

const OFF: &str = "pubsub is not enabled (start the daemon with --enable-pubsub-experiment or set pubsub.enabled)";

impl Subscribers {
    pub(crate) fn handle(
        &mut self,
        gossip: Option<&mut gossipsub::Behaviour>,
        local: PeerId,
        seq: &mut u64,
        cmd: Command,
    ) {
        let Some(gs) = gossip else {
            match cmd {
                Command::Publish { reply, .. } | Command::Subscribe { reply, .. } => {
                    let _ = reply.send(Err(Error::Invalid(OFF.into())));
                }
                Command::Topics(reply) => {
                    let _ = reply.send(Vec::new());
                }
                Command::Peers { reply, .. } => {
                    let _ = reply.send(Vec::new());
                }
            }
            return;
        };
        match cmd {
            Command::Publish { topic, data, reply } => {
                let result = match gs.publish(IdentTopic::new(topic.clone()), data.clone()) {
                    Ok(_) | Err(PublishError::NoPeersSubscribedToTopic) => Ok(()),
                    Err(PublishError::Duplicate) => Ok(()),
                    Err(e) => Err(Error::Routing(format!("publish: {e}"))),
                };
                if result.is_ok() {
                    // go-libp2p-pubsub hands a node's own messages to its own subscribers;
                    // gossipsub here does not, so do it. The seqno is ours, not the wire's.
                    *seq += 1;
                    self.deliver(PubsubMessage {
                        from: local,
                        data,
                        seqno: seq.to_be_bytes().to_vec(),
                        topic,
                    });
                }
                let _ = reply.send(result);
            }
            Command::Subscribe { topic, tx, reply } => {
                let result = gs
                    .subscribe(&IdentTopic::new(topic.clone()))
                    .map(|_| ())
                    .map_err(|e| Error::Routing(format!("subscribe: {e}")));
                if result.is_ok() {
                    self.topics.entry(topic).or_default().push(tx);
                }
                let _ = reply.send(result);
            }
            Command::Topics(reply) => {
                self.prune(gs);
                let mut topics: Vec<String> = self.topics.keys().cloned().collect();
                topics.sort();
                let _ = reply.send(topics);
            }
            Command::Peers { topic, reply } => {
                let mut peers: Vec<PeerId> = gs
                    .all_peers()
                    .filter(|(_, topics)| match &topic {
                        Some(t) => topics.iter().any(|h| h.as_str() == t),
                        None => !topics.is_empty(),
                    })
                    .map(|(p, _)| *p)
                    .collect();
                peers.sort();
                let _ = reply.send(peers);
            }
        }
    }

    /// Hands a message to every live subscriber of its topic.
    pub(crate) fn deliver(&mut self, msg: PubsubMessage) {
        if let Some(subs) = self.topics.get_mut(&msg.topic) {
            subs.retain(|tx| match tx.try_send(msg.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(topic = %msg.topic, "pubsub subscriber is behind: message dropped");
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
    }

    /// Unsubscribes from topics whose subscribers are all gone.
    pub(crate) fn prune(&mut self, gs: &mut gossipsub::Behaviour) {
        self.topics.retain(|topic, subs| {
            subs.retain(|tx| !tx.is_closed());
            if subs.is_empty() {
                gs.unsubscribe(&IdentTopic::new(topic.clone()));
                false
            } else {
                true
            }
        });
    }
}
