//! libp2p's fetch protocol, `/libp2p/fetch/0.0.1`, as go-libp2p-pubsub-router speaks it for
//! IPNS over pubsub: one varint-delimited `FetchRequest { identifier = 1 }` from the asker,
//! which then closes its side, and one `FetchResponse { status = 1, data = 2 }` back (status
//! `OK` 0, `NOT_FOUND` 1, `ERROR` 2). The identifier is a record key, raw bytes in a protobuf
//! `string` (Go does not check its UTF-8), so it is read here as bytes. See docs/network.md.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};

use ipfs_kit_block::dagpb::{put_varint, PbValue};

/// The protocol.
pub const FETCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/libp2p/fetch/0.0.1");

/// The largest message either side reads (go-libp2p-pubsub-router's reader limit).
const MAX_MESSAGE: usize = 1 << 20;

/// How long one fetch, or serving one, may take (the router's per-peer timeout).
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests served at once; a peer opening more waits for a slot (libp2p-stream drops
/// inbound streams beyond its own small queue).
const MAX_SERVING: usize = 32;

/// `key` as a varint-delimited `FetchRequest`.
fn encode_request(key: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(key.len() + 4);
    msg.push(1 << 3 | 2);
    put_varint(&mut msg, key.len() as u64);
    msg.extend_from_slice(key);
    delimit(msg)
}

/// A varint-delimited `FetchResponse`: `OK` with the value, or `NOT_FOUND`. proto3 leaves
/// out the default status (`OK`) and empty data.
fn encode_response(found: Option<&[u8]>) -> Vec<u8> {
    let mut msg = Vec::with_capacity(found.map_or(0, <[u8]>::len) + 8);
    match found {
        None => msg.extend_from_slice(&[1 << 3, 1]),
        Some([]) => {}
        Some(data) => {
            msg.push(2 << 3 | 2);
            put_varint(&mut msg, data.len() as u64);
            msg.extend_from_slice(data);
        }
    }
    delimit(msg)
}

fn delimit(msg: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 3);
    put_varint(&mut out, msg.len() as u64);
    out.extend_from_slice(&msg);
    out
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("fetch: {what}"))
}

/// Reads the fields of a message body.
fn for_each_field<'a>(
    body: &'a [u8],
    f: &mut dyn FnMut(u64, PbValue<'a>) -> io::Result<()>,
) -> io::Result<()> {
    ipfs_kit_block::dagpb::for_each_field(body, |why| invalid(&why), f)
}

/// The key a `FetchRequest` body asks for.
fn decode_request(body: &[u8]) -> io::Result<Vec<u8>> {
    let mut key = Vec::new();
    for_each_field(body, &mut |n, f| {
        match (n, f) {
            (1, PbValue::Bytes(b)) => key = b.to_vec(),
            (1, _) => return Err(invalid("identifier is not a string")),
            _ => {}
        }
        Ok(())
    })?;
    Ok(key)
}

/// A `FetchResponse` body: the value, `None` for `NOT_FOUND`, an error for `ERROR` or an
/// unknown status.
fn decode_response(body: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let (mut status, mut data) = (0, Vec::new());
    for_each_field(body, &mut |n, f| {
        match (n, f) {
            (1, PbValue::Varint(v)) => status = v,
            (2, PbValue::Bytes(b)) => data = b.to_vec(),
            (1 | 2, _) => return Err(invalid("field of the wrong type")),
            _ => {}
        }
        Ok(())
    })?;
    match status {
        0 => Ok(Some(data)),
        1 => Ok(None),
        2 => Err(io::Error::other("fetch: the peer reported an error")),
        _ => Err(invalid("received unknown status code")),
    }
}

/// Reads one varint-delimited message of at most [`MAX_MESSAGE`] bytes.
async fn read_delimited<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut len: u64 = 0;
    for i in 0..10 {
        let mut byte = [0u8];
        stream.read_exact(&mut byte).await?;
        len |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            let len = usize::try_from(len)
                .ok()
                .filter(|l| *l <= MAX_MESSAGE)
                .ok_or_else(|| invalid("message is larger than 1 MiB"))?;
            let mut buf = vec![0u8; len];
            stream.read_exact(&mut buf).await?;
            return Ok(buf);
        }
    }
    Err(invalid("length varint is longer than 10 bytes"))
}

/// Asks `peer` for `key`: its value, or `None` when it has none.
pub(crate) async fn fetch(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    key: &[u8],
) -> io::Result<Option<Vec<u8>>> {
    let exchange = async {
        let mut stream = control
            .open_stream(peer, FETCH_PROTOCOL)
            .await
            .map_err(io::Error::other)?;
        stream.write_all(&encode_request(key)).await?;
        stream.close().await?;
        decode_response(&read_delimited(&mut stream).await?)
    };
    tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "fetch: timed out"))?
}

/// What a server answers a key with: its value, or `None` for `NOT_FOUND`.
pub(crate) type Lookup = Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// Accepts fetch streams and answers each from `lookup`, [`MAX_SERVING`] at a time, until
/// the swarm stops.
pub(crate) fn serve(
    mut control: libp2p_stream::Control,
    lookup: Lookup,
) -> Result<tokio::task::JoinHandle<()>, libp2p_stream::AlreadyRegistered> {
    let incoming = control.accept(FETCH_PROTOCOL)?;
    Ok(tokio::spawn(async move {
        incoming
            .for_each_concurrent(MAX_SERVING, |(peer, stream)| {
                let lookup = lookup.clone();
                async move {
                    match tokio::time::timeout(FETCH_TIMEOUT, answer(stream, &lookup)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::debug!(%peer, "fetch request: {e}"),
                        Err(_) => tracing::debug!(%peer, "fetch request timed out"),
                    }
                }
            })
            .await;
    }))
}

/// Serves one request. A malformed one gets no answer (the stream is dropped, as Go resets
/// it).
async fn answer(mut stream: libp2p::Stream, lookup: &Lookup) -> io::Result<()> {
    let key = decode_request(&read_delimited(&mut stream).await?)?;
    let response = encode_response(lookup(&key).as_deref());
    stream.write_all(&response).await?;
    stream.close().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Drops the length prefix after checking it.
    fn body(framed: &[u8]) -> &[u8] {
        let mut pos = 0;
        let len = ipfs_kit_block::dagpb::get_varint(framed, &mut pos).unwrap();
        assert_eq!(len as usize, framed.len() - pos);
        &framed[pos..]
    }

    #[test]
    fn wire_bytes_match_the_go_encoding() {
        // gogo-protobuf's encoding of FetchRequest{Identifier: "/ipns/\x00\x01"}.
        assert_eq!(
            encode_request(b"/ipns/\x00\x01"),
            b"\x0a\x0a\x08/ipns/\x00\x01".to_vec()
        );
        // OK with data: status left out.
        assert_eq!(encode_response(Some(b"v")), b"\x03\x12\x01v".to_vec());
        assert_eq!(encode_response(None), b"\x02\x08\x01".to_vec());
        assert_eq!(decode_response(body(&encode_response(None))).unwrap(), None);
        // ERROR (2).
        assert!(decode_response(b"\x08\x02").is_err());
        assert!(decode_response(b"\x08\x07").is_err());
        // An empty OK is an empty value.
        assert_eq!(decode_response(b"").unwrap(), Some(Vec::new()));
        // Unknown fields are skipped, wrong types refused.
        assert_eq!(decode_request(b"\x18\x05\x0a\x01k").unwrap(), b"k".to_vec());
        assert!(decode_request(b"\x08\x01").is_err());
        assert!(decode_request(b"\x0a\x05ab").is_err());
    }

    #[tokio::test]
    async fn reads_refuse_oversized_and_truncated_frames() {
        let mut big = Vec::new();
        put_varint(&mut big, (MAX_MESSAGE + 1) as u64);
        assert!(read_delimited(&mut &big[..]).await.is_err());
        assert!(read_delimited(&mut &b"\x05abc"[..]).await.is_err());
        assert!(read_delimited(&mut &[0xffu8; 11][..]).await.is_err());
        assert_eq!(
            read_delimited(&mut &b"\x03abc"[..]).await.unwrap(),
            b"abc".to_vec()
        );
    }

    proptest! {
        #[test]
        fn round_trips(key in proptest::collection::vec(any::<u8>(), 0..300),
                       data in proptest::collection::vec(any::<u8>(), 0..3000),
                       found in any::<bool>()) {
            prop_assert_eq!(decode_request(body(&encode_request(&key))).unwrap(), key);
            let framed = encode_response(found.then_some(data.as_slice()));
            let got = decode_response(body(&framed)).unwrap();
            prop_assert_eq!(got, found.then_some(data));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }
    }
}
