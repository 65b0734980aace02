//! Two and three ipfs-kit network nodes on loopback: bitswap both ways, DAG fetches from several
//! providers, pubsub, and the DHT finding providers.

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod hostile;

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
    assert!(sb.has(x.cid()), "stored before it is returned");
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
