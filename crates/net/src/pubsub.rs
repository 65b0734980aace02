//! Gossipsub with Kubo's semantics: several local subscribers per topic, our own messages
//! delivered to our own subscribers, publishing with no peers is not an error.

use std::collections::HashMap;

use libp2p::gossipsub::{self, IdentTopic, PublishError};
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use crate::values::{record_topic, Offer, Values};
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
    /// Follows a record key (see `values`); answered once the topic's peers were asked.
    Follow {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Unfollow {
        key: Vec<u8>,
        reply: oneshot::Sender<bool>,
    },
    /// Follows the key, keeps the value when it is the best, and publishes it.
    PutValue {
        key: Vec<u8>,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    FollowedKeys(oneshot::Sender<Vec<Vec<u8>>>),
}

/// What the pubsub commands work with besides the subscribers.
pub(crate) struct Context<'a> {
    pub(crate) gossip: Option<&'a mut gossipsub::Behaviour>,
    pub(crate) local: PeerId,
    pub(crate) seq: &'a mut u64,
    pub(crate) values: &'a Values,
    pub(crate) control: &'a libp2p_stream::Control,
}

/// Local subscribers by topic.
#[derive(Default)]
pub(crate) struct Subscribers {
    topics: HashMap<String, Vec<mpsc::Sender<PubsubMessage>>>,
}

const OFF: &str = "pubsub is not enabled (start the daemon with --enable-pubsub-experiment or set pubsub.enabled)";

impl Subscribers {
    pub(crate) fn handle(&mut self, cx: Context<'_>, cmd: Command) {
        let Context {
            gossip,
            local,
            seq,
            values,
            control,
        } = cx;
        let Some(gs) = gossip else {
            let off = || Err(Error::Invalid(OFF.into()));
            match cmd {
                Command::Publish { reply, .. }
                | Command::Subscribe { reply, .. }
                | Command::Follow { reply, .. }
                | Command::PutValue { reply, .. } => {
                    let _ = reply.send(off());
                }
                Command::Topics(reply) => {
                    let _ = reply.send(Vec::new());
                }
                Command::Peers { reply, .. } => {
                    let _ = reply.send(Vec::new());
                }
                Command::Unfollow { reply, .. } => {
                    let _ = reply.send(false);
                }
                Command::FollowedKeys(reply) => {
                    let _ = reply.send(Vec::new());
                }
            }
            return;
        };
        match cmd {
            Command::Publish { topic, data, reply } => {
                let _ = reply.send(self.publish(gs, local, seq, topic, data));
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
                self.prune(gs, values);
                let mut topics: Vec<String> = self.topics.keys().cloned().collect();
                topics.extend(values.topics());
                topics.sort();
                topics.dedup();
                let _ = reply.send(topics);
            }
            Command::Peers { topic, reply } => {
                let _ = reply.send(topic_peers(gs, topic.as_deref()));
            }
            Command::Follow { key, reply } => match follow(gs, values, control, &key) {
                Ok(Some(peers)) => {
                    let (values, control) = (values.clone(), control.clone());
                    tokio::spawn(async move {
                        values.fetch_from(control, key, peers).await;
                        let _ = reply.send(Ok(()));
                    });
                }
                Ok(None) => {
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Unfollow { key, reply } => {
                let was = values.unfollow(&key);
                let topic = record_topic(&key);
                if was && !self.topics.contains_key(&topic) {
                    gs.unsubscribe(&IdentTopic::new(topic));
                }
                let _ = reply.send(was);
            }
            Command::PutValue { key, value, reply } => {
                let result = follow(gs, values, control, &key).and_then(|_| {
                    let topic = record_topic(&key);
                    match values.offer(&topic, &value) {
                        Some(Offer::Invalid(e)) => Err(Error::Record(e)),
                        // go-libp2p-pubsub-router does not publish an older value.
                        Some(Offer::Worse) | None => Ok(()),
                        Some(Offer::Better | Offer::Same) => {
                            self.publish(gs, local, seq, topic, value)
                        }
                    }
                });
                let _ = reply.send(result);
            }
            Command::FollowedKeys(reply) => {
                let _ = reply.send(values.keys());
            }
        }
    }

    /// Publishes `data` on `topic` and hands it to our own subscribers of it.
    fn publish(
        &mut self,
        gs: &mut gossipsub::Behaviour,
        local: PeerId,
        seq: &mut u64,
        topic: String,
        data: Vec<u8>,
    ) -> Result<(), Error> {
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
        result
    }

    /// Publishes every value the store holds again, when that is due.
    pub(crate) fn rebroadcast(
        &mut self,
        gs: &mut gossipsub::Behaviour,
        local: PeerId,
        seq: &mut u64,
        values: &Values,
    ) {
        for (topic, value) in values.due_rebroadcast(std::time::Instant::now()) {
            if let Err(e) = self.publish(gs, local, seq, topic, value) {
                tracing::debug!("pubsub rebroadcast: {e}");
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

    /// Unsubscribes from topics whose subscribers are all gone (and which carry no followed
    /// record key).
    pub(crate) fn prune(&mut self, gs: &mut gossipsub::Behaviour, values: &Values) {
        self.topics.retain(|topic, subs| {
            subs.retain(|tx| !tx.is_closed());
            if subs.is_empty() {
                if !values.is_followed(topic) {
                    gs.unsubscribe(&IdentTopic::new(topic.clone()));
                }
                false
            } else {
                true
            }
        });
    }
}

/// Peers subscribed to `topic`, or to any topic, sorted.
fn topic_peers(gs: &gossipsub::Behaviour, topic: Option<&str>) -> Vec<PeerId> {
    let mut peers: Vec<PeerId> = gs
        .all_peers()
        .filter(|(_, topics)| match topic {
            Some(t) => topics.iter().any(|h| h.as_str() == t),
            None => !topics.is_empty(),
        })
        .map(|(p, _)| *p)
        .collect();
    peers.sort();
    peers
}

/// Follows `key`: subscribes to its topic and starts the fetch server. The topic's peers to
/// ask for its value when it was not followed yet, else `None`.
fn follow(
    gs: &mut gossipsub::Behaviour,
    values: &Values,
    control: &libp2p_stream::Control,
    key: &[u8],
) -> Result<Option<Vec<PeerId>>, Error> {
    if !values.follow(key)? {
        return Ok(None);
    }
    let topic = record_topic(key);
    if let Err(e) = gs.subscribe(&IdentTopic::new(topic.clone())) {
        values.unfollow(key);
        return Err(Error::Routing(format!("subscribe: {e}")));
    }
    if values.start_serving() {
        let store = values.clone();
        let lookup: crate::fetch::Lookup = std::sync::Arc::new(move |k: &[u8]| store.get(k));
        if let Err(e) = crate::fetch::serve(control.clone(), lookup) {
            tracing::warn!("fetch protocol: {e}");
        }
    }
    Ok(Some(topic_peers(gs, Some(&topic))))
}
