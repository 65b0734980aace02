//! Fetching a whole DAG: a depth-first walk (so a file's blocks arrive roughly in read order)
//! that keeps up to [`WINDOW`] blocks wanted at once, which is what makes a transfer run at
//! the link's speed instead of one round trip per block.

use std::collections::HashSet;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use ipfs_kit_block::{codec, ipld, Cid, IDENTITY};

use crate::{Error, Network};

/// Blocks wanted at once by one DAG fetch.
const WINDOW: usize = 512;

/// What a DAG fetch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Blocks fetched from the network.
    pub blocks_fetched: u64,
    /// Their bytes.
    pub bytes_fetched: u64,
    /// Blocks that were already stored.
    pub blocks_local: u64,
}

fn children(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, Error> {
    if cid.codec() == codec::RAW {
        return Ok(Vec::new());
    }
    Ok(ipld::links(cid.codec(), data)?)
}

pub(crate) async fn fetch(
    net: &Network,
    root: Cid,
    timeout: Duration,
) -> Result<FetchStats, Error> {
    let mark = net.store_mark();
    let mut stats = FetchStats::default();
    let mut stack = vec![root];
    let mut seen = HashSet::from([root]);
    let mut inflight = FuturesUnordered::new();
    let push = |stack: &mut Vec<Cid>, seen: &mut HashSet<Cid>, links: Vec<Cid>| {
        // Reversed, so the first link is walked first.
        for link in links.into_iter().rev() {
            if seen.insert(link) {
                stack.push(link);
            }
        }
    };
    loop {
        while inflight.len() < WINDOW {
            let Some(cid) = stack.pop() else { break };
            if cid.hash().code() == IDENTITY {
                let links = children(&cid, cid.hash().digest())?;
                push(&mut stack, &mut seen, links);
                continue;
            }
            let store = net.store();
            // A stored raw block has no links: its size says it is there without reading it.
            let local = if cid.codec() == codec::RAW {
                store.size(&cid).map_err(Error::Store)?.map(|_| Vec::new())
            } else {
                store
                    .get(&cid)
                    .map_err(Error::Store)?
                    .map(|data| children(&cid, &data))
                    .transpose()?
            };
            match local {
                Some(links) => {
                    stats.blocks_local += 1;
                    push(&mut stack, &mut seen, links);
                }
                None => inflight.push(net.get_block(cid, timeout)),
            }
        }
        match inflight.next().await {
            None => break,
            Some(result) => {
                let block = result?;
                stats.blocks_fetched += 1;
                stats.bytes_fetched += block.data().len() as u64;
                let links = children(block.cid(), block.data())?;
                push(&mut stack, &mut seen, links);
            }
        }
    }
    // Blocks reach this walk before the writer has committed them; the caller may record a
    // pin next.
    net.settle(mark).await?;
    Ok(stats)
}
