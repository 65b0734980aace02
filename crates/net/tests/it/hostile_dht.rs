//! A hostile DHT peer, speaking `/ipfs/kad/1.0.0` by hand on raw streams: garbage, a frame
//! that claims 64 MiB, records that do not validate, more valid records than the store keeps,
//! and provider records claiming another peer. The node must refuse each without crashing,
//! keep its store within its bounds, never leave a stream hanging, and go on answering honest
//! lookups.

use std::io;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use ipfs_kit_ipns::{Keypair, Record, RecordOptions};
use ipfs_kit_net::records::MAX_RECORDS;
use ipfs_kit_net::RoutingMode;
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, StreamProtocol};

use crate::{node, tcp_addr};

const KAD: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field(out: &mut Vec<u8>, n: u64, bytes: &[u8]) {
    varint(out, n << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A length-prefixed Kademlia `Message` of `kind` (PUT_VALUE 0, ADD_PROVIDER 2, FIND_NODE 4)
/// for `key`, with a record value or a provider peer.
fn message(kind: u64, key: &[u8], value: Option<&[u8]>, provider: Option<PeerId>) -> Vec<u8> {
    let mut msg = Vec::new();
    varint(&mut msg, 1 << 3);
    varint(&mut msg, kind);
    field(&mut msg, 2, key);
    if let Some(v) = value {
        let mut record = Vec::new();
        field(&mut record, 1, key);
        field(&mut record, 2, v);
        field(&mut msg, 3, &record);
    }
    if let Some(p) = provider {
        let mut peer = Vec::new();
        field(&mut peer, 1, &p.to_bytes());
        field(
            &mut peer,
            2,
            &"/ip4/127.0.0.1/tcp/1"
                .parse::<libp2p::Multiaddr>()
                .unwrap()
                .to_vec(),
        );
        field(&mut msg, 9, &peer);
    }
    let mut framed = Vec::new();
    varint(&mut framed, msg.len() as u64);
    framed.extend_from_slice(&msg);
    framed
}

/// Reads one length-prefixed frame; an error or end of stream when the node gave up on it.
async fn read_frame(s: &mut libp2p::Stream) -> io::Result<Vec<u8>> {
    let mut len = 0u64;
    for i in 0..10 {
        let mut b = [0u8];
        s.read_exact(&mut b).await?;
        len |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            let mut buf = vec![0u8; usize::try_from(len).unwrap()];
            s.read_exact(&mut buf).await?;
            return Ok(buf);
        }
    }
    Err(io::Error::other("varint too long"))
}

/// Writes `frame` and waits for the answer, with a deadline (a hang fails the test).
async fn ask(s: &mut libp2p::Stream, frame: &[u8]) -> io::Result<Vec<u8>> {
    tokio::time::timeout(Duration::from_secs(30), async {
        s.write_all(frame).await?;
        s.flush().await?;
        read_frame(s).await
    })
    .await
    .expect("the node answers or closes the stream in time")
}

fn ipns(seed: u32) -> (Vec<u8>, Vec<u8>) {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&seed.to_be_bytes());
    let key = Keypair::from_seed(&bytes);
    let opts = RecordOptions {
        sequence: 1,
        validity: std::time::SystemTime::now() + Duration::from_secs(3600),
        ttl: Duration::from_secs(60),
        v1_compat: false,
    };
    let record = Record::create(&key, b"/ipfs/bafkqaaa", &opts).unwrap();
    (
        key.public().peer_id().to_name().routing_key(),
        record.encode(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dht_messages_are_refused_and_the_store_stays_bounded() {
    let (victim, _) = node(RoutingMode::Server, false).await;
    let victim_id = victim.peer_id();
    let mut evil = crate::hostile::attacker_with(libp2p_stream::Behaviour::new());
    let control = evil.behaviour().new_control();
    let evil_id = *evil.local_peer_id();
    evil.dial(tcp_addr(&victim).await).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !matches!(
            evil.select_next_some().await,
            SwarmEvent::ConnectionEstablished { .. }
        ) {}
    })
    .await
    .unwrap();
    let driver = tokio::spawn(async move {
        loop {
            evil.select_next_some().await;
        }
    });
    let open = || {
        let mut c = control.clone();
        async move { c.open_stream(victim_id, KAD).await.unwrap() }
    };

    // Garbage, and a frame that claims 64 MiB: each stream is dropped, nothing answered.
    let mut s = open().await;
    assert!(ask(&mut s, &[0xff; 4096]).await.is_err());
    let mut huge = Vec::new();
    varint(&mut huge, 64 << 20);
    huge.extend_from_slice(&[0u8; 1024]);
    let mut s = open().await;
    assert!(ask(&mut s, &huge).await.is_err());

    // Records that do not validate (junk, or another name's record) are not stored. Each
    // is answered, on a stream of its own: forty of them, more than the 32 inbound DHT
    // streams a connection may keep, so streams left hanging would lock the peer out.
    let (key_a, _) = ipns(1);
    let (_, record_b) = ipns(2);
    for i in 0..40 {
        let value = if i % 2 == 0 { &b"junk"[..] } else { &record_b };
        let mut s = open().await;
        ask(&mut s, &message(0, &key_a, Some(value), None))
            .await
            .unwrap();
    }
    assert_eq!(victim.dht_store_stat().await.unwrap().records, 0);
    let mut s = open().await;
    ask(&mut s, &message(4, &victim_id.to_bytes(), None, None))
        .await
        .unwrap();

    // More valid records than the store keeps, on one stream: every put is answered, the
    // store keeps MAX_RECORDS.
    let (mut s, mut sample) = (open().await, None);
    for i in 0..(MAX_RECORDS as u32 + 200) {
        let (key, value) = ipns(1000 + i);
        ask(&mut s, &message(0, &key, Some(&value), None))
            .await
            .unwrap();
        if i == 5 {
            sample = Some((key, value));
        }
    }
    assert_eq!(victim.dht_store_stat().await.unwrap().records, MAX_RECORDS);

    // A provider record naming some other peer is dropped; one naming the sender is kept. A
    // FIND_NODE after each (answered in order) shows it was handled.
    let mut s = open().await;
    let before = victim.dht_store_stat().await.unwrap().remote_providers;
    for provider in [PeerId::random(), evil_id] {
        s.write_all(&message(
            2,
            b"\x12\x20spoofed-or-not-32-bytes-of-key!!",
            None,
            Some(provider),
        ))
        .await
        .unwrap();
        ask(&mut s, &message(4, &victim_id.to_bytes(), None, None))
            .await
            .unwrap();
    }
    assert_eq!(
        victim.dht_store_stat().await.unwrap().remote_providers,
        before + 1
    );

    // The node still answers an honest peer's lookup of one of the records.
    let (honest, _) = node(RoutingMode::Server, false).await;
    honest.connect(tcp_addr(&victim).await).await.unwrap();
    let (key, value) = sample.unwrap();
    let mut got = None;
    for _ in 0..100 {
        if let Ok(v) = honest.get_record(key.clone()).await {
            got = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got, Some(value));
    driver.abort();
}
