//! The Kademlia store: records (`routing get|put`, IPNS) are kept by libp2p's [`MemoryStore`];
//! provider records by a compact map of our own.
//!
//! libp2p's `MemoryStore` keeps each key's providers in an inline array sized for 20 records
//! (about 3 KiB per key even with one provider) and caps the number of provider keys at 1,024,
//! which a node providing or storing 100,000 keys far exceeds. Here a key costs what its
//! providers take, and the bounds are ours:
//!
//! - providers from other peers: at most [`MAX_REMOTE_PROVIDERS`] records in all, at most
//!   [`MAX_PROVIDERS_PER_KEY`] per key (more are ignored, as libp2p and Kubo do, which blunts
//!   Sybil floods), each with at most [`MAX_PROVIDER_ADDRS`] addresses;
//! - our own provider records (what this node provides) are bounded by what it stores, not by
//!   peers, so they do not count against the remote bound.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use libp2p::kad::store::{Error, MemoryStore, MemoryStoreConfig, RecordStore, Result};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::{Multiaddr, PeerId};

/// Provider records from other peers kept at most (about 150 bytes each).
pub const MAX_REMOTE_PROVIDERS: usize = 1_000_000;
/// Providers kept per key (Kademlia's replication factor).
pub const MAX_PROVIDERS_PER_KEY: usize = 20;
/// Addresses kept per provider record.
pub const MAX_PROVIDER_ADDRS: usize = 8;

/// One provider of a key.
struct Entry {
    peer: PeerId,
    expires: Option<Instant>,
    addrs: Vec<Multiaddr>,
}

/// The node's Kademlia store.
pub struct Store {
    local: PeerId,
    records: MemoryStore,
    providers: HashMap<RecordKey, Vec<Entry>>,
    /// Records in `providers` whose provider is another peer.
    remote: usize,
    /// Keys this node provides (entries with `peer == local`).
    local_keys: usize,
}

impl Store {
    /// An empty store for the node `local`, its value records bounded by `records`.
    pub fn with_record_config(local: PeerId, records: MemoryStoreConfig) -> Self {
        Store {
            local,
            records: MemoryStore::with_config(local, records),
            providers: HashMap::new(),
            remote: 0,
            local_keys: 0,
        }
    }

    /// How many keys this node provides.
    pub fn provided_keys(&self) -> usize {
        self.local_keys
    }

    /// How many provider records from other peers are stored.
    pub fn remote_providers(&self) -> usize {
        self.remote
    }

    fn record_of(key: &RecordKey, e: &Entry) -> ProviderRecord {
        ProviderRecord {
            key: key.clone(),
            provider: e.peer,
            expires: e.expires,
            addresses: e.addrs.clone(),
        }
    }
}

/// Our provided keys as provider records (libp2p's own republishing job reads them; ours is
/// off, so this is for completeness of the trait).
pub struct Provided<'a> {
    inner: std::collections::hash_map::Iter<'a, RecordKey, Vec<Entry>>,
    local: PeerId,
}

impl<'a> Iterator for Provided<'a> {
    type Item = Cow<'a, ProviderRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        for (key, entries) in self.inner.by_ref() {
            if let Some(e) = entries.iter().find(|e| e.peer == self.local) {
                return Some(Cow::Owned(Store::record_of(key, e)));
            }
        }
        None
    }
}

impl RecordStore for Store {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = Provided<'a>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.records.get(k)
    }

    fn put(&mut self, r: Record) -> Result<()> {
        self.records.put(r)
    }

    fn remove(&mut self, k: &RecordKey) {
        self.records.remove(k)
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.records.records()
    }

    fn add_provider(&mut self, mut record: ProviderRecord) -> Result<()> {
        let is_local = record.provider == self.local;
        record.addresses.truncate(MAX_PROVIDER_ADDRS);
        if !is_local && self.remote >= MAX_REMOTE_PROVIDERS {
            // An update of a record we hold is still taken below; only growth is refused.
            let known = self
                .providers
                .get(&record.key)
                .is_some_and(|v| v.iter().any(|e| e.peer == record.provider));
            if !known {
                return Err(Error::MaxProvidedKeys);
            }
        }
        let entries = self.providers.entry(record.key).or_default();
        if let Some(e) = entries.iter_mut().find(|e| e.peer == record.provider) {
            e.expires = record.expires;
            e.addrs = record.addresses;
            return Ok(());
        }
        // Our own record always has a place: it replaces the furthest-expiring remote one.
        if entries.len() >= MAX_PROVIDERS_PER_KEY {
            if !is_local {
                return Ok(());
            }
            entries.pop();
            self.remote -= 1;
        }
        entries.push(Entry {
            peer: record.provider,
            expires: record.expires,
            addrs: record.addresses,
        });
        if is_local {
            self.local_keys += 1;
        } else {
            self.remote += 1;
        }
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.providers
            .get(key)
            .map(|v| v.iter().map(|e| Store::record_of(key, e)).collect())
            .unwrap_or_default()
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        Provided {
            inner: self.providers.iter(),
            local: self.local,
        }
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        let Some(entries) = self.providers.get_mut(k) else {
            return;
        };
        let before = entries.len();
        entries.retain(|e| e.peer != *p);
        if entries.len() < before {
            if *p == self.local {
                self.local_keys -= 1;
            } else {
                self.remote -= 1;
            }
        }
        if entries.is_empty() {
            self.providers.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &[u8], peer: PeerId) -> ProviderRecord {
        ProviderRecord::new(RecordKey::new(&key), peer, Vec::new())
    }

    #[test]
    fn counts_local_and_remote_and_bounds_per_key() {
        let local = PeerId::random();
        let mut s = Store::with_record_config(local, MemoryStoreConfig::default());
        s.add_provider(rec(b"a", local)).unwrap();
        s.add_provider(rec(b"a", local)).unwrap();
        assert_eq!(s.provided_keys(), 1);
        for _ in 0..MAX_PROVIDERS_PER_KEY + 5 {
            s.add_provider(rec(b"b", PeerId::random())).unwrap();
        }
        assert_eq!(s.remote_providers(), MAX_PROVIDERS_PER_KEY);
        assert_eq!(
            s.providers(&RecordKey::new(&b"b")).len(),
            MAX_PROVIDERS_PER_KEY
        );
        // Our own record displaces a remote one on a full key.
        s.add_provider(rec(b"b", local)).unwrap();
        assert_eq!(s.provided_keys(), 2);
        assert_eq!(s.remote_providers(), MAX_PROVIDERS_PER_KEY - 1);
        assert_eq!(s.provided().count(), 2);
        s.remove_provider(&RecordKey::new(&b"b"), &local);
        s.remove_provider(&RecordKey::new(&b"a"), &local);
        assert_eq!(s.provided_keys(), 0);
        assert!(s.providers(&RecordKey::new(&b"a")).is_empty());
    }
}
