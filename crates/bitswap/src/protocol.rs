//! Protocol names, stream negotiation and message framing (an unsigned-varint length prefix,
//! frames of at most [`MAX_MESSAGE_SIZE`]).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::core::upgrade::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::{Stream, StreamProtocol};

use crate::message::{Dialect, Message};

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
    let mut len: u64 = 0;
    for i in 0..10 {
        let mut byte = [0u8];
        match stream.read(&mut byte).await? {
            0 if i == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {}
        }
        len |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_MESSAGE_SIZE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "bitswap message of {len} bytes is over the {MAX_MESSAGE_SIZE}-byte limit"
                    ),
                ));
            }
            let mut buf = vec![0u8; len];
            stream.read_exact(&mut buf).await?;
            return Ok(Some(buf));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "bitswap frame length is not a varint",
    ))
}

/// Reads and decodes one message; `Ok(None)` at a clean end of stream.
pub async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Message>> {
    match read_frame(stream).await? {
        None => Ok(None),
        Some(frame) => Message::decode(&frame)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

/// Writes one frame and flushes it.
pub async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, frame: &[u8]) -> io::Result<()> {
    let mut head = Vec::with_capacity(10);
    ipfs_kit_block::dagpb::put_varint(&mut head, frame.len() as u64);
    stream.write_all(&head).await?;
    stream.write_all(frame).await?;
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

    #[test]
    fn oversized_and_truncated_frames_fail() {
        let mut head = Vec::new();
        ipfs_kit_block::dagpb::put_varint(&mut head, (MAX_MESSAGE_SIZE + 1) as u64);
        assert!(block_on(read_frame(&mut &head[..])).is_err());
        assert!(block_on(read_frame(&mut &[5u8, 1, 2][..])).is_err());
        assert!(block_on(read_frame(&mut &[0x80u8][..])).is_err());
    }
}
