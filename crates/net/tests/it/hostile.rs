//! A hostile bitswap peer: it floods a node with more wants than any ledger may hold and with
//! blocks nobody asked for. The node must keep its per-peer ledger at its bound, store nothing it
//! did not want, and go on serving (the attacker's own honest request and another peer's).

use std::time::Duration;

use futures::StreamExt;
use ipfs_kit_bitswap::{Behaviour, Event, Message, WantEntry, WantType};
use ipfs_kit_block::{codec, Block, HashAlg};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, PeerId, Swarm};

use crate::{node, tcp_addr};
use ipfs_kit_net::RoutingMode;

/// The server's ledger bound (`ServerConfig::max_peer_wants`).
const MAX_PEER_WANTS: usize = 8192;

/// A bare swarm over TCP, Noise and Yamux with only `behaviour`: a peer that says what it
/// likes.
pub(crate) fn attacker_with<B: libp2p::swarm::NetworkBehaviour>(behaviour: B) -> Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| behaviour)
        .unwrap()
        .build()
}

fn attacker() -> Swarm<Behaviour> {
    attacker_with(Behaviour::new(64 << 20))
}

/// Drives `swarm` until `done` says an event is the one awaited.
async fn until(swarm: &mut Swarm<Behaviour>, mut done: impl FnMut(&SwarmEvent<Event>) -> bool) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let e = swarm.select_next_some().await;
            if done(&e) {
                return;
            }
        }
    })
    .await
    .expect("the awaited swarm event");
}

fn random_block(seed: u64, len: usize) -> Block {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Block::encode(codec::RAW, HashAlg::Sha2_256, 1, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_stays_within_its_ledger_and_the_node_keeps_serving() {
    let (victim, store) = node(RoutingMode::None, false).await;
    let honest = random_block(7, 5000);
    store.put(&honest);
    let victim_id = victim.peer_id();

    let mut evil = attacker();
    evil.dial(tcp_addr(&victim).await).unwrap();
    until(
        &mut evil,
        |e| matches!(e, SwarmEvent::Behaviour(Event::PeerConnected(p)) if *p == victim_id),
    )
    .await;

    // 100,000 distinct want-blocks (four messages just under the frame limit), none of which
    // the node has, silent (no DONT_HAVE): a ledger that kept them all would grow without end.
    for batch in 0..4u64 {
        let wantlist = (0..25_000u64)
            .map(|i| {
                let cid = *random_block(batch * 1_000_000 + i + 100, 8).cid();
                WantEntry::want(cid, WantType::Block, false)
            })
            .collect();
        assert!(evil.behaviour_mut().send(
            victim_id,
            Message {
                wantlist,
                ..Default::default()
            }
        ));
    }
    // Then 15 blocks of 256 KiB (a message just under the 4 MiB limit) that nobody wanted.
    let junk: Vec<Block> = (0..15).map(|i| random_block(500 + i, 256 << 10)).collect();
    assert!(evil.behaviour_mut().send(
        victim_id,
        Message {
            blocks: junk.clone(),
            ..Default::default()
        }
    ));
    // Drive the attacker until all five messages have been taken in by the node.
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    while victim.bitswap_stat().await.unwrap().stats.messages_received < 5 {
        assert!(
            std::time::Instant::now() < give_up,
            "the node never took in the five messages"
        );
        tokio::time::timeout(Duration::from_millis(50), evil.select_next_some())
            .await
            .ok();
    }
    let ledger = victim.wantlist(Some(*evil.local_peer_id())).await.unwrap();
    assert_eq!(
        ledger.len(),
        MAX_PEER_WANTS,
        "the ledger is capped, not grown"
    );
    assert!(
        junk.iter().all(|b| !store.has(b.cid())),
        "unwanted blocks were stored"
    );

    // A full wantlist replaces the flood: the node answers the one honest want.
    let attacker_id: PeerId = *evil.local_peer_id();
    assert!(evil.behaviour_mut().send(
        victim_id,
        Message {
            wantlist: vec![WantEntry::want(*honest.cid(), WantType::Block, true)],
            full: true,
            ..Default::default()
        }
    ));
    let honest_cid = *honest.cid();
    until(&mut evil, |e| {
        matches!(e, SwarmEvent::Behaviour(Event::Message { message, .. })
            if message.blocks.iter().any(|b| *b.cid() == honest_cid))
    })
    .await;
    assert!(victim.wantlist(Some(attacker_id)).await.unwrap().len() <= 1);

    // And another peer is served as ever.
    let (other, _) = node(RoutingMode::None, false).await;
    other.connect(tcp_addr(&victim).await).await.unwrap();
    let got = other
        .get_block(honest_cid, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.data(), honest.data());
}
