//! `N` doubly linked recency lists over one slab, with one map from key to node: the structure
//! under ARC (4 lists), and under the LRU (1) and 2Q (3) it is compared with. Every operation
//! is O(1). A node's value is `None` when it is a ghost (a remembered key without its bytes).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    key: K,
    value: Option<V>,
    size: u64,
    list: u8,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end.
    next: u32,
}

/// One list's ends and totals. `head` is the most recently used entry, `tail` the least.
#[derive(Clone, Copy, Debug)]
struct Ends {
    head: u32,
    tail: u32,
    bytes: u64,
    len: usize,
}

const EMPTY: Ends = Ends {
    head: NIL,
    tail: NIL,
    bytes: 0,
    len: 0,
};

/// A node's handle; valid until the node is removed.
pub(crate) type Id = u32;

pub(crate) struct Lists<K, V, S, const N: usize> {
    map: HashMap<K, u32, S>,
    nodes: Vec<Node<K, V>>,
    /// Indices of unused `nodes`.
    free: Vec<u32>,
    ends: [Ends; N],
}

impl<K: Hash + Eq + Clone, V, S: BuildHasher, const N: usize> Lists<K, V, S, N> {
    pub(crate) fn with_hasher(hasher: S) -> Self {
        Lists {
            map: HashMap::with_hasher(hasher),
            nodes: Vec::new(),
            free: Vec::new(),
            ends: [EMPTY; N],
        }
    }

    pub(crate) fn find(&self, key: &K) -> Option<Id> {
        self.map.get(key).copied()
    }

    pub(crate) fn list(&self, id: Id) -> usize {
        usize::from(self.nodes[id as usize].list)
    }

    pub(crate) fn size(&self, id: Id) -> u64 {
        self.nodes[id as usize].size
    }

    pub(crate) fn value(&self, id: Id) -> Option<&V> {
        self.nodes[id as usize].value.as_ref()
    }

    pub(crate) fn set_value(&mut self, id: Id, value: V) {
        self.nodes[id as usize].value = Some(value);
    }

    pub(crate) fn bytes(&self, list: usize) -> u64 {
        self.ends[list].bytes
    }

    pub(crate) fn len(&self, list: usize) -> usize {
        self.ends[list].len
    }

    /// The least recently used node of `list`.
    pub(crate) fn tail(&self, list: usize) -> Option<Id> {
        let t = self.ends[list].tail;
        (t != NIL).then_some(t)
    }

    /// Adds a new key at the front of `list`. The key must not be present.
    pub(crate) fn push(&mut self, list: usize, key: K, value: Option<V>, size: u64) -> Id {
        let node = Node {
            key: key.clone(),
            value,
            size,
            list: list as u8,
            prev: NIL,
            next: NIL,
        };
        let id = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.map.insert(key, id);
        self.link_front(list, id);
        id
    }

    /// Moves a node to the front of `list` (the same list or another).
    pub(crate) fn move_front(&mut self, id: Id, list: usize) {
        self.unlink(id);
        self.link_front(list, id);
    }

    /// Moves the least recently used node of `from` to the front of `to` as a ghost (its value
    /// dropped). Returns whether `from` had one.
    pub(crate) fn demote_lru(&mut self, from: usize, to: usize) -> bool {
        let Some(id) = self.tail(from) else {
            return false;
        };
        self.nodes[id as usize].value = None;
        self.move_front(id, to);
        true
    }

    /// Forgets the least recently used node of `list`. Returns whether it had one.
    pub(crate) fn remove_lru(&mut self, list: usize) -> bool {
        match self.tail(list) {
            Some(id) => {
                self.remove(id);
                true
            }
            None => false,
        }
    }

    /// Forgets a node: off its list, out of the map, its slot freed.
    pub(crate) fn remove(&mut self, id: Id) {
        self.unlink(id);
        let node = &mut self.nodes[id as usize];
        node.value = None;
        self.map.remove(&node.key);
        self.free.push(id);
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.nodes.clear();
        self.free.clear();
        self.ends = [EMPTY; N];
    }

    fn unlink(&mut self, id: Id) {
        let (list, prev, next, size) = {
            let n = &self.nodes[id as usize];
            (usize::from(n.list), n.prev, n.next, n.size)
        };
        let ends = &mut self.ends[list];
        if prev == NIL {
            ends.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            ends.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        ends.bytes -= size;
        ends.len -= 1;
    }

    fn link_front(&mut self, list: usize, id: Id) {
        let ends = &mut self.ends[list];
        let old = ends.head;
        ends.head = id;
        if old == NIL {
            ends.tail = id;
        } else {
            self.nodes[old as usize].prev = id;
        }
        ends.bytes += self.nodes[id as usize].size;
        ends.len += 1;
        let n = &mut self.nodes[id as usize];
        n.list = list as u8;
        n.prev = NIL;
        n.next = old;
    }

    /// The keys of `list`, most recently used first. For tests.
    pub(crate) fn keys(&self, list: usize) -> Vec<K> {
        let mut out = Vec::with_capacity(self.ends[list].len);
        let mut i = self.ends[list].head;
        while i != NIL {
            out.push(self.nodes[i as usize].key.clone());
            i = self.nodes[i as usize].next;
        }
        out
    }

    /// Checks the links, totals and map against each other, and that exactly the lists for
    /// which `resident` holds carry values. Panics naming what is broken.
    pub(crate) fn check(&self, resident: impl Fn(usize) -> bool) {
        let mut seen = 0;
        for (list, ends) in self.ends.iter().enumerate() {
            let (mut i, mut prev, mut bytes, mut len) = (ends.head, NIL, 0, 0);
            while i != NIL {
                let n = &self.nodes[i as usize];
                assert_eq!(usize::from(n.list), list, "node on the wrong list");
                assert_eq!(n.prev, prev, "broken back link");
                assert_eq!(n.value.is_some(), resident(list), "value presence is off");
                assert_eq!(self.map.get(&n.key), Some(&i), "map does not point at node");
                bytes += n.size;
                len += 1;
                prev = i;
                i = n.next;
            }
            assert_eq!(ends.tail, prev, "tail is not the last node");
            assert_eq!((ends.bytes, ends.len), (bytes, len), "list totals are off");
            seen += len;
        }
        assert_eq!(seen, self.map.len(), "map holds keys on no list");
        assert_eq!(seen + self.free.len(), self.nodes.len(), "leaked slots");
    }
}
