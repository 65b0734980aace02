//! Protocol names, stream negotiation and message framing (an unsigned-varint length prefix,
//! frames of at most [`MAX_MESSAGE_SIZE`]).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::core::upgrade::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::{Stream, StreamProtocol};

use ipfs_kit_block::Bytes;

use crate::message::{Dialect, Encoded, Field, Message};

/// Bitswap 1.2.0, what Kubo speaks.
pub const PROTOCOL_1_2_0: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");
/// Bitswap 1.1.0.
pub const PROTOCOL_1_1_0: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.1.0");
/// Bitswap 1.0.0.
pub const PROTOCOL_1_0_0: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.0.0");
/// The original, unversioned name (1.0.0 semantics).
pub const PROTOCOL_LEGACY: StreamProtocol = StreamProtocol::new("/ipfs/bitswap");

/// The largest frame read or written: libp2p's `MessageSizeMax`, which Kubo enforces.
pub const MAX_MESSAGE_SIZE: usize = 4 << 20;

/// The dialect a negotiated protocol name implies.
pub fn dialect(protocol: &StreamProtocol) -> Dialect {
    if *protocol == PROTOCOL_1_2_0 {
        Dialect::V120
    } else if *protocol == PROTOCOL_1_1_0 {
        Dialect::V110
    } else {
        Dialect::V100
    }
}

/// Negotiates one of the bitswap protocols, newest first, and hands over the raw stream.
#[derive(Clone, Debug, Default)]
pub struct Upgrade;

impl UpgradeInfo for Upgrade {
    type Info = StreamProtocol;
    type InfoIter = [StreamProtocol; 4];

    fn protocol_info(&self) -> Self::InfoIter {
        [
            PROTOCOL_1_2_0,
            PROTOCOL_1_1_0,
            PROTOCOL_1_0_0,
            PROTOCOL_LEGACY,
        ]
    }
}

impl InboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, stream: Stream, info: StreamProtocol) -> Self::Future {
        std::future::ready(Ok((stream, info)))
    }
}

impl OutboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, stream: Stream, info: StreamProtocol) -> Self::Future {
        std::future::ready(Ok((stream, info)))
    }
}

/// Reads one frame. `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Vec<u8>>> {
    let Some(len) = read_frame_len(stream).await? else {
        return Ok(None);
    };
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Reads a frame's length prefix; `Ok(None)` at a clean end of stream.
async fn read_frame_len<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<usize>> {
    let mut byte = [0u8];
    if stream.read(&mut byte).await? == 0 {
        return Ok(None);
    }
    // The prefix is not bounded by a frame; 10 bytes is the varint limit itself.
    let mut unbounded = usize::MAX;
    let len = continue_varint(stream, byte[0], &mut unbounded).await?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_MESSAGE_SIZE {
        return Err(invalid(format!(
            "bitswap message of {len} bytes is over the {MAX_MESSAGE_SIZE}-byte limit"
        )));
    }
    Ok(Some(len))
}

/// Reads and decodes one message; `Ok(None)` at a clean end of stream.
///
/// The message is read field by field, each length-delimited field into a buffer of its own:
/// a block's data is then a slice of its own field (no copy out of a whole-frame buffer, and a
/// kept block does not hold the rest of its frame in memory), and no frame-sized buffer is
/// zeroed first.
pub async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Message>> {
    let Some(mut left) = read_frame_len(stream).await? else {
        return Ok(None);
    };
    let mut msg = Message::default();
    while left > 0 {
        let key = read_varint(stream, &mut left).await?;
        let field = key >> 3;
        if field == 0 {
            return Err(invalid("bitswap message has field number 0"));
        }
        let value = match key & 7 {
            0 => Field::Varint(read_varint(stream, &mut left).await?),
            2 => {
                let len = usize::try_from(read_varint(stream, &mut left).await?)
                    .ok()
                    .filter(|len| *len <= left)
                    .ok_or_else(|| invalid("bitswap field runs past its frame"))?;
                let mut buf = vec![0u8; len];
                stream.read_exact(&mut buf).await?;
                left -= len;
                Field::Bytes(Bytes::from(buf))
            }
            wire @ (1 | 5) => {
                let len = if wire == 1 { 8 } else { 4 };
                if len > left {
                    return Err(invalid("bitswap field runs past its frame"));
                }
                stream.read_exact(&mut [0u8; 8][..len]).await?;
                left -= len;
                Field::Fixed
            }
            _ => return Err(invalid("bitswap message has an unsupported wire type")),
        };
        msg.decode_field(field, value).map_err(invalid)?;
    }
    Ok(Some(msg))
}

/// Reads a varint of at most `left` bytes, taking what it reads from `left`.
async fn read_varint<S: AsyncRead + Unpin>(stream: &mut S, left: &mut usize) -> io::Result<u64> {
    let mut byte = [0u8];
    if *left == 0 {
        return Err(invalid("bitswap varint runs past its frame"));
    }
    stream.read_exact(&mut byte).await?;
    *left -= 1;
    continue_varint(stream, byte[0], left).await
}

/// Finishes a varint whose first byte was `first`, reading at most `left` more bytes.
async fn continue_varint<S: AsyncRead + Unpin>(
    stream: &mut S,
    first: u8,
    left: &mut usize,
) -> io::Result<u64> {
    let mut value = u64::from(first & 0x7f);
    let mut byte = [first];
    for i in 1..10 {
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
        if *left == 0 {
            return Err(invalid("bitswap varint runs past its frame"));
        }
        stream.read_exact(&mut byte).await?;
        *left -= 1;
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
    }
    if byte[0] & 0x80 == 0 {
        Ok(value)
    } else {
        Err(invalid("bitswap varint is longer than 10 bytes"))
    }
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes one frame and flushes it.
pub async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, frame: &[u8]) -> io::Result<()> {
    write_parts(
        stream,
        frame.len(),
        std::slice::from_ref(&Bytes::copy_from_slice(frame)),
    )
    .await
}

/// Writes `msg` as one frame and flushes it; block data go to the stream from the blocks' own
/// buffers (see [`Message::encode_parts`]).
pub async fn write_message<S: AsyncWrite + Unpin>(stream: &mut S, msg: &Encoded) -> io::Result<()> {
    write_parts(stream, msg.len, &msg.parts).await
}

/// Parts below this size are gathered into one write; larger ones are written as they are.
const GATHER: usize = 4096;

async fn write_parts<S: AsyncWrite + Unpin>(
    stream: &mut S,
    len: usize,
    parts: &[Bytes],
) -> io::Result<()> {
    let mut small = Vec::with_capacity(GATHER + 10);
    ipfs_kit_block::dagpb::put_varint(&mut small, len as u64);
    for part in parts {
        if part.len() < GATHER {
            small.extend_from_slice(part);
            if small.len() < GATHER {
                continue;
            }
        }
        if !small.is_empty() {
            stream.write_all(&small).await?;
            small.clear();
        }
        if part.len() >= GATHER {
            stream.write_all(part).await?;
        }
    }
    if !small.is_empty() {
        stream.write_all(&small).await?;
    }
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn frames_round_trip_and_stop_cleanly() {
        let mut buf = Vec::new();
        block_on(write_frame(&mut buf, b"one")).unwrap();
        block_on(write_frame(&mut buf, b"")).unwrap();
        let mut r = &buf[..];
        assert_eq!(block_on(read_frame(&mut r)).unwrap().unwrap(), b"one");
        assert_eq!(block_on(read_frame(&mut r)).unwrap().unwrap(), b"");
        assert!(block_on(read_frame(&mut r)).unwrap().is_none());
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        ipfs_kit_block::dagpb::put_varint(&mut buf, body.len() as u64);
        buf.extend_from_slice(body);
        buf
    }

    #[test]
    fn messages_written_in_parts_read_back_field_by_field() {
        use crate::message::{Presence, WantEntry, WantType};
        use ipfs_kit_block::{codec, Block, HashAlg};
        let big = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, vec![7u8; 300_000]);
        let small = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"small"[..]);
        let msg = Message {
            wantlist: vec![WantEntry::want(*small.cid(), WantType::Have, true)],
            blocks: vec![small.clone(), big, small.clone()],
            presences: vec![(*small.cid(), Presence::DontHave)],
            pending_bytes: 3,
            ..Default::default()
        };
        let mut wire = Vec::new();
        block_on(write_message(&mut wire, &msg.encode_parts(Dialect::V120))).unwrap();
        assert_eq!(wire, framed(&msg.encode(Dialect::V120)));
        let mut r = &wire[..];
        assert_eq!(block_on(read_message(&mut r)).unwrap().unwrap(), msg);
        assert!(block_on(read_message(&mut r)).unwrap().is_none());
    }

    proptest::proptest! {
        /// Reading field by field from a stream agrees with decoding the whole frame, on any
        /// bytes at all: same message, or an error from both.
        #[test]
        fn streamed_reading_agrees_with_whole_frame_decoding(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            cut in 0usize..220,
        ) {
            let wire = framed(&body);
            let whole = Message::decode(&body);
            let streamed = block_on(read_message(&mut &wire[..]));
            match (&whole, &streamed) {
                (Ok(m), Ok(Some(s))) => proptest::prop_assert_eq!(m, s),
                (Err(_), Err(_)) => {}
                _ => proptest::prop_assert!(false, "{whole:?} vs {streamed:?}"),
            }
            // A stream cut short never yields a message it did not fully carry.
            if cut < wire.len() {
                proptest::prop_assert!(!matches!(
                    block_on(read_message(&mut &wire[..cut])),
                    Ok(Some(_))
                ));
            }
        }
    }

    #[test]
    fn oversized_and_truncated_frames_fail() {
        let mut head = Vec::new();
        ipfs_kit_block::dagpb::put_varint(&mut head, (MAX_MESSAGE_SIZE + 1) as u64);
        assert!(block_on(read_frame(&mut &head[..])).is_err());
        assert!(block_on(read_frame(&mut &[5u8, 1, 2][..])).is_err());
        assert!(block_on(read_frame(&mut &[0x80u8][..])).is_err());
    }
}
