//! The pubsub value store behind IPNS over pubsub, as go-libp2p-pubsub-router keeps it.
//!
//! Each followed record key has a topic, `/record/` + base64url(key). The store holds the best
//! valid value for each: one published on the topic, one put here, or one fetched
//! (`/libp2p/fetch/0.0.1`, see [`crate::fetch`]) from a peer as it joins the topic or when the
//! key is first followed. It serves what it holds to peers that ask. Messages on a followed
//! topic pass gossipsub validation only when they improve on what is held: an invalid record is
//! rejected and a stale or repeated one ignored, so neither travels further. Every value held is published again each [`REBROADCAST`]. See docs/network.md.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use parking_lot::Mutex;

use crate::records::{select, validate, RecordError};

/// Keys followed at most (each a topic subscription).
pub const MAX_FOLLOWED: usize = 256;

/// How often every value held goes out again (go-libp2p-pubsub-router's default).
pub(crate) const REBROADCAST: Duration = Duration::from_secs(600);

/// Fetches from joining peers in flight at most; a join beyond this is not asked (its value
/// still arrives with the next publish or rebroadcast).
const MAX_FETCHES: usize = 64;

/// The topic a record key's values travel on (go-libp2p-pubsub-router's `KeyToTopic`).
pub fn record_topic(key: &[u8]) -> String {
    format!(
        "/record/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    )
}

/// How an offered value compares with the one held.
#[derive(Debug)]
pub(crate) enum Offer {
    /// It is better (or the first): now held.
    Better,
    /// The same bytes as held.
    Same,
    /// Older than what is held: dropped.
    Worse,
    /// Not a valid record for the key.
    Invalid(RecordError),
}

struct Followed {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    /// By topic.
    followed: HashMap<String, Followed>,
    last_rebroadcast: Option<Instant>,
    serving: bool,
}

/// The store, shared by the event loop, the fetch server and fetch tasks.
#[derive(Clone, Default)]
pub(crate) struct Values {
    inner: Arc<Mutex<Inner>>,
    fetches: Arc<AtomicUsize>,
}

impl Values {
    /// Whether `topic` is a followed key's.
    pub(crate) fn is_followed(&self, topic: &str) -> bool {
        self.inner.lock().followed.contains_key(topic)
    }

    /// The followed key `topic` carries.
    pub(crate) fn key_of(&self, topic: &str) -> Option<Vec<u8>> {
        self.inner.lock().followed.get(topic).map(|f| f.key.clone())
    }

    /// Starts following `key`: `Ok(true)` when it was not followed yet.
    pub(crate) fn follow(&self, key: &[u8]) -> Result<bool, crate::Error> {
        let mut inner = self.inner.lock();
        let topic = record_topic(key);
        if inner.followed.contains_key(&topic) {
            return Ok(false);
        }
        if inner.followed.len() >= MAX_FOLLOWED {
            return Err(crate::Error::Invalid(format!(
                "already following {MAX_FOLLOWED} keys over pubsub"
            )));
        }
        inner.followed.insert(
            topic,
            Followed {
                key: key.to_vec(),
                value: None,
            },
        );
        Ok(true)
    }

    /// Stops following `key`; false when it was not followed.
    pub(crate) fn unfollow(&self, key: &[u8]) -> bool {
        self.inner
            .lock()
            .followed
            .remove(&record_topic(key))
            .is_some()
    }

    /// Marks the fetch server as started; true the first time.
    pub(crate) fn start_serving(&self) -> bool {
        !std::mem::replace(&mut self.inner.lock().serving, true)
    }

    /// Offers `value` for the key `topic` stands for; `None` when that key is not followed.
    pub(crate) fn offer(&self, topic: &str, value: &[u8]) -> Option<Offer> {
        let mut inner = self.inner.lock();
        let f = inner.followed.get_mut(topic)?;
        if let Err(e) = validate(&f.key, value, SystemTime::now()) {
            return Some(Offer::Invalid(e));
        }
        Some(match &f.value {
            Some(old) if old.as_slice() == value => Offer::Same,
            Some(old) if select(&f.key, &[value, old]) != Some(0) => Offer::Worse,
            _ => {
                f.value = Some(value.to_vec());
                Offer::Better
            }
        })
    }

    /// The value held for `key`, while it is still valid.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let inner = self.inner.lock();
        let value = inner.followed.get(&record_topic(key))?.value.clone()?;
        validate(key, &value, SystemTime::now()).ok()?;
        Some(value)
    }

    /// The followed keys, sorted.
    pub(crate) fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .inner
            .lock()
            .followed
            .values()
            .map(|f| f.key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The followed topics.
    pub(crate) fn topics(&self) -> Vec<String> {
        self.inner.lock().followed.keys().cloned().collect()
    }

    /// Every (topic, value) held when a rebroadcast is due, else nothing.
    pub(crate) fn due_rebroadcast(&self, now: Instant) -> Vec<(String, Vec<u8>)> {
        let mut inner = self.inner.lock();
        let last = *inner.last_rebroadcast.get_or_insert(now);
        if now.duration_since(last) < REBROADCAST {
            return Vec::new();
        }
        inner.last_rebroadcast = Some(now);
        inner
            .followed
            .iter()
            .filter_map(|(t, f)| Some((t.clone(), f.value.clone()?)))
            .collect()
    }

    /// Asks each of `peers` for `key` at once and offers what they answer; returns when all
    /// have answered or timed out. At most [`MAX_FETCHES`] run across all calls; peers
    /// beyond that are not asked.
    pub(crate) async fn fetch_from(
        &self,
        control: libp2p_stream::Control,
        key: Vec<u8>,
        peers: Vec<libp2p::PeerId>,
    ) {
        let topic = record_topic(&key);
        let asks = peers.into_iter().filter_map(|peer| {
            let slot = FetchSlot::take(&self.fetches)?;
            let (control, key, topic) = (control.clone(), key.clone(), topic.clone());
            Some(async move {
                let _slot = slot;
                match crate::fetch::fetch(control, peer, &key).await {
                    Ok(Some(value)) => match self.offer(&topic, &value) {
                        Some(Offer::Invalid(e)) => {
                            tracing::debug!(%peer, "fetched record is invalid: {e}")
                        }
                        Some(o) => tracing::debug!(%peer, "fetched a record: {o:?}"),
                        None => {}
                    },
                    Ok(None) => tracing::debug!(%peer, "fetch: not found"),
                    Err(e) => tracing::debug!(%peer, "{e}"),
                }
            })
        });
        futures::future::join_all(asks.collect::<Vec<_>>()).await;
    }
}

/// One of the [`MAX_FETCHES`] slots, given back when dropped.
struct FetchSlot(Arc<AtomicUsize>);

impl FetchSlot {
    fn take(count: &Arc<AtomicUsize>) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_FETCHES).then_some(n + 1)
            })
            .ok()
            .map(|_| FetchSlot(count.clone()))
    }
}

impl Drop for FetchSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfs_kit_ipns::{Keypair, Record, RecordOptions};

    fn record(key: &Keypair, seq: u64, lifetime: Duration) -> Vec<u8> {
        let opts = RecordOptions {
            sequence: seq,
            validity: SystemTime::now() + lifetime,
            ttl: Duration::from_secs(60),
            v1_compat: false,
        };
        Record::create(key, b"/ipfs/bafkqaaa", &opts)
            .expect("record")
            .encode()
    }

    fn routing_key(key: &Keypair) -> Vec<u8> {
        key.public().peer_id().to_name().routing_key()
    }

    #[test]
    fn keeps_the_best_valid_value() {
        let kp = Keypair::from_seed(&[7; 32]);
        let key = routing_key(&kp);
        let topic = record_topic(&key);
        let values = Values::default();
        assert!(values.offer(&topic, b"x").is_none(), "not followed");
        assert!(values.follow(&key).unwrap());
        assert!(!values.follow(&key).unwrap());
        assert!(matches!(
            values.offer(&topic, b"junk"),
            Some(Offer::Invalid(_))
        ));
        let (one, two) = (
            record(&kp, 1, Duration::from_secs(3600)),
            record(&kp, 2, Duration::from_secs(3600)),
        );
        assert!(matches!(values.offer(&topic, &two), Some(Offer::Better)));
        assert!(matches!(values.offer(&topic, &two), Some(Offer::Same)));
        assert!(matches!(values.offer(&topic, &one), Some(Offer::Worse)));
        assert_eq!(values.get(&key), Some(two));
        // Another name's record is not valid for this key.
        let other = record(&Keypair::from_seed(&[8; 32]), 9, Duration::from_secs(3600));
        assert!(matches!(
            values.offer(&topic, &other),
            Some(Offer::Invalid(_))
        ));
        assert_eq!(values.keys(), vec![key.clone()]);
        assert!(values.unfollow(&key));
        assert_eq!(values.get(&key), None);
    }

    #[test]
    fn rebroadcasts_once_per_interval() {
        let kp = Keypair::from_seed(&[9; 32]);
        let key = routing_key(&kp);
        let values = Values::default();
        values.follow(&key).unwrap();
        values.offer(
            &record_topic(&key),
            &record(&kp, 1, Duration::from_secs(3600)),
        );
        let t = Instant::now();
        assert!(values.due_rebroadcast(t).is_empty(), "starts the clock");
        assert!(values.due_rebroadcast(t + REBROADCAST / 2).is_empty());
        assert_eq!(values.due_rebroadcast(t + REBROADCAST).len(), 1);
        assert!(values.due_rebroadcast(t + REBROADCAST).is_empty());
    }

    #[test]
    fn topics_are_go_key_to_topic() {
        assert_eq!(record_topic(b"/ipns/\x00\x01"), "/record/L2lwbnMvAAE");
    }

    #[test]
    fn fetch_slots_are_bounded_and_returned() {
        let count = Arc::new(AtomicUsize::new(0));
        let slots: Vec<FetchSlot> = (0..MAX_FETCHES)
            .map(|_| FetchSlot::take(&count).expect("a slot"))
            .collect();
        assert!(FetchSlot::take(&count).is_none());
        drop(slots);
        assert_eq!(count.load(Ordering::Acquire), 0);
    }
}
