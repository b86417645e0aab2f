//! A shard's map from series path to series, built for the ingest path (also a connection's
//! map from path to what it sent before, [`super::Recent`]).
//!
//! With 100k series arriving round-robin, every line looks up a different series and the
//! lookup is a cache miss or two; a general hash map (entry → boxed key → compare) spends most
//! of the line's time waiting for memory. This table is one array of 16-byte entries (open
//! addressing, linear probing, at most half full) holding the low 32 bits of the hash (which
//! also pick the entry's place, so growing never hashes a name again), the series index, its
//! schema and where its name lies in one arena of names. A probe compares the tag
//! before touching the name, and [`PathTable::prefetch`] lets the caller ask for the entry of
//! a line a few lines ahead, so several misses are in flight at once instead of one after
//! another. Names are appended to the arena in creation order, so a client that sends its
//! series in the same order every interval reads the arena sequentially.

/// The hash a [`PathTable`] is keyed by (the store's hasher over the path).
pub(crate) type PathHash = u64;

const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Low 32 bits of the hash: where the entry belongs (below the mask), the rest a filter
    /// before the name is compared.
    tag: u32,
    /// Index of the series in its shard; [`EMPTY`] for a free entry.
    idx: u32,
    /// Offset of the name in the arena: a little-endian u32 length, then the bytes.
    off: u32,
    /// Index of the series' schema in its shard's list of schemas.
    schema: u32,
}

const FREE: Entry = Entry {
    tag: 0,
    idx: EMPTY,
    off: 0,
    schema: 0,
};

/// What a lookup finds: the series' index in its shard and its schema's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub idx: u32,
    pub schema: u32,
}

/// Path → [`Slot`]; see the module documentation.
#[derive(Debug)]
pub(crate) struct PathTable {
    entries: Vec<Entry>,
    names: Vec<u8>,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

impl PathTable {
    /// An empty table hashing with `hasher` (the one [`PathTable::hash`] and the callers of
    /// [`PathTable::get_hashed`] use).
    pub fn new(hasher: foldhash::fast::RandomState) -> PathTable {
        PathTable {
            entries: Vec::new(),
            names: Vec::new(),
            len: 0,
            hasher,
        }
    }

    /// The hash of `path`.
    #[inline]
    pub fn hash(&self, path: &str) -> PathHash {
        use std::hash::BuildHasher;
        self.hasher.hash_one(path)
    }

    /// The entry of `path`, or `None`.
    pub fn get(&self, path: &str) -> Option<Slot> {
        self.get_hashed(self.hash(path), path)
    }

    fn name_at(&self, off: u32) -> &[u8] {
        let off = off as usize;
        let Some(head) = self.names.get(off..off + 4) else {
            return &[];
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        self.names.get(off + 4..off + 4 + len).unwrap_or(&[])
    }

    /// The entry of `path` whose [`PathTable::hash`] is `hash`, or `None`.
    #[inline]
    pub fn get_hashed(&self, hash: PathHash, path: &str) -> Option<Slot> {
        self.get_bytes(hash, path.as_bytes())
    }

    /// [`PathTable::get_hashed`] of a path given as its bytes (a batch's paths were checked
    /// by the parser: no second UTF-8 check per line).
    #[inline]
    pub fn get_bytes(&self, hash: PathHash, path: &[u8]) -> Option<Slot> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.entries.len() - 1;
        let tag = hash as u32;
        let mut i = hash as usize & mask;
        loop {
            let e = self.entries[i];
            if e.idx == EMPTY {
                return None;
            }
            if e.tag == tag && same_bytes(self.name_at(e.off), path) {
                return Some(Slot {
                    idx: e.idx,
                    schema: e.schema,
                });
            }
            i = (i + 1) & mask;
        }
    }

    /// Ask the CPU to start loading the entry `hash` probes first (and, for an entry already
    /// loaded, its name): a hint, never a fault.
    #[inline]
    pub fn prefetch(&self, hash: PathHash) {
        if self.entries.is_empty() {
            return;
        }
        let i = hash as usize & (self.entries.len() - 1);
        prefetch(self.entries[i..].as_ptr().cast());
    }

    /// Ask for the name of the entry of `hash`, a path of `len` bytes (call some lines
    /// after [`PathTable::prefetch`] for the same hash, when the entry has arrived): the
    /// first of the entries probed in the cache line [`PathTable::prefetch`] loaded whose
    /// tag is the hash's (at half load, a third of the lookups find their entry after
    /// another one). Both ends of the name are asked for: a name and its length prefix
    /// cross a 64-byte line boundary about as often as not.
    #[inline]
    pub fn prefetch_name(&self, hash: PathHash, len: u32) {
        if self.entries.is_empty() {
            return;
        }
        let (mask, tag) = (self.entries.len() - 1, hash as u32);
        let mut i = hash as usize & mask;
        // Entries of one 64-byte line (four of 16 bytes, the vector 64-byte aligned or
        // not: at most the line's worth of probes).
        for _ in 0..4 {
            let e = self.entries[i];
            if e.idx == EMPTY {
                return;
            }
            if e.tag == tag {
                let (start, last) = (e.off as usize, e.off as usize + 4 + len as usize);
                if let Some(p) = self.names.get(start..) {
                    prefetch(p.as_ptr());
                }
                if let Some(p) = self.names.get(last.saturating_sub(1)..) {
                    prefetch(p.as_ptr());
                }
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// The name stored at `off` (what [`PathTable::insert`] returned); empty for an offset
    /// it did not return.
    pub fn name(&self, off: u32) -> &str {
        std::str::from_utf8(self.name_at(off)).unwrap_or("")
    }

    /// Add `path` (its [`PathTable::hash`] is `hash`), known to be absent. Returns where its
    /// name lies ([`PathTable::name`]): the table's copy is the only one a shard keeps.
    pub fn insert(&mut self, hash: PathHash, path: &str, slot: Slot) -> u32 {
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        let off = self.names.len() as u32;
        self.names
            .extend_from_slice(&(path.len() as u32).to_le_bytes());
        self.names.extend_from_slice(path.as_bytes());
        self.place(
            Entry {
                tag: hash as u32,
                idx: slot.idx,
                off,
                schema: slot.schema,
            },
            hash,
        );
        self.len += 1;
        off
    }

    /// Put `e` at the first free entry from the place of `hash` (its low 32 bits are enough:
    /// a table has fewer than 2^32 entries).
    fn place(&mut self, e: Entry, hash: PathHash) {
        let mask = self.entries.len() - 1;
        let mut i = hash as usize & mask;
        while self.entries[i].idx != EMPTY {
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
    }

    fn grow(&mut self) {
        let cap = (self.entries.len() * 2).max(64);
        let old = std::mem::replace(&mut self.entries, vec![FREE; cap]);
        for e in old.into_iter().filter(|e| e.idx != EMPTY) {
            self.place(e, e.tag as PathHash);
        }
    }

    /// Number of paths.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

/// `a == b`, eight bytes at a time, inline: a lookup compares the name it finds with the
/// line's path, a few dozen bytes, for which a call to `memcmp` costs more than the
/// comparison.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (x, y) in a8.by_ref().zip(b8.by_ref()) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_ne_bytes(y.try_into().unwrap_or_default());
        diff |= x ^ y;
    }
    for (x, y) in a8.remainder().iter().zip(b8.remainder()) {
        diff |= u64::from(x ^ y);
    }
    diff == 0
}

/// Ask the CPU to start loading the cache line of `p`.
#[inline]
pub(super) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint to the cache; it never faults and reads nothing into the
    // program, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn finds_what_was_inserted_through_growth_and_collisions() {
        let hasher = foldhash::fast::RandomState::default();
        let h = |p: &str| hasher.hash_one(p);
        let mut t = PathTable::new(hasher);
        let names: Vec<String> = (0..5000).map(|i| format!("a.b{i}.c")).collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get_hashed(h(n), n), None);
            let slot = Slot {
                idx: i as u32,
                schema: (i % 3) as u32,
            };
            let off = t.insert(h(n), n, slot);
            assert_eq!(t.name(off), n);
        }
        assert_eq!(t.len(), 5000);
        for (i, n) in names.iter().enumerate() {
            t.prefetch(h(n));
            t.prefetch_name(h(n), n.len() as u32);
            assert_eq!(
                t.get_hashed(h(n), n),
                Some(Slot {
                    idx: i as u32,
                    schema: (i % 3) as u32
                })
            );
        }
        assert_eq!(t.get("a.b5000.c"), None);
        assert_eq!(t.get("a.b42.c").map(|s| s.idx), Some(42));
        // Same hash, other name (a forced collision): told apart by the name.
        let mut c = PathTable::new(hasher);
        c.insert(7, "x", Slot { idx: 0, schema: 0 });
        c.insert(7, "y", Slot { idx: 1, schema: 0 });
        assert_eq!(c.get_hashed(7, "y").map(|s| s.idx), Some(1));
        assert_eq!(c.get_hashed(7, "x").map(|s| s.idx), Some(0));
        assert_eq!(c.get_hashed(7, "z"), None);
    }
}
