//! What one connection sent before, in the order it sent it: the listener's shortcut for
//! the lines of series it has seen.
//!
//! A collection agent (Diamond, collectd, Telegraf, a carbon relay) sends the same series
//! every interval, and in the same order. A connection's [`Recent`] remembers each series
//! the connection sent (its path, and its [`SeriesRef`] in the store) in the order of first
//! arrival, and a cursor: the series expected next. A line that starts with the expected
//! path and a space is that series' line; only its value and timestamp are left to read,
//! with the parser's own [`crate::protocol::parse_value_ts`], and its point is cached by
//! reference: no scan for the path's end, no path check, no hash, no table lookup. The
//! remembered paths lie in one arena in arrival order, so comparing them reads memory
//! sequentially.
//!
//! Any other line takes the general path (parse, hash, look the path up in the store); if
//! the connection sent that series before, the cursor moves to just after it, so a client
//! that changes its order, or starts a new interval, is followed after one such line. A
//! client whose lines come in no stable order (most lines of a read are such jumps) makes
//! the memory stop for the rest of the read after 32 such lines, and pause for 4, 8, … up
//! to 64 reads: such a client pays ~32 lookups in ~65 reads. Lines of remembered series
//! that follow a new one (not looked up while the connection sends new series, but by
//! [`Recent::remember`] after the read is cached) count as jumps too, so a stream in no
//! order that still brings a new series now and then (all lines shuffled) pauses as well.
//!
//! Only paths the parser's fast path takes as they are ([`crate::protocol::plain_path`]:
//! untagged printable ASCII) are remembered, so a line that matches gives exactly what
//! [`crate::protocol::parse_line`] would. Memory: the path and 16 bytes per remembered
//! series (and ~40 more once a lookup table is needed), at most [`MAX_REMEMBERED`] series and
//! [`MAX_REMEMBERED_BYTES`] of paths per connection;
//! a connection that sends more distinct series than that starts over, and it is freed
//! when the connection closes.

use super::paths::{PathHash, PathTable, Slot};
use super::{SeriesRef, Store};

/// Most series a connection remembers (~15–25 MiB with 40-byte paths).
pub(crate) const MAX_REMEMBERED: usize = 1 << 18;

/// Longest pause (in reads) of a connection whose lines do not come in a stable order.
const MAX_PAUSE: u32 = 64;

/// Fewest jumps in a read that can end its use of the memory and start a pause (a few
/// lines say little).
const MIN_JUMPS: u32 = 32;

/// Most bytes of remembered paths per connection.
pub(crate) const MAX_REMEMBERED_BYTES: usize = 16 << 20;

/// One remembered series: where its path lies in `names`, and the series.
#[derive(Debug, Clone, Copy)]
struct Seen {
    off: u32,
    len: u32,
    series: SeriesRef,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Recent {
    /// The remembered paths, one after the other in `seq`'s order.
    names: String,
    seq: Vec<Seen>,
    /// Path → position in `seq` (`Slot::idx`), built when first needed: a connection whose
    /// lines come in the same order every interval never needs it, and while it sends new
    /// series (created by its lines, so not remembered yet) nothing is looked up.
    table: Option<PathTable>,
    hasher: foldhash::fast::RandomState,
    /// The position in `seq` expected next; after the last one the first is expected again
    /// (a new interval).
    cursor: usize,
    /// The last line that was not the expected one was of a series not remembered: the
    /// connection is sending series for the first time (its first interval, or new series),
    /// so the lines that follow are taken as new too without looking them up here.
    in_new: bool,
    /// In the current read: lines that were the expected one, and lines of remembered
    /// series that were not (each a lookup and a jump of the cursor).
    matched: u32,
    jumped: u32,
    /// Lines [`Recent::remember`] found remembered already: lines of remembered series that
    /// came while `in_new` held (so `find` did not look them up), each a lookup all the
    /// same. Counted with the jumps of the read that ends next: a client whose lines come
    /// in no stable order and that still sends a new series now and then (a shuffled
    /// stream: intervals mixed) would otherwise look up nearly every line here after the
    /// first new one of each read, and never pause.
    relooked: u32,
    /// Reads left to take without this memory, and how many the last such pause was: a
    /// client that sends its series in no stable order makes every line a jump, which
    /// costs more than it saves.
    pause: u32,
    backoff: u32,
}

impl Recent {
    /// An empty memory for a connection to `store` (its paths are hashed as the store
    /// hashes them, so one hash serves both).
    pub(crate) fn new(store: &Store) -> Recent {
        Recent::with_hasher(store.hasher)
    }

    fn with_hasher(hasher: foldhash::fast::RandomState) -> Recent {
        Recent {
            names: String::new(),
            seq: Vec::new(),
            table: None,
            hasher,
            cursor: 0,
            in_new: false,
            matched: 0,
            jumped: 0,
            relooked: 0,
            pause: 0,
            backoff: 0,
        }
    }

    /// A read begins: whether to use this memory for it (not while pausing).
    pub(crate) fn begin_read(&mut self) -> bool {
        if self.pause > 0 {
            self.pause -= 1;
            return false;
        }
        self.matched = 0;
        self.jumped = 0;
        true
    }

    /// Whether the lines of this read so far were mostly of remembered series in another
    /// order (then the rest of the read is better parsed without this memory).
    #[inline]
    pub(crate) fn unpredictable(&self) -> bool {
        self.jumped >= MIN_JUMPS && self.jumped > 2 * self.matched
    }

    /// The read (begun with [`Recent::begin_read`] returning true) ended: if most of its
    /// lines of remembered series were jumps, pause for a number of reads that doubles
    /// each time (up to [`MAX_PAUSE`]).
    pub(crate) fn end_read(&mut self) {
        let jumped = self
            .jumped
            .saturating_add(std::mem::take(&mut self.relooked));
        if jumped >= MIN_JUMPS && jumped > self.matched {
            self.backoff = (self.backoff * 2).clamp(4, MAX_PAUSE);
            self.pause = self.backoff;
        } else if self.matched > jumped {
            self.backoff = 0;
        }
    }

    /// The path expected next and its series.
    #[inline]
    pub(crate) fn expected(&self) -> Option<(&[u8], SeriesRef)> {
        let s = self.seq.get(self.cursor)?;
        let name = self
            .names
            .as_bytes()
            .get(s.off as usize..(s.off + s.len) as usize)?;
        Some((name, s.series))
    }

    /// The expected series' line came: expect the one after it.
    #[inline]
    pub(crate) fn advance(&mut self) {
        self.matched += 1;
        self.cursor += 1;
        if self.cursor == self.seq.len() {
            self.cursor = 0;
        }
        self.in_new = false;
    }

    /// The table from path to position, built now if it was not.
    fn table(&mut self) -> &mut PathTable {
        let (names, seq, hasher) = (&self.names, &self.seq, self.hasher);
        self.table.get_or_insert_with(|| {
            let mut t = PathTable::new(hasher);
            for (i, s) in seq.iter().enumerate() {
                let path = names
                    .get(s.off as usize..(s.off + s.len) as usize)
                    .unwrap_or("");
                let slot = Slot {
                    idx: i as u32,
                    schema: 0,
                };
                t.insert(t.hash(path), path, slot);
            }
            t
        })
    }

    /// A line of `path` (hashed `hash`) came instead of the expected one: its series if the
    /// connection sent it before (then the one after it is expected next), else
    /// [`SeriesRef::NONE`] (the expected one stays expected: the line may be a series
    /// inserted before it). Not looked up while the connection sends new series.
    pub(crate) fn find(&mut self, hash: PathHash, path: &str) -> SeriesRef {
        if self.in_new || self.seq.is_empty() {
            self.in_new = true;
            return SeriesRef::NONE;
        }
        match self.table().get_hashed(hash, path) {
            Some(slot) => {
                self.jumped += 1;
                self.cursor = slot.idx as usize + 1;
                if self.cursor == self.seq.len() {
                    self.cursor = 0;
                }
                self.seq[slot.idx as usize].series
            }
            None => {
                self.in_new = true;
                SeriesRef::NONE
            }
        }
    }

    /// Remember that `path` (hashed `hash`) is `series`, after the series remembered last.
    /// `created`: the series was created by this line, so it cannot be remembered already.
    /// Paths the parser's fast path does not take as they are, and paths already
    /// remembered, are not remembered.
    pub(crate) fn remember(
        &mut self,
        hash: PathHash,
        path: &str,
        series: SeriesRef,
        created: bool,
    ) {
        if series.is_none() || !crate::protocol::plain_path(path.as_bytes()) {
            return;
        }
        if !created && self.table().get_hashed(hash, path).is_some() {
            // A series sent before, taken as new by `find`: look lines up again.
            self.in_new = false;
            self.relooked = self.relooked.saturating_add(1);
            return;
        }
        if self.seq.len() >= MAX_REMEMBERED || self.names.len() + path.len() > MAX_REMEMBERED_BYTES
        {
            // More distinct series than the bound: start over (a client whose series change
            // keeps a memory of what it sends now).
            *self = Recent {
                pause: self.pause,
                backoff: self.backoff,
                ..Recent::with_hasher(self.hasher)
            };
        }
        let idx = self.seq.len() as u32;
        if let Some(t) = &mut self.table {
            t.insert(hash, path, Slot { idx, schema: 0 });
        }
        self.seq.push(Seen {
            off: self.names.len() as u32,
            len: path.len() as u32,
            series,
        });
        self.names.push_str(path);
    }

    /// Whether reads are taken without this memory for now.
    #[cfg(test)]
    pub(crate) fn paused(&self) -> bool {
        self.pause > 0
    }

    /// Number of series remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seq.len()
    }
}
