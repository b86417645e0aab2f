//! The on-disk spool of one destination: a directory of append-only segment files.
//!
//! Layout of `<spool_dir>/<destination>/`:
//! - `lock`: held with `flock` while a sender owns the directory (two agents must not share it);
//! - `<id:020>.seg`: segments, oldest id first. Each starts with the 8-byte magic
//!   [`SEGMENT_MAGIC`], then records `[len u32 LE][lines u32 LE][crc32 u32 LE][len bytes]`,
//!   the crc covering the `lines` field and the data. A record is one submitted chunk (whole
//!   lines), replayed byte-for-byte, so lines keep their original timestamps;
//! - `cursor`: `[segment id u64][offset u64][lines u64][crc32 u32]`, how far the oldest segment
//!   has been delivered. It is rewritten in place after every delivered batch.
//!
//! This module is synchronous (plain `std::fs`); it never blocks for long except for fsync,
//! which only happens as often as the [`FsyncPolicy`] says.
//!
//! Crash tolerance: a torn last record (kill -9 or power cut in the middle of an append) is
//! found at open — short header, length past the end of file, or bad crc — and the segment is
//! truncated to its last whole record; the torn record is counted, never replayed. A bad record
//! found while reading skips the rest of its segment (counted); other segments are untouched.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::config::FsyncPolicy;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"CBSPOOL1";
const HEADER: u64 = 12;
const CURSOR_LEN: usize = 28;
/// Ids of a fresh spool start here, so records can be put back in front of the oldest segment.
const FIRST_ID: u64 = 1 << 40;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

fn record_crc(lines: u32, data: &[u8]) -> u32 {
    let mut d = CRC.digest();
    d.update(&lines.to_le_bytes());
    d.update(data);
    d.finalize()
}

/// Limits of one spool.
#[derive(Debug, Clone, Copy)]
pub struct SpoolOptions {
    /// Cap on the bytes of all segment files; the oldest segments go first.
    pub max_bytes: u64,
    /// A segment is closed once it reaches this size.
    pub segment_bytes: u64,
    /// When appends are fsync'ed ([`Spool::sync`] is the caller's job for intervals).
    pub fsync: FsyncPolicy,
}

/// Lines and records lost inside the spool since the last [`Spool::take_losses`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Losses {
    /// Lines dropped because the cap was reached (oldest segment removed).
    pub cap_lines: u64,
    /// Torn or corrupt records found (at open or while reading).
    pub torn_records: u64,
    /// Lines in those records and in the rest of their segment (when the header told us).
    pub torn_lines: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// File length (magic included).
    bytes: u64,
    /// Lines in all records.
    lines: u64,
    /// Delivered up to here (a record boundary).
    read_off: u64,
    read_lines: u64,
    /// Corrupt byte ranges `[start, end)` found at open, stepped over when reading (their
    /// lines are not in `lines`; they were counted as lost when found).
    skips: Vec<(u64, u64)>,
}

impl Segment {
    /// `off`, moved past a corrupt range starting there.
    fn past_skips(&self, mut off: u64) -> u64 {
        while let Some(&(_, end)) = self.skips.iter().find(|(s, _)| *s == off) {
            off = end;
        }
        off
    }

    /// The start of the first corrupt range after `off` (or the end of the segment).
    fn next_skip(&self, off: u64) -> u64 {
        self.skips
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| *s > off)
            .min()
            .unwrap_or(self.bytes)
    }
}

/// A batch read from the oldest segment, not yet delivered: [`Spool::commit`] it once written.
#[derive(Debug)]
pub struct ReadBatch {
    pub data: Vec<u8>,
    pub lines: u64,
    seg: u64,
    start: u64,
    end: u64,
    /// Lines of the segment before `start`.
    before: u64,
}

/// One destination's spool directory.
pub struct Spool {
    dir: PathBuf,
    opts: SpoolOptions,
    segs: VecDeque<Segment>,
    /// The newest segment, open for appending (only segments created by this process).
    writer: Option<(u64, File)>,
    reader: Option<(u64, File)>,
    /// Where the next [`Spool::read_batch`] starts (segment id, offset): past the batches
    /// in flight. `None`: at the oldest segment's delivered position.
    /// The third number is the segment's lines before that offset.
    ahead: Option<(u64, u64, u64)>,
    cursor: File,
    next_id: u64,
    total_bytes: u64,
    losses: Losses,
    /// Appended or cursor moved since the last sync.
    dirty: bool,
    /// Segments written since the last sync that are no longer the writer (closed at
    /// `segment_bytes`, or put in front by [`Spool::prepend`]): [`Spool::sync`] syncs them
    /// too, so a closed segment's last records are on disk within the interval like the rest.
    unsynced: Vec<File>,
    /// A segment was created or removed since the last sync (directory needs fsync).
    dir_dirty: bool,
    scratch: Vec<u8>,
    _lock: File,
}

/// Most closed segments kept open until the next interval's sync.
const MAX_UNSYNCED: usize = 16;

fn seg_name(id: u64) -> String {
    format!("{id:020}.seg")
}

impl Spool {
    /// Open (or create) the spool in `dir`, checking every segment's records and dropping a
    /// torn tail. Fails if another process holds the directory.
    pub fn open(dir: &Path, opts: SpoolOptions) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("lock"))?;
        // SAFETY: flock on a valid, owned file descriptor.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            // The holder wrote who it is into the lock file when it took the lock.
            let mut holder = String::new();
            let _ = (&lock).take(512).read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                "another sender".to_string()
            } else {
                format!("another sender ({holder})")
            };
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "spool directory {} is in use by {holder}; each agent needs its own spool_dir",
                    dir.display()
                ),
            ));
        }
        // Say who holds it, for the message a second agent gets.
        let cmdline: Vec<String> = std::env::args().collect();
        let me: String = format!("pid {}: {}", std::process::id(), cmdline.join(" "))
            .chars()
            .take(400)
            .collect();
        lock.set_len(0)?;
        lock.write_all(me.as_bytes())?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let cursor = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("cursor"))?;
        let saved = read_cursor(&cursor);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            opts,
            segs: VecDeque::new(),
            writer: None,
            reader: None,
            ahead: None,
            cursor,
            next_id: ids.last().map_or(FIRST_ID, |l| l + 1),
            total_bytes: 0,
            losses: Losses::default(),
            dirty: false,
            unsynced: Vec::new(),
            dir_dirty: false,
            scratch: Vec::new(),
            _lock: lock,
        };
        for id in ids {
            let path = dir.join(seg_name(id));
            if saved.is_some_and(|(cid, _, _)| id < cid) {
                // Fully delivered before the crash, not yet removed.
                fs::remove_file(&path)?;
                continue;
            }
            let cursor_off = saved.and_then(|(cid, off, _)| (cid == id).then_some(off));
            match spool.scan_segment(id, &path, cursor_off)? {
                Some(seg) => {
                    spool.total_bytes += seg.bytes;
                    spool.segs.push_back(seg);
                }
                None => fs::remove_file(&path)?,
            }
        }
        Ok(spool)
    }

    /// Check one segment's records (every crc); truncate a torn tail, and step over a corrupt
    /// record in the middle to the next valid one (remembered in `Segment::skips`). `None` if
    /// nothing is left to send.
    fn scan_segment(
        &mut self,
        id: u64,
        path: &Path,
        cursor_off: Option<u64>,
    ) -> io::Result<Option<Segment>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut len = file.metadata()?.len();
        let mut magic = [0u8; 8];
        if len < 8 || file.read_exact_at(&mut magic, 0).is_err() || &magic != SEGMENT_MAGIC {
            if len > 0 {
                self.losses.torn_records += 1;
                tracing::warn!(segment = %path.display(), "spool segment has no valid header; removed");
            }
            return Ok(None);
        }
        let mut off = 8u64;
        let mut lines = 0u64;
        let mut read = (8u64, 0u64);
        let mut skips = Vec::new();
        let mut buf = Vec::new();
        while off < len {
            if cursor_off == Some(off) {
                read = (off, lines);
            }
            if let Some((rlen, rlines)) = valid_record(&file, off, len, &mut buf)? {
                lines += u64::from(rlines);
                off += HEADER + u64::from(rlen);
                continue;
            }
            let bad = resync(&file, off, len, &mut buf)?;
            self.losses.torn_records += 1;
            self.losses.torn_lines += bad.lines;
            if bad.next >= len {
                tracing::warn!(
                    segment = %path.display(), offset = off, lines = bad.lines,
                    "torn spool record (interrupted write) skipped; the segment is truncated there"
                );
                file.set_len(off)?;
                self.dir_dirty = true;
                len = off;
                break;
            }
            tracing::warn!(
                segment = %path.display(), offset = off, bytes = bad.next - off, lines = bad.lines,
                "corrupt spool record skipped; reading resumes at the next valid record"
            );
            skips.push((off, bad.next));
            off = bad.next;
        }
        if cursor_off == Some(off) {
            read = (off, lines);
        }
        if lines == read.1 {
            return Ok(None);
        }
        Ok(Some(Segment {
            id,
            bytes: len,
            lines,
            read_off: read.0,
            read_lines: read.1,
            skips,
        }))
    }

    /// Bytes of all segment files (what the cap applies to).
    pub fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Lines not yet delivered.
    pub fn lines(&self) -> u64 {
        self.segs.iter().map(|s| s.lines - s.read_lines).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Lines read ahead and not yet committed (in flight).
    pub fn inflight_lines(&self) -> u64 {
        let Some((sid, _, before)) = self.ahead else {
            return 0;
        };
        if !self.segs.iter().any(|s| s.id == sid) {
            return 0;
        }
        let mut n = 0;
        for s in &self.segs {
            if s.id == sid {
                return n + before.saturating_sub(s.read_lines);
            }
            n += s.lines - s.read_lines;
        }
        n
    }

    /// Does the spool hold lines not yet handed out (a replay in progress)?
    pub fn has_unsent(&self) -> bool {
        self.lines() > self.inflight_lines()
    }

    /// Losses since the last call.
    pub fn take_losses(&mut self) -> Losses {
        std::mem::take(&mut self.losses)
    }

    /// Append one record (whole lines) at the newest end. At the cap, the oldest segments are
    /// dropped first (counted in [`Losses::cap_lines`]).
    pub fn append(&mut self, data: &[u8], lines: u32) -> io::Result<()> {
        if data.is_empty() || lines == 0 {
            return Ok(());
        }
        let rec = HEADER + data.len() as u64;
        if rec + 8 > self.opts.max_bytes || data.len() > u32::MAX as usize {
            self.losses.cap_lines += u64::from(lines);
            return Ok(());
        }
        let need_new = match (&self.writer, self.segs.back()) {
            (Some((wid, _)), Some(last)) if *wid == last.id => {
                last.bytes > 8 && last.bytes + rec > self.opts.segment_bytes
            }
            _ => true,
        };
        let extra = rec + if need_new { 8 } else { 0 };
        self.enforce_cap(extra)?;
        // enforce_cap may have removed the writer's segment.
        let need_new = need_new || self.writer.is_none();
        if need_new {
            let id = self.next_id;
            self.next_id += 1;
            self.sync_unsynced_if_many()?;
            let file = self.create_segment(id)?;
            if let Some((_, old)) = self.writer.replace((id, file)) {
                if self.dirty && matches!(self.opts.fsync, FsyncPolicy::Interval(_)) {
                    self.unsynced.push(old);
                }
            }
            self.segs.push_back(Segment {
                id,
                bytes: 8,
                lines: 0,
                read_off: 8,
                read_lines: 0,
                skips: Vec::new(),
            });
            self.total_bytes += 8;
        }
        self.encode_record(data, lines);
        let Some((wid, file)) = self.writer.as_mut() else {
            return Err(io::Error::other("spool writer missing"));
        };
        if let Err(e) = file.write_all(&self.scratch) {
            // A full disk: leave no partial record, and no segment holding nothing.
            let wid = *wid;
            let before = self.segs.back().map_or(8, |s| s.bytes);
            if before <= 8 {
                self.writer = None;
                if self.segs.back().is_some_and(|s| s.id == wid) {
                    self.segs.pop_back();
                    self.total_bytes -= 8;
                }
                let _ = fs::remove_file(self.dir.join(seg_name(wid)));
            } else if file.set_len(before).is_err() {
                self.writer = None;
            }
            return Err(e);
        }
        if self.opts.fsync == FsyncPolicy::Always {
            file.sync_data()?;
        } else {
            self.dirty = true;
        }
        if let Some(last) = self.segs.back_mut() {
            last.bytes += rec;
            last.lines += u64::from(lines);
        }
        self.total_bytes += rec;
        Ok(())
    }

    /// Put a record back in front of the oldest one (a batch taken from memory whose write
    /// failed while newer lines were spooled). Keeps delivery order.
    pub fn prepend(&mut self, data: &[u8], lines: u32) -> io::Result<()> {
        let Some(head) = self.segs.front() else {
            return self.append(data, lines);
        };
        if data.is_empty() || lines == 0 {
            return Ok(());
        }
        let id = head.id - 1;
        self.sync_unsynced_if_many()?;
        let file = self.create_segment(id)?;
        self.encode_record(data, lines);
        if let Err(e) = (&file).write_all(&self.scratch) {
            let _ = fs::remove_file(self.dir.join(seg_name(id)));
            return Err(e);
        }
        // Reading starts again at this record (whatever was in flight is being put back).
        self.ahead = None;
        match self.opts.fsync {
            FsyncPolicy::Always => file.sync_data()?,
            FsyncPolicy::Interval(_) => {
                self.unsynced.push(file);
                self.dirty = true;
            }
            FsyncPolicy::Never => {}
        }
        let rec = HEADER + data.len() as u64;
        self.segs.push_front(Segment {
            id,
            bytes: 8 + rec,
            lines: u64::from(lines),
            read_off: 8,
            read_lines: 0,
            skips: Vec::new(),
        });
        self.total_bytes += 8 + rec;
        self.write_cursor()?;
        self.enforce_cap(0)
    }

    fn encode_record(&mut self, data: &[u8], lines: u32) {
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.scratch.extend_from_slice(&lines.to_le_bytes());
        self.scratch
            .extend_from_slice(&record_crc(lines, data).to_le_bytes());
        self.scratch.extend_from_slice(data);
    }

    fn create_segment(&mut self, id: u64) -> io::Result<File> {
        let path = self.dir.join(seg_name(id));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        if let Err(e) = file.write_all(SEGMENT_MAGIC) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        self.dir_dirty = true;
        if self.opts.fsync == FsyncPolicy::Always {
            file.sync_data()?;
            self.sync_dir()?;
        }
        Ok(file)
    }

    /// Drop oldest segments until `extra` more bytes fit under the cap.
    fn enforce_cap(&mut self, extra: u64) -> io::Result<()> {
        while self.total_bytes + extra > self.opts.max_bytes {
            let Some(seg) = self.segs.front() else { break };
            let lost = seg.lines - seg.read_lines;
            self.losses.cap_lines += lost;
            self.remove_head()?;
        }
        Ok(())
    }

    fn remove_head(&mut self) -> io::Result<()> {
        let Some(seg) = self.segs.pop_front() else {
            return Ok(());
        };
        if self.writer.as_ref().is_some_and(|(id, _)| *id == seg.id) {
            self.writer = None;
        }
        if self.reader.as_ref().is_some_and(|(id, _)| *id == seg.id) {
            self.reader = None;
        }
        self.total_bytes -= seg.bytes;
        match fs::remove_file(self.dir.join(seg_name(seg.id))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.dir_dirty = true;
        self.write_cursor()
    }

    /// Read whole records, up to `max_bytes` of data (at least one record), from where the
    /// last batch handed out ended: several batches can be in flight at once. Each stays in
    /// the spool until [`Spool::commit`]; [`Spool::unread`] makes reading start again at a
    /// batch that was not delivered.
    pub fn read_batch(&mut self, max_bytes: usize) -> io::Result<Option<ReadBatch>> {
        loop {
            let Some(head) = self.segs.front() else {
                self.ahead = None;
                return Ok(None);
            };
            let (idx, start, before) = match self.ahead {
                Some((sid, off, before)) => match self.segs.iter().position(|s| s.id == sid) {
                    Some(i) => (i, off, before),
                    None => (0, head.read_off, head.read_lines),
                },
                None => (0, head.read_off, head.read_lines),
            };
            let seg = &self.segs[idx];
            let (id, start, end_of_seg) = (seg.id, seg.past_skips(start), seg.bytes);
            if start >= end_of_seg {
                if idx == 0 && head.past_skips(head.read_off) >= end_of_seg {
                    // Everything in it delivered (or corrupt).
                    self.ahead = None;
                    self.remove_head()?;
                    continue;
                }
                match self.segs.get(idx + 1) {
                    Some(next) => {
                        self.ahead = Some((next.id, next.read_off, next.read_lines));
                        continue;
                    }
                    None => return Ok(None),
                }
            }
            let stop = seg.next_skip(start);
            if self.reader.as_ref().is_none_or(|(rid, _)| *rid != id) {
                let file = match File::open(self.dir.join(seg_name(id))) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound && idx == 0 => {
                        // Removed behind our back: its lines are lost; count them, go on.
                        let head = &self.segs[0];
                        self.losses.torn_records += 1;
                        self.losses.torn_lines += head.lines - head.read_lines;
                        tracing::warn!(segment = id, "spool segment file disappeared");
                        self.ahead = None;
                        self.remove_head()?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                self.reader = Some((id, file));
            }
            let Some((_, file)) = self.reader.as_ref() else {
                continue;
            };
            let mut data = Vec::new();
            let mut lines = 0u64;
            let mut off = start;
            let mut corrupt = false;
            let mut hdr = [0u8; HEADER as usize];
            while off < stop && (data.is_empty() || data.len() < max_bytes) {
                if off + HEADER > stop || file.read_exact_at(&mut hdr, off).is_err() {
                    corrupt = true;
                    break;
                }
                let rlen = parse_header(&hdr).0;
                if !data.is_empty() && data.len() + rlen as usize > max_bytes {
                    break;
                }
                match valid_record(file, off, stop, &mut self.scratch) {
                    Ok(Some((rlen, rlines))) => {
                        data.extend_from_slice(&self.scratch);
                        lines += u64::from(rlines);
                        off += HEADER + u64::from(rlen);
                    }
                    _ => {
                        corrupt = true;
                        break;
                    }
                }
            }
            if !data.is_empty() {
                self.ahead = Some((id, off, before + lines));
                return Ok(Some(ReadBatch {
                    data,
                    lines,
                    seg: id,
                    start,
                    end: off,
                    before,
                }));
            }
            if corrupt {
                // Changed on disk since it was checked at open: the rest of this segment is
                // not trusted. What it held (by the count checked at open) is lost.
                let seg = &mut self.segs[idx];
                let lost = seg.lines.saturating_sub(before);
                self.losses.torn_records += 1;
                self.losses.torn_lines += lost;
                tracing::warn!(
                    segment = %self.dir.join(seg_name(id)).display(), offset = off, lines = lost,
                    "corrupt spool record; the rest of this segment is skipped"
                );
                seg.lines = before;
                seg.skips.retain(|(s, _)| *s < off);
                seg.skips.push((off, seg.bytes));
                self.ahead = Some((id, off, before));
            }
        }
    }

    /// Reading starts again at `batch` (read but not delivered), and at nothing after it.
    pub fn unread(&mut self, batch: &ReadBatch) {
        self.ahead = Some((batch.seg, batch.start, batch.before));
    }

    /// Mark a batch from [`Spool::read_batch`] delivered. Batches are committed in the order
    /// they were read; ignored if its segment was dropped meanwhile (cap) or it is not the
    /// next batch.
    pub fn commit(&mut self, batch: &ReadBatch) -> io::Result<()> {
        let Some(head) = self.segs.front_mut() else {
            return Ok(());
        };
        if head.id != batch.seg || head.read_off != batch.start {
            return Ok(());
        }
        head.read_off = head.past_skips(batch.end);
        head.read_lines += batch.lines;
        if head.read_off >= head.bytes {
            if self.ahead.is_some_and(|(sid, _, _)| sid == batch.seg) {
                self.ahead = None;
            }
            self.remove_head()
        } else {
            self.write_cursor()
        }
    }

    fn write_cursor(&mut self) -> io::Result<()> {
        let (id, off, lines) = self
            .segs
            .front()
            .map_or((self.next_id, 8, 0), |s| (s.id, s.read_off, s.read_lines));
        let mut buf = [0u8; CURSOR_LEN];
        buf[0..8].copy_from_slice(&id.to_le_bytes());
        buf[8..16].copy_from_slice(&off.to_le_bytes());
        buf[16..24].copy_from_slice(&lines.to_le_bytes());
        let crc = CRC.checksum(&buf[..24]);
        buf[24..].copy_from_slice(&crc.to_le_bytes());
        self.cursor.write_all_at(&buf, 0)?;
        if self.opts.fsync == FsyncPolicy::Always {
            self.cursor.sync_data()?;
            if self.dir_dirty {
                self.sync_dir()?;
            }
        } else {
            self.dirty = true;
        }
        Ok(())
    }

    /// Sync the closed segments still waiting for [`Spool::sync`] now if there are many
    /// (small segments closing fast), so they never hold many file descriptors.
    fn sync_unsynced_if_many(&mut self) -> io::Result<()> {
        if self.unsynced.len() >= MAX_UNSYNCED {
            for f in &self.unsynced {
                f.sync_data()?;
            }
            self.unsynced.clear();
        }
        Ok(())
    }

    /// Is there anything for [`Spool::sync`] to do?
    pub fn needs_sync(&self) -> bool {
        self.dirty || self.dir_dirty
    }

    /// fsync appended data, the cursor and the directory if anything changed.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            for f in &self.unsynced {
                f.sync_data()?;
            }
            self.unsynced.clear();
            if let Some((_, f)) = &self.writer {
                f.sync_data()?;
            }
            self.cursor.sync_data()?;
            self.dirty = false;
        }
        if self.dir_dirty {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()?;
        self.dir_dirty = false;
        Ok(())
    }
}

/// The record at `off` if it is whole and its crc matches: `(len, lines)`, its data in `buf`.
/// A record whose only damage is its `lines` field (the crc matches the data with the number
/// of lines it really has) is repaired: its true count is returned.
fn valid_record(
    file: &File,
    off: u64,
    len: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(u32, u32)>> {
    let mut hdr = [0u8; HEADER as usize];
    if off + HEADER > len {
        return Ok(None);
    }
    file.read_exact_at(&mut hdr, off)?;
    let (rlen, rlines, rcrc) = parse_header(&hdr);
    if rlen == 0 || off + HEADER + u64::from(rlen) > len {
        return Ok(None);
    }
    buf.resize(rlen as usize, 0);
    file.read_exact_at(buf, off + HEADER)?;
    if buf.last() != Some(&b'\n') {
        return Ok(None);
    }
    if plausible(rlen, rlines) && record_crc(rlines, buf) == rcrc {
        return Ok(Some((rlen, rlines)));
    }
    let real = buf.iter().filter(|&&b| b == b'\n').count() as u32;
    Ok((real != rlines && record_crc(real, buf) == rcrc).then_some((rlen, real)))
}

/// Can a record header be true? Every line ends in `\n`, so a record has at most as many
/// lines as bytes (a flipped bit in `lines` usually breaks this).
fn plausible(rlen: u32, rlines: u32) -> bool {
    rlen > 0 && rlines > 0 && rlines <= rlen
}

/// A corrupt region of a segment: where the next valid record starts (or the end of the
/// file) and how many lines were in between.
struct Corrupt {
    next: u64,
    lines: u64,
}

/// Find the next valid record after a bad one at `off`. Records hold whole lines, so a record
/// starts right after a `\n`: only those positions are tried (and confirmed by the crc). The
/// lines lost are the `\n`s of the skipped data; for a record torn at the end of the file
/// whose header is intact, the header's count (its last line may be cut).
fn resync(file: &File, off: u64, len: u64, buf: &mut Vec<u8>) -> io::Result<Corrupt> {
    const WINDOW: u64 = 64 << 10;
    let data_start = (off + HEADER).min(len);
    let mut newlines = 0u64;
    let mut pos = off + 1;
    let mut window = vec![0u8; WINDOW as usize];
    let mut probe = Vec::new();
    let next = 'search: loop {
        if pos >= len {
            break len;
        }
        let n = (len - pos).min(WINDOW) as usize;
        file.read_exact_at(&mut window[..n], pos)?;
        for (i, &b) in window[..n].iter().enumerate() {
            if b != b'\n' {
                continue;
            }
            let at = pos + i as u64;
            let cand = at + 1;
            if cand < len && valid_record(file, cand, len, &mut probe)?.is_some() {
                if at >= data_start {
                    newlines += 1;
                }
                break 'search cand;
            }
            if at >= data_start {
                newlines += 1;
            }
        }
        pos += n as u64;
    };
    let mut lines = newlines;
    if next >= len {
        // A torn tail: trust an intact header's count (the cut line has no `\n` yet).
        let mut hdr = [0u8; HEADER as usize];
        if off + HEADER <= len && file.read_exact_at(&mut hdr, off).is_ok() {
            let (rlen, rlines, _) = parse_header(&hdr);
            if plausible(rlen, rlines) && off + HEADER + u64::from(rlen) > len {
                lines = lines.max(u64::from(rlines));
            }
        }
    }
    buf.clear();
    Ok(Corrupt { next, lines })
}

fn parse_header(h: &[u8; HEADER as usize]) -> (u32, u32, u32) {
    let w = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    (w(0), w(4), w(8))
}

fn read_cursor(file: &File) -> Option<(u64, u64, u64)> {
    let mut buf = [0u8; CURSOR_LEN];
    file.read_exact_at(&mut buf, 0).ok()?;
    let crc = u32::from_le_bytes(buf[24..28].try_into().ok()?);
    if CRC.checksum(&buf[..24]) != crc {
        return None;
    }
    let w = |i: usize| buf[i..i + 8].try_into().ok().map(u64::from_le_bytes);
    Some((w(0)?, w(8)?, w(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(max: u64, seg: u64) -> SpoolOptions {
        SpoolOptions {
            max_bytes: max,
            segment_bytes: seg,
            fsync: FsyncPolicy::Never,
        }
    }

    fn rec(i: u32) -> Vec<u8> {
        format!("a.b.c {i} {}\n", 1_700_000_000 + i).into_bytes()
    }

    /// Read and commit everything; return the records as text lines.
    fn drain(s: &mut Spool) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(b) = s.read_batch(100).unwrap() {
            out.extend(
                String::from_utf8(b.data.clone())
                    .unwrap()
                    .lines()
                    .map(String::from),
            );
            s.commit(&b).unwrap();
        }
        out
    }

    fn expected(range: std::ops::Range<u32>) -> Vec<String> {
        range
            .map(|i| String::from_utf8(rec(i)).unwrap().trim_end().to_string())
            .collect()
    }

    #[test]
    fn appends_and_reads_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 200)).unwrap();
        for i in 0..50 {
            s.append(&rec(i), 1).unwrap();
        }
        assert!(s.segs.len() > 3, "small segments rotate");
        assert_eq!(s.lines(), 50);
        assert_eq!(drain(&mut s), expected(0..50));
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .collect();
        assert!(left.is_empty(), "delivered segments are removed");
        assert_eq!(s.take_losses(), Losses::default());
    }

    #[test]
    fn uncommitted_batch_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
        s.append(&rec(1), 1).unwrap();
        let a = s.read_batch(1000).unwrap().unwrap();
        // Everything is in flight: nothing more to read until a batch is unread or committed.
        assert!(s.read_batch(1000).unwrap().is_none());
        s.unread(&a);
        let b = s.read_batch(1000).unwrap().unwrap();
        assert_eq!(a.data, b.data);
        s.commit(&a).unwrap();
        s.commit(&b).unwrap(); // stale: ignored
        assert!(s.read_batch(1000).unwrap().is_none());
    }

    #[test]
    fn cap_drops_oldest_segments_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let r = rec(0).len() as u64 + HEADER;
        // Segments of 5 records, room for 4 segments.
        let seg = 8 + 5 * r;
        let mut s = Spool::open(dir.path(), opts(4 * seg, seg)).unwrap();
        for i in 0..100 {
            s.append(&rec(i), 1).unwrap();
            assert!(s.bytes() <= 4 * seg);
        }
        let losses = s.take_losses();
        let kept = drain(&mut s);
        assert_eq!(losses.cap_lines + kept.len() as u64, 100);
        assert!(losses.cap_lines > 0);
        // What is kept is the newest, in order.
        let first = 100 - kept.len() as u32;
        assert_eq!(kept, expected(first..100));
    }

    #[test]
    fn survives_reopen_with_cursor() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), opts(1 << 20, 300)).unwrap();
            for i in 0..30 {
                s.append(&rec(i), 1).unwrap();
            }
            // Deliver the first 7 records (batches of ~100 bytes: several records each).
            let mut n = 0;
            while n < 7 {
                let b = s.read_batch(1).unwrap().unwrap();
                n += b.lines;
                s.commit(&b).unwrap();
            }
            // A second opener is refused while this one holds the lock.
            assert!(Spool::open(dir.path(), opts(1 << 20, 300)).is_err());
        }
        let mut s = Spool::open(dir.path(), opts(1 << 20, 300)).unwrap();
        assert_eq!(s.lines(), 23);
        s.append(&rec(30), 1).unwrap();
        assert_eq!(drain(&mut s), expected(7..31));
        drop(s);
        let mut s = Spool::open(dir.path(), opts(1 << 20, 300)).unwrap();
        assert!(s.is_empty());
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn truncated_tail_record_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
            for i in 0..10 {
                s.append(&rec(i), 1).unwrap();
            }
        }
        let seg = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "seg"))
            .unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        // Cut the last record in the middle of its data.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
        let l = s.take_losses();
        assert_eq!(l.torn_records, 1);
        assert_eq!(l.torn_lines, 1);
        s.append(&rec(10), 1).unwrap();
        let mut want = expected(0..9);
        want.extend(expected(10..11));
        assert_eq!(drain(&mut s), want);
    }

    #[test]
    fn zeroed_tail_and_corrupt_middle_are_contained() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), opts(1 << 20, 8 + 3 * 40)).unwrap();
            for i in 0..9 {
                s.append(&rec(i), 1).unwrap();
            }
        }
        let mut segs: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        segs.sort();
        assert_eq!(segs.len(), 3);
        // Last segment: zeros appended (power cut after a size update).
        let f = OpenOptions::new().append(true).open(&segs[2]).unwrap();
        (&f).write_all(&[0u8; 30]).unwrap();
        // Middle segment: flip a data byte in its first record.
        let f = OpenOptions::new().write(true).open(&segs[1]).unwrap();
        f.write_all_at(b"X", 8 + HEADER + 2).unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 8 + 3 * 40)).unwrap();
        let l = s.take_losses();
        assert_eq!(l.torn_records, 2, "zero tail and the corrupt middle record");
        assert_eq!(l.torn_lines, 1, "the corrupt record's one line");
        assert_eq!(s.lines(), 8);
        let got = drain(&mut s);
        assert_eq!(s.take_losses(), Losses::default());
        let mut want = expected(0..3);
        want.extend(expected(4..9));
        assert_eq!(got, want, "the rest of the middle segment is read");
    }

    /// Records of `n` lines each: `(segment path, offsets of the records)`.
    fn spool_of_records(dir: &Path, records: u32, n: u32) -> (PathBuf, Vec<u64>) {
        let mut s = Spool::open(dir, opts(1 << 20, 1 << 20)).unwrap();
        let mut offs = Vec::new();
        let mut off = 8;
        for r in 0..records {
            let data: Vec<u8> = (0..n).flat_map(|i| rec(r * n + i)).collect();
            offs.push(off);
            off += HEADER + data.len() as u64;
            s.append(&data, n).unwrap();
        }
        drop(s);
        let seg = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "seg"))
            .unwrap();
        (seg, offs)
    }

    #[test]
    fn a_corrupt_record_length_loses_that_record_only_and_counts_its_lines() {
        for bad_len in [0u32, 7, 0x00ff_0000, u32::MAX] {
            let dir = tempfile::tempdir().unwrap();
            let (seg, offs) = spool_of_records(dir.path(), 10, 3);
            let f = OpenOptions::new().write(true).open(&seg).unwrap();
            f.write_all_at(&bad_len.to_le_bytes(), offs[4]).unwrap();
            let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
            let l = s.take_losses();
            assert_eq!(
                (l.torn_records, l.torn_lines),
                (1, 3),
                "length {bad_len:#x}"
            );
            assert_eq!(s.lines(), 27);
            let mut want = expected(0..12);
            want.extend(expected(15..30));
            assert_eq!(drain(&mut s), want, "length {bad_len:#x}");
            assert_eq!(s.take_losses(), Losses::default());
        }
    }

    #[test]
    fn a_flipped_line_count_is_repaired_not_reported_as_millions_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, offs) = spool_of_records(dir.path(), 5, 3);
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        // lines = 3 | 1 << 24: 16,777,219
        f.write_all_at(&(3u32 | 1 << 24).to_le_bytes(), offs[2] + 4)
            .unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
        assert_eq!(s.take_losses(), Losses::default());
        assert_eq!(s.lines(), 15);
        assert_eq!(drain(&mut s), expected(0..15));
        // A flipped count *and* a damaged byte: the record is lost, counted by its real lines.
        let dir = tempfile::tempdir().unwrap();
        let (seg, offs) = spool_of_records(dir.path(), 5, 3);
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(&(3u32 | 1 << 24).to_le_bytes(), offs[2] + 4)
            .unwrap();
        f.write_all_at(b"Z", offs[2] + HEADER + 1).unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
        let l = s.take_losses();
        assert_eq!((l.torn_records, l.torn_lines), (1, 3));
        let mut want = expected(0..6);
        want.extend(expected(9..15));
        assert_eq!(drain(&mut s), want);
    }

    #[test]
    fn a_torn_tail_counts_the_lines_its_header_announced() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, offs) = spool_of_records(dir.path(), 4, 5);
        // Cut in the middle of the last record's second line.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(offs[3] + HEADER + 25)
            .unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
        let l = s.take_losses();
        assert_eq!((l.torn_records, l.torn_lines), (1, 5));
        assert_eq!(drain(&mut s), expected(0..15));
    }

    #[test]
    fn batches_in_flight_are_read_ahead_and_unread_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 200)).unwrap();
        for i in 0..20 {
            s.append(&rec(i), 1).unwrap();
        }
        // Three batches in flight, across segments.
        let a = s.read_batch(60).unwrap().unwrap();
        let b = s.read_batch(60).unwrap().unwrap();
        let c = s.read_batch(60).unwrap().unwrap();
        assert_ne!(a.data, b.data);
        assert_ne!(b.data, c.data);
        // Only the first is delivered; the others are read again, in order.
        s.commit(&a).unwrap();
        s.unread(&b);
        let b2 = s.read_batch(60).unwrap().unwrap();
        assert_eq!(b2.data, b.data);
        s.commit(&b2).unwrap();
        let mut got: Vec<String> = [&a, &b2]
            .iter()
            .flat_map(|x| {
                String::from_utf8(x.data.clone())
                    .unwrap()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        got.extend(drain(&mut s));
        assert_eq!(got, expected(0..20));
        assert!(s.is_empty());
    }

    #[test]
    fn prepend_goes_before_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
        s.append(&rec(2), 1).unwrap();
        s.prepend(&rec(1), 1).unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), opts(1 << 20, 1 << 20)).unwrap();
        assert_eq!(drain(&mut s), expected(1..3));
    }
}
