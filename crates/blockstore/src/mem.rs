use std::collections::HashMap;

use ipfs_kit_block::{Block, Bytes, Cid};
use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::{Blockstore, Error, StoreStats, WriteBatch};

/// A block store held entirely in memory.
#[derive(Default)]
pub struct MemBlockstore {
    blocks: RwLock<HashMap<Vec<u8>, (Cid, Bytes)>>,
    writer: Mutex<()>,
}

struct MemBatch<'a> {
    store: &'a MemBlockstore,
    pending: Vec<Block>,
    _writer: MutexGuard<'a, ()>,
}

impl WriteBatch for MemBatch<'_> {
    fn put(&mut self, block: Block) -> Result<(), Error> {
        self.pending.push(block);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), Error> {
        let mut map = self.store.blocks.write();
        for b in self.pending {
            let (cid, data) = b.into_parts();
            map.entry(cid.hash().to_bytes()).or_insert((cid, data));
        }
        Ok(())
    }
}

impl Blockstore for MemBlockstore {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        Ok(self
            .blocks
            .read()
            .get(&cid.hash().to_bytes())
            .map(|(_, d)| d.clone()))
    }

    fn has(&self, cid: &Cid) -> Result<bool, Error> {
        Ok(self.blocks.read().contains_key(&cid.hash().to_bytes()))
    }

    fn size(&self, cid: &Cid) -> Result<Option<u64>, Error> {
        Ok(self
            .blocks
            .read()
            .get(&cid.hash().to_bytes())
            .map(|(_, d)| d.len() as u64))
    }

    fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, Error> {
        Ok(Box::new(MemBatch {
            store: self,
            pending: Vec::new(),
            _writer: self.writer.lock(),
        }))
    }

    fn delete_many(&self, cids: &[Cid]) -> Result<u64, Error> {
        let mut map = self.blocks.write();
        Ok(cids
            .iter()
            .filter(|c| map.remove(&c.hash().to_bytes()).is_some())
            .count() as u64)
    }

    fn list(&self) -> Result<Vec<Cid>, Error> {
        Ok(self.blocks.read().values().map(|(c, _)| *c).collect())
    }

    fn stats(&self) -> Result<StoreStats, Error> {
        let map = self.blocks.read();
        let bytes = map.values().map(|(_, d)| d.len() as u64).sum();
        Ok(StoreStats {
            blocks: map.len() as u64,
            block_bytes: bytes,
            disk_bytes: bytes,
        })
    }
}
