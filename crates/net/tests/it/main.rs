//! Two and three ipfs-kit network nodes on loopback: bitswap both ways, DAG fetches from several
//! providers, pubsub, and the DHT finding providers.

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod hostile;
mod hostile_dht;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ipfs_kit_block::{codec, dagpb, Block, Bytes, Cid, HashAlg};
use ipfs_kit_net::{BlockStore, Config, Keypair, Network, RoutingMode};
use parking_lot::Mutex;

#[derive(Default)]
struct MemStore(Mutex<HashMap<Cid, Bytes>>);

impl BlockStore for MemStore {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, String> {
        Ok(self.0.lock().get(cid).cloned())
    }
    fn size(&self, cid: &Cid) -> Result<Option<u64>, String> {
        Ok(self.0.lock().get(cid).map(|b| b.len() as u64))
    }
    fn put_many(&self, blocks: Vec<Block>) -> Result<(), String> {
        let mut m = self.0.lock();
        for b in blocks {
            let (cid, data) = b.into_parts();
            m.insert(cid, data);
        }
        Ok(())
    }
}

impl MemStore {
    fn put(&self, b: &Block) {
        self.0.lock().insert(*b.cid(), b.data().clone());
    }
    fn has(&self, cid: &Cid) -> bool {
        self.0.lock().contains_key(cid)
    }
}

async fn node(routing: RoutingMode, pubsub: bool) -> (Network, Arc<MemStore>) {
    let store = Arc::new(MemStore::default());
    let mut config = Config::new(Keypair::generate_ed25519());
    config.routing = routing;
    config.pubsub = pubsub;
    let (net, _task) = Network::start(config, store.clone()).await.unwrap();
    (net, store)
}

async fn tcp_addr(net: &Network) -> libp2p::Multiaddr {
    let (listen, _) = net.addrs().await.unwrap();
    let addr = listen
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .unwrap();
    addr.with(libp2p::multiaddr::Protocol::P2p(net.peer_id()))
}

/// A two-level dag-pb tree over `n` raw leaves of `size` bytes; returns (root, all blocks).
fn tree(n: usize, size: usize, seed: u8) -> (Cid, Vec<Block>) {
    let leaves: Vec<Block> = (0..n)
        .map(|i| {
            let mut data = vec![seed; size];
            data[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Block::encode(codec::RAW, HashAlg::Sha2_256, 1, data)
        })
        .collect();
    let node = dagpb::PbNode {
        links: leaves
            .iter()
            .map(|b| dagpb::PbLink {
                cid: *b.cid(),
                name: Some(String::new()),
                tsize: Some(b.data().len() as u64),
            })
            .collect(),
        data: None,
    };
    let root = Block::encode(codec::DAG_PB, HashAlg::Sha2_256, 1, node.encode());
    let cid = *root.cid();
    let mut all = leaves;
    all.push(root);
    (cid, all)
}

/// A store whose disk is full: every write fails.
struct FullStore;

impl BlockStore for FullStore {
    fn get(&self, _: &Cid) -> Result<Option<Bytes>, String> {
        Ok(None)
    }
    fn size(&self, _: &Cid) -> Result<Option<u64>, String> {
        Ok(None)
    }
    fn put_many(&self, _: Vec<Block>) -> Result<(), String> {
        Err("no space left on device".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_is_handed_over_before_its_commit_and_a_failed_commit_surfaces_at_settle() {
    let (a, sa) = node(RoutingMode::None, false).await;
    let (b, _task) = Network::start(
        Config {
            routing: RoutingMode::None,
            ..Config::new(Keypair::generate_ed25519())
        },
        Arc::new(FullStore),
    )
    .await
    .unwrap();
    b.connect(tcp_addr(&a).await).await.unwrap();
    let x = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"unstorable"[..]);
    sa.put(&x);
    let mark = b.store_mark();
    // The reader gets the verified block even though it can never be stored...
    let got = b
        .get_block(*x.cid(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got, x);
    // ...but whoever needs it durable (a pin) learns that it is not.
    let err = b.settle(mark).await.unwrap_err().to_string();
    assert!(err.contains("no space left on device"), "{err}");
    // A failure is reported to those who fetched before it, not to later ones.
    b.settle(b.store_mark()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_move_both_ways() {
    let (a, sa) = node(RoutingMode::None, false).await;
    let (b, sb) = node(RoutingMode::None, false).await;
    b.connect(tcp_addr(&a).await).await.unwrap();
    let x = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"from a"[..]);
    let y = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"from b"[..]);
    sa.put(&x);
    sb.put(&y);
    let got = b
        .get_block(*x.cid(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got, x);
    // Handed over before the writer's commit; settling waits for it.
    b.settle(b.store_mark()).await.unwrap();
    assert!(sb.has(x.cid()), "stored once settled");
    let got = a
        .get_block(*y.cid(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got, y);
    let stat = a.bitswap_stat().await.unwrap();
    assert_eq!((stat.stats.blocks_sent, stat.stats.blocks_received), (1, 1));
    assert_eq!(stat.peers, vec![b.peer_id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_blocks_time_out_cleanly() {
    let (a, _) = node(RoutingMode::None, false).await;
    let (b, _) = node(RoutingMode::None, false).await;
    b.connect(tcp_addr(&a).await).await.unwrap();
    let nowhere = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"nobody has this"[..]);
    let err = b
        .get_block(*nowhere.cid(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, ipfs_kit_net::Error::NotFound(_)), "{err}");
    // The want is withdrawn with the request.
    for _ in 0..50 {
        if b.wantlist(None).await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("want not withdrawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_comes_from_three_providers() {
    let (root, blocks) = tree(300, 16 * 1024, 7);
    let mut providers = Vec::new();
    for _ in 0..3 {
        let (p, s) = node(RoutingMode::None, false).await;
        for b in &blocks {
            s.put(b);
        }
        providers.push(p);
    }
    let (c, sc) = node(RoutingMode::None, false).await;
    for p in &providers {
        c.connect(tcp_addr(p).await).await.unwrap();
    }
    // A connection is up before its bitswap streams are: on a loaded machine a provider whose
    // protocol came late would be asked for nothing. Wait until all three are bitswap peers.
    for _ in 0..200 {
        if c.bitswap_stat().await.unwrap().peers.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.bitswap_stat().await.unwrap().peers.len(), 3);
    let stats = c.fetch_dag(root, Duration::from_secs(30)).await.unwrap();
    assert_eq!(stats.blocks_fetched, 301);
    assert!(blocks.iter().all(|b| sc.has(b.cid())));
    // Every provider served part of it.
    for p in &providers {
        let sent = p.bitswap_stat().await.unwrap().stats.blocks_sent;
        assert!(sent > 0, "a provider served nothing");
    }
    // A second fetch finds everything local.
    let again = c.fetch_dag(root, Duration::from_secs(5)).await.unwrap();
    assert_eq!((again.blocks_fetched, again.blocks_local), (0, 301));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_flows_between_nodes() {
    let (a, _) = node(RoutingMode::None, true).await;
    let (b, _) = node(RoutingMode::None, true).await;
    b.connect(tcp_addr(&a).await).await.unwrap();
    let mut sub = b.subscribe("ipfs-kit-test".into()).await.unwrap();
    let mut own = a.subscribe("ipfs-kit-test".into()).await.unwrap();
    // Wait until a sees b's subscription, then publish.
    for _ in 0..100 {
        if a.pubsub_peers(Some("ipfs-kit-test".into())).await.unwrap() == vec![b.peer_id()] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.publish("ipfs-kit-test".into(), b"hello".to_vec())
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (msg.from, msg.data.as_slice()),
        (a.peer_id(), &b"hello"[..])
    );
    let mine = own.next().await.unwrap();
    assert_eq!(mine.data, b"hello");
    assert_eq!(
        a.pubsub_topics().await.unwrap(),
        vec!["ipfs-kit-test".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dht_finds_a_provider_we_are_not_connected_to() {
    // c knows only b; a provides a block and knows b. c finds a through b and fetches.
    let (a, sa) = node(RoutingMode::Server, false).await;
    let (b, _) = node(RoutingMode::Server, false).await;
    let (c, _) = node(RoutingMode::Server, false).await;
    a.connect(tcp_addr(&b).await).await.unwrap();
    c.connect(tcp_addr(&b).await).await.unwrap();
    let x = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"provided"[..]);
    sa.put(&x);
    // Identify must have told a about b's kad protocol before providing works.
    let mut provided = false;
    for _ in 0..100 {
        if a.provide(vec![*x.cid()]).await.is_ok() {
            let mut found = c.find_providers(*x.cid(), 1).await.unwrap();
            if let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(5), found.recv()).await {
                assert_eq!(p.peer, a.peer_id());
                provided = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(provided, "provider record not found");
    let got = c
        .get_block(*x.cid(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got, x);
}

fn ipns_record(key: &ipfs_kit_ipns::Keypair, seq: u64, value: &str) -> Vec<u8> {
    ipfs_kit_ipns::Record::create(
        key,
        value.as_bytes(),
        &ipfs_kit_ipns::RecordOptions {
            sequence: seq,
            validity: std::time::SystemTime::now() + Duration::from_secs(3600),
            ttl: Duration::from_secs(60),
            v1_compat: true,
        },
    )
    .unwrap()
    .encode()
}

/// Waits until `net` knows `peer` is subscribed to `topic`.
async fn until_on_topic(net: &Network, topic: &str, peer: libp2p::PeerId) {
    for _ in 0..200 {
        if net
            .pubsub_peers(Some(topic.to_string()))
            .await
            .unwrap()
            .contains(&peer)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{peer} never joined {topic}");
}

/// The pubsub value store (IPNS over pubsub): following a key fetches the value from the
/// topic's peers before it returns; on the topic, invalid and stale records go no further
/// than the first node (not delivered, not kept), better ones pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pubsub_value_store_fetches_and_validates() {
    let (a, _) = node(RoutingMode::None, true).await;
    let (b, _) = node(RoutingMode::None, true).await;
    let (c, _) = node(RoutingMode::None, true).await;
    let name_key = ipfs_kit_ipns::Keypair::from_seed(&[42; 32]);
    let key = name_key.public().peer_id().to_name().routing_key();
    let topic = ipfs_kit_net::record_topic(&key);
    let recs: Vec<Vec<u8>> = (0..4)
        .map(|seq| ipns_record(&name_key, seq, &format!("/ipfs/v{seq}")))
        .collect();
    let rec = |seq: usize| recs[seq].clone();

    // a holds the record before anyone is there to hear it published.
    a.put_value_pubsub(key.clone(), rec(1)).await.unwrap();
    assert!(a
        .put_value_pubsub(key.clone(), b"junk".to_vec())
        .await
        .is_err());
    b.connect(tcp_addr(&a).await).await.unwrap();
    until_on_topic(&b, &topic, a.peer_id()).await;
    assert_eq!(b.pubsub_value(&key), None);
    b.follow_value(key.clone()).await.unwrap();
    assert_eq!(
        b.pubsub_value(&key),
        Some(rec(1)),
        "fetched while following"
    );
    assert_eq!(b.followed_values().await.unwrap(), vec![key.clone()]);

    // c, on the topic through b only, sends junk, then an older record, then a newer one.
    let mut heard = b.subscribe(topic.clone()).await.unwrap();
    c.connect(tcp_addr(&b).await).await.unwrap();
    until_on_topic(&c, &topic, b.peer_id()).await;
    for data in [b"junk".to_vec(), rec(0), rec(3)] {
        c.publish(topic.clone(), data).await.unwrap();
    }
    let first = tokio::time::timeout(Duration::from_secs(30), heard.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.from, first.data), (c.peer_id(), rec(3)));
    assert_eq!(b.pubsub_value(&key), Some(rec(3)));
    // a hears it from b, and an older put at a is kept back.
    for _ in 0..200 {
        if a.pubsub_value(&key) == Some(rec(3)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.pubsub_value(&key), Some(rec(3)));
    a.put_value_pubsub(key.clone(), rec(2)).await.unwrap();
    assert_eq!(a.pubsub_value(&key), Some(rec(3)));

    assert!(b.unfollow_value(key.clone()).await.unwrap());
    assert!(!b.unfollow_value(key.clone()).await.unwrap());
    assert_eq!(b.pubsub_value(&key), None);
    // b's own subscriber keeps the topic joined.
    assert_eq!(b.pubsub_topics().await.unwrap(), vec![topic]);
}

/// Puts `value` from `from` until some peer takes it (identify must first have told `from`
/// about its neighbours' DHT protocols).
async fn put_when_ready(from: &Network, key: &[u8], value: &[u8]) {
    for _ in 0..100 {
        if from.put_record(key.to_vec(), value.to_vec()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no peer took the record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipns_records_travel_through_the_dht_and_only_valid_better_ones_win() {
    // A chain a - b - c - d: d never talks to a directly, yet gets what a put.
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(node(RoutingMode::Server, false).await.0);
    }
    for w in nodes.windows(2) {
        w[0].connect(tcp_addr(&w[1]).await).await.unwrap();
    }
    let (a, d) = (&nodes[0], &nodes[3]);
    let key = ipfs_kit_ipns::Keypair::from_seed(&[7; 32]);
    let name = key.public().peer_id().to_name();
    let rkey = name.routing_key();
    let v1 = ipns_record(&key, 1, "/ipfs/bafkqaaa");
    put_when_ready(a, &rkey, &v1).await;
    let mut got = None;
    for _ in 0..100 {
        if let Ok(v) = d.get_record(rkey.clone()).await {
            got = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.as_deref(), Some(&v1[..]), "d did not find a's record");

    // A newer record replaces it everywhere it lands; an older one is refused.
    let v2 = ipns_record(&key, 2, "/ipfs/bafkqaaa/two");
    a.put_record(rkey.clone(), v2.clone()).await.unwrap();
    assert_eq!(d.get_record(rkey.clone()).await.unwrap(), v2);
    assert!(matches!(
        a.put_record(rkey.clone(), v1.clone()).await,
        Err(ipfs_kit_net::Error::Record(_))
    ));
    // Records that do not validate are refused before anything is sent or stored.
    let other = ipfs_kit_ipns::Keypair::from_seed(&[8; 32]);
    let forged = ipns_record(&other, 9, "/ipfs/bafkqaaa/forged");
    assert!(a.put_record(rkey.clone(), forged).await.is_err());
    assert!(a.put_record(b"/v/x".to_vec(), b"x".to_vec()).await.is_err());
    assert!(d.get_record(b"/v/x".to_vec()).await.is_err());
    assert_eq!(d.get_record(rkey.clone()).await.unwrap(), v2);

    // A public key record is checked against its peer ID.
    let mut pk_key = b"/pk/".to_vec();
    pk_key.extend_from_slice(&key.public().peer_id().multihash().to_bytes());
    put_when_ready(a, &pk_key, &key.public().to_protobuf()).await;
    assert_eq!(
        d.get_record(pk_key.clone()).await.unwrap(),
        key.public().to_protobuf()
    );
    assert!(a
        .put_record(pk_key, other.public().to_protobuf())
        .await
        .is_err());

    // Unknown keys are not found, not an error of the network.
    let nobody = ipfs_kit_ipns::Keypair::from_seed(&[9; 32])
        .public()
        .peer_id()
        .to_name()
        .routing_key();
    assert!(matches!(
        d.get_record(nobody).await,
        Err(ipfs_kit_net::Error::Routing(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_query_and_findpeer_reach_peers_we_are_not_connected_to() {
    // a - b - c: a learns c's addresses and finds it among the closest peers through b.
    let (a, _) = node(RoutingMode::Server, false).await;
    let (b, _) = node(RoutingMode::Server, false).await;
    let (c, _) = node(RoutingMode::Server, false).await;
    a.connect(tcp_addr(&b).await).await.unwrap();
    c.connect(tcp_addr(&b).await).await.unwrap();
    let mut found = None;
    for _ in 0..100 {
        if let Ok(addrs) = a.find_peer(c.peer_id()).await {
            found = Some(addrs);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addrs = found.expect("c not found");
    let (c_listen, _) = c.addrs().await.unwrap();
    assert!(addrs.iter().any(|x| c_listen.contains(x)), "{addrs:?}");
    let closest = a.closest_peers(c.peer_id().to_bytes()).await.unwrap();
    let ids: Vec<_> = closest.iter().map(|(p, _)| *p).collect();
    assert!(ids.contains(&c.peer_id()), "{ids:?}");
    assert!(ids.contains(&b.peer_id()), "{ids:?}");
    assert!(ids.len() <= ipfs_kit_net::records::CLOSEST);
}

/// A node with `config` tweaked by `f`.
async fn node_with(f: impl FnOnce(&mut Config)) -> (Network, Arc<MemStore>) {
    let store = Arc::new(MemStore::default());
    let mut config = Config::new(Keypair::generate_ed25519());
    f(&mut config);
    let (net, _task) = Network::start(config, store.clone()).await.unwrap();
    (net, store)
}

/// Waits until `net`'s DHT routing table holds `n` peers (identify tells kad who speaks it).
async fn until_dht_knows(net: &Network, n: usize) {
    for _ in 0..200 {
        let known = net.known_addrs().await.unwrap().len();
        if known >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the DHT never learnt {n} peers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_provided_with_one_crawl_and_found_by_others() {
    // Five DHT servers in a star around `hub`; `a` provides 300 keys. With fewer peers than
    // Kademlia's K (20), one lookup per DHT instance sees them all, and every key goes to
    // every peer.
    let (hub, _) = node(RoutingMode::Server, false).await;
    let mut nodes = Vec::new();
    for _ in 0..4 {
        let (n, s) = node(RoutingMode::Server, false).await;
        n.connect(tcp_addr(&hub).await).await.unwrap();
        nodes.push((n, s));
    }
    let (a, _) = &nodes[0];
    until_dht_knows(a, 1).await;
    // The hub must have learnt every leaf for a's crawl to see them.
    until_dht_knows(&hub, 4).await;
    let keys: Vec<Cid> = (0..300u32)
        .map(|i| *Block::encode(codec::RAW, HashAlg::Sha2_256, 1, i.to_be_bytes().to_vec()).cid())
        .collect();
    let outcome = a.provide(keys.clone()).await.unwrap();
    assert_eq!(outcome.keys, 300);
    assert_eq!(
        outcome.lookups, 2,
        "one crawl lookup for the whole batch on each instance (WAN, LAN)"
    );
    // Each peer gets each key once: the LAN crawl found only peers the WAN one did, and they
    // keep one store for both protocols.
    assert_eq!(outcome.peers, 4, "every other server gets every key");
    assert_eq!(outcome.messages, 4 * 300);
    assert_eq!(outcome.failed_peers, 0);
    // Another node finds the provider of a sample of the keys.
    let (e, _) = &nodes[3];
    for key in keys.iter().step_by(37) {
        let mut found = e.find_providers(*key, 1).await.unwrap();
        let p = tokio::time::timeout(Duration::from_secs(30), found.recv())
            .await
            .unwrap()
            .expect("a provider");
        assert_eq!(p.peer, a.peer_id());
    }
    // A small batch right after reuses the crawl: no lookups at all.
    let more = vec![*Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"more"[..]).cid()];
    let outcome = a.provide(more.clone()).await.unwrap();
    assert_eq!((outcome.lookups, outcome.peers), (0, 4));
    let mut found = e.find_providers(more[0], 1).await.unwrap();
    assert_eq!(found.recv().await.unwrap().peer, a.peer_id());
    let stat = a.provide_stat().await.unwrap();
    assert_eq!(stat.total_provides, 301);
    assert_eq!(stat.last_crawl_peers, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_keys_reach_the_dht() {
    let (a, _) = node(RoutingMode::Server, false).await;
    let (b, _) = node(RoutingMode::Server, false).await;
    a.connect(tcp_addr(&b).await).await.unwrap();
    until_dht_knows(&a, 1).await;
    let x = *Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"announced"[..]).cid();
    // Coalesced: the same key twice is one announcement.
    a.announce(vec![x, x]);
    let mut found_it = false;
    for _ in 0..100 {
        let mut found = b.find_providers(x, 1).await.unwrap();
        if let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(2), found.recv()).await {
            assert_eq!(p.peer, a.peer_id());
            found_it = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found_it, "the announced key was never provided");
    // The job ends once kad reports the record stored; the record may be found before that.
    let mut total = 0;
    for _ in 0..100 {
        total = a.provide_stat().await.unwrap().total_provides;
        if total > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total, 1, "one key, announced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_reports_like_kubo() {
    let (a, _) = node(RoutingMode::Server, false).await;
    let (b, _) = node(RoutingMode::Server, false).await;
    a.connect(tcp_addr(&b).await).await.unwrap();
    let mut rx = a.ping(b.peer_id(), 2);
    let mut lines = Vec::new();
    while let Some(item) = rx.recv().await {
        lines.push(item.unwrap());
    }
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0].text, format!("PING {}.", b.peer_id()));
    for pong in &lines[1..3] {
        assert!(
            pong.success && pong.text.is_empty() && pong.time > Duration::ZERO,
            "{lines:?}"
        );
    }
    assert!(lines[3].text.starts_with("Average latency: "));
    // A peer nobody knows: looked up, then the whole ping fails.
    let stranger = Keypair::generate_ed25519().public().to_peer_id();
    let mut rx = a.ping(stranger, 1);
    let first = rx.recv().await.unwrap().unwrap();
    assert_eq!(first.text, format!("Looking up peer {stranger}"));
    assert!(rx.recv().await.unwrap().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_is_counted_by_protocol_and_peer() {
    let (a, sa) = node(RoutingMode::Server, false).await;
    let (b, _) = node(RoutingMode::Server, false).await;
    let x = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, vec![7u8; 200_000]);
    sa.put(&x);
    b.connect(tcp_addr(&a).await).await.unwrap();
    b.get_block(*x.cid(), Duration::from_secs(30))
        .await
        .unwrap();
    let bw = b.bandwidth();
    let bitswap = bw.protocol("/ipfs/bitswap/1.2.0");
    assert!(bitswap.total_in >= 200_000, "{bitswap:?}");
    let peer = bw.peer(&a.peer_id());
    let total = bw.total();
    assert!(peer.total_in >= bitswap.total_in && total.total_in >= peer.total_in);
    assert!(total.total_out > 0);
    // The sender counted the same block going out.
    assert!(a.bandwidth().protocol("/ipfs/bitswap/1.2.0").total_out >= 200_000);
    assert_eq!(bw.protocol("/no/such/1.0.0"), Default::default());
    let names: Vec<String> = bw.protocols().into_iter().map(|(p, _)| p).collect();
    assert!(names.contains(&"/ipfs/id/1.0.0".to_string()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocols_follow_the_swarm() {
    let (server, _) = node(RoutingMode::Server, true).await;
    let list = server.protocols().await.unwrap();
    for p in [
        "/ipfs/kad/1.0.0",
        "/ipfs/bitswap/1.2.0",
        "/meshsub/1.1.0",
        "/ipfs/ping/1.0.0",
    ] {
        assert!(list.contains(&p.to_string()), "{p} missing from {list:?}");
    }
    let (client, _) = node(RoutingMode::Client, false).await;
    let list = client.protocols().await.unwrap();
    assert!(!list.contains(&"/ipfs/kad/1.0.0".to_string()));
    assert!(!list.iter().any(|p| p.starts_with("/meshsub")));
    assert!(!list.contains(&"/libp2p/circuit/relay/0.2.0/hop".to_string()));
}

/// A loopback TCP port free a moment ago (for a node that must announce its address).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_reach_each_other_through_a_relay() {
    // A relay serves only with a confirmed address: it announces its loopback one.
    let port = free_port();
    let relay_listen: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let (relay, _) = node_with(|c| {
        c.relay_service = true;
        c.listen = vec![relay_listen.clone()];
        c.announce = vec![relay_listen.clone()];
    })
    .await;
    let relay_addr = tcp_addr(&relay).await;
    let circuit = relay_addr
        .clone()
        .with(libp2p::multiaddr::Protocol::P2pCircuit);
    // `b` listens only through the relay: nobody can dial it directly.
    let (b, sb) = node_with(|c| {
        c.listen = Vec::new();
        c.hole_punching = false;
    })
    .await;
    b.connect(relay_addr.clone()).await.unwrap();
    b.listen_on(circuit.clone()).await.unwrap();
    let mut reserved = false;
    for _ in 0..200 {
        let (listen, _) = b.addrs().await.unwrap();
        if listen
            .iter()
            .any(|a| a.to_string().contains("/p2p-circuit"))
        {
            reserved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reserved, "no reservation on the relay");
    let (a, _) = node_with(|c| c.hole_punching = false).await;
    let x = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"through the relay"[..]);
    sb.put(&x);
    let via = circuit.with(libp2p::multiaddr::Protocol::P2p(b.peer_id()));
    assert_eq!(a.connect(via).await.unwrap(), b.peer_id());
    let peers = a.peers().await.unwrap();
    let to_b = peers.iter().find(|p| p.peer == b.peer_id()).unwrap();
    assert!(
        to_b.addr.to_string().contains("/p2p-circuit"),
        "{}",
        to_b.addr
    );
    let got = a
        .get_block(*x.cid(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got, x);
    // Relayed bytes are counted too.
    assert!(a.bandwidth().peer(&b.peer_id()).total_in > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autonat_finds_a_reachable_node_public() {
    // AutoNAT on loopback needs private addresses allowed (go-libp2p and we skip them by
    // default). Three peers are asked; the first dial-back decides.
    let allow = |c: &mut Config| c.autonat_only_global = false;
    let (a, _) = node_with(allow).await;
    let mut servers = Vec::new();
    for _ in 0..3 {
        let (s, _) = node_with(allow).await;
        a.connect(tcp_addr(&s).await).await.unwrap();
        servers.push(s);
    }
    let mut status = ipfs_kit_net::Reachability::Unknown;
    for _ in 0..600 {
        status = a.reachability().await.unwrap();
        if status != ipfs_kit_net::Reachability::Unknown {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        matches!(status, ipfs_kit_net::Reachability::Public(_)),
        "{status:?}"
    );
}

/// `b` announces an address nothing listens on and listens nowhere else: AutoNAT's dial-backs
/// fail, b is found private, and it listens through the relay: the one it was given when
/// `static_relay`, else the one connected peer that offers to relay (autorelay).
async fn an_unreachable_node_listens_through_a_relay(static_relay: bool) {
    let port = free_port();
    let relay_listen: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let (relay, _) = node_with(|c| {
        c.relay_service = true;
        c.autonat_only_global = false;
        c.listen = vec![relay_listen.clone()];
        c.announce = vec![relay_listen.clone()];
    })
    .await;
    let relay_addr = tcp_addr(&relay).await;
    let closed: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", free_port())
        .parse()
        .unwrap();
    let mut helpers = Vec::new();
    let (b, _) = node_with(|c| {
        c.listen = Vec::new();
        c.announce = vec![closed];
        c.autonat_only_global = false;
        if static_relay {
            c.static_relays = vec![relay_addr.clone()];
        }
    })
    .await;
    b.connect(relay_addr.clone()).await.unwrap();
    for _ in 0..2 {
        let (h, _) = node_with(|c| c.autonat_only_global = false).await;
        b.connect(tcp_addr(&h).await).await.unwrap();
        helpers.push(h);
    }
    let circuit = format!("/p2p/{}/p2p-circuit", relay.peer_id());
    let mut listening = false;
    for _ in 0..900 {
        let (listen, _) = b.addrs().await.unwrap();
        if listen.iter().any(|a| a.to_string().contains(&circuit)) {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        b.reachability().await.unwrap(),
        ipfs_kit_net::Reachability::Private
    );
    assert!(listening, "b never listened through its relay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_node_listens_through_its_static_relay() {
    an_unreachable_node_listens_through_a_relay(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_node_finds_a_relay_among_its_peers() {
    an_unreachable_node_listens_through_a_relay(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_splits_the_keyspace_when_the_dht_outgrows_k() {
    // 26 servers: more than K (20), so one lookup cannot see them all and the crawl explores
    // prefix regions. Every key must still reach its closest peers: others find the provider.
    let (hub, _) = node(RoutingMode::Server, false).await;
    let mut nodes = Vec::new();
    for _ in 0..25 {
        let (n, _) = node(RoutingMode::Server, false).await;
        n.connect(tcp_addr(&hub).await).await.unwrap();
        nodes.push(n);
    }
    until_dht_knows(&hub, 25).await;
    let a = &nodes[0];
    until_dht_knows(a, 1).await;
    let keys: Vec<Cid> = (0..200u32)
        .map(|i| *Block::encode(codec::RAW, HashAlg::Sha2_256, 1, i.to_le_bytes().to_vec()).cid())
        .collect();
    let outcome = a.provide(keys.clone()).await.unwrap();
    assert!(outcome.lookups > 1, "{outcome:?}");
    assert!(outcome.peers >= 20, "{outcome:?}");
    // Each key goes to its 20 closest servers, `a` itself excepted when it is one of them.
    let mut everyone: Vec<libp2p::PeerId> = nodes.iter().map(|n| n.peer_id()).collect();
    everyone.push(hub.peer_id());
    let sha = |b: &[u8]| -> [u8; 32] {
        sha2::Digest::finalize(sha2::Digest::chain_update(
            <sha2::Sha256 as sha2::Digest>::new(),
            b,
        ))
        .into()
    };
    let expected: usize = keys
        .iter()
        .map(|k| {
            let target = sha(&k.hash().to_bytes());
            let mut by_distance = everyone.clone();
            by_distance.sort_by_key(|p| {
                let h = sha(&p.to_bytes());
                let mut d = [0u8; 32];
                for i in 0..32 {
                    d[i] = h[i] ^ target[i];
                }
                d
            });
            by_distance[..20]
                .iter()
                .filter(|p| **p != a.peer_id())
                .count()
        })
        .sum();
    assert_eq!(outcome.messages, expected, "each key to its 20 closest");
    assert_eq!(outcome.failed_peers, 0);
    let stat = a.provide_stat().await.unwrap();
    assert_eq!(
        stat.last_crawl_peers, 25,
        "the crawl saw every other server"
    );
    for (i, key) in keys.iter().enumerate().step_by(25) {
        let finder = &nodes[1 + i % 24];
        let mut found = finder.find_providers(*key, 1).await.unwrap();
        let p = tokio::time::timeout(Duration::from_secs(30), found.recv())
            .await
            .unwrap()
            .expect("a provider");
        assert_eq!(p.peer, a.peer_id());
    }
}
