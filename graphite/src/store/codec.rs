//! The compressed chunk format (format 2): which slots hold a value, then the values.
//!
//! ```text
//! 2                                   tag (format 1 blobs start with 0: dense, 1: sparse)
//! presence                            0: every slot; 1: runs (count, then lengths of absent
//!                                     and present runs, alternating); 2: bitmap (45 bytes)
//! values                              0: raw f64 LE; 1: scaled (below)
//! ```
//!
//! Scaled values: a multiplier `M` is chosen so that every value is an integer `k` over it
//! (`M = 100` for values with two decimals, `600` for averages of six of them: the rollups),
//! and a value is stored as `k` plus its difference in units in the last place from
//! `k as f64 / M` (zero when `M` fits exactly, so lossless for any value). The `k` are
//! stored as differences of order 1 or 2 (counters: steady increments differ little), and
//! each stream of integers as a frame of reference and fixed-width bit-packing, or as a list
//! of its non-zero entries when that is smaller (slowly-changing gauges, exact residuals).
//! Numbers in headers are LEB128 varints (signed ones zigzagged).
//!
//! Why not a crate: `pco` (pcodec) compresses these values well but costs 20–120 µs to
//! encode a 360-value chunk and ~0.25 bytes per point of metadata at that size (a flush
//! re-encodes every chunk it touches), Gorilla's XOR scheme (`tsz`) takes 6–7 bytes per
//! point on decimal values; docs/store.md has the measurements. Pure: no I/O, no panics on
//! any input (every read is checked; a malformed blob decodes to `None`).

use super::chunk::CHUNK_SLOTS;

/// The tag of a format-2 blob (the first byte).
pub const TAG: u8 = 2;

const SLOTS: usize = CHUNK_SLOTS as usize;
const BITMAP_BYTES: usize = SLOTS.div_ceil(8);
/// Values decoded at a time by [`for_each_in`].
const BLOCK: usize = 64;

/// Multipliers tried, smallest first: powers of ten times the denominators averages
/// produce (whisper's rollups: 6 ten-second slots a minute, 10 minutes, 60…).
fn multipliers() -> &'static [u64] {
    static M: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let mut m: Vec<u64> = [1u64, 6, 60, 360, 2520, 3600, 15120, 151_200]
            .iter()
            .flat_map(|c| (0..=9).map(move |e| c * 10u64.pow(e)))
            .filter(|&m| m <= 1_000_000_000_000)
            .collect();
        m.sort_unstable();
        m.dedup();
        m
    })
}

/// Encode `values` (one per slot, NaN for none) into `out` (cleared first).
pub fn encode(values: &[f64], out: &mut Vec<u8>) {
    out.clear();
    out.push(TAG);
    let mut known = [0f64; SLOTS];
    let mut n = 0;
    for v in values.iter().take(SLOTS) {
        if !v.is_nan() {
            known[n] = *v;
            n += 1;
        }
    }
    let known = &known[..n];
    put_presence(values, n, out);
    if n == 0 {
        return;
    }
    let mark = out.len();
    if let Some(m) = pick_multiplier(known) {
        put_scaled(known, m, out);
        if out.len() - mark <= 1 + 8 * n {
            return;
        }
        out.truncate(mark);
    }
    out.push(0);
    for v in known {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_presence(values: &[f64], n: usize, out: &mut Vec<u8>) {
    let values = &values[..values.len().min(SLOTS)];
    if n == SLOTS {
        out.push(0);
        return;
    }
    // Runs of absent and present slots, alternating, starting with an absent one.
    let mut runs = [0u16; SLOTS + 1];
    let mut count = 0;
    let mut present = false;
    let mut len = 0u16;
    for v in values {
        if v.is_nan() == present {
            runs[count] = len;
            count += 1;
            present = !present;
            len = 0;
        }
        len += 1;
    }
    if present {
        runs[count] = len;
        count += 1;
    }
    let runs = &runs[..count];
    let size = varint_len(count as u64) + runs.iter().map(|&r| varint_len(r as u64)).sum::<usize>();
    if size <= BITMAP_BYTES {
        out.push(1);
        put_varint(count as u64, out);
        for &r in runs {
            put_varint(r as u64, out);
        }
        return;
    }
    out.push(2);
    let mut bits = [0u8; BITMAP_BYTES];
    for (i, v) in values.iter().enumerate() {
        if !v.is_nan() {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&bits);
}

/// The smallest multiplier that a sample of `known` fits within two units in the last place.
fn pick_multiplier(known: &[f64]) -> Option<u64> {
    const SAMPLE: usize = 16;
    let stride = known.len().div_ceil(SAMPLE).max(1);
    'next: for &m in multipliers() {
        let mf = m as f64;
        for &v in known.iter().step_by(stride) {
            let x = v * mf;
            // Not NaN: values never are, and the multiplier is finite.
            if x.abs() >= (1u64 << 52) as f64 {
                continue 'next;
            }
            let k = x.round() as i64;
            if residual(v, k, mf).unsigned_abs() > 2 {
                continue 'next;
            }
        }
        return Some(m);
    }
    None
}

/// `v`'s distance in units in the last place from `k / m`.
fn residual(v: f64, k: i64, m: f64) -> i64 {
    v.to_bits().wrapping_sub((k as f64 / m).to_bits()) as i64
}

fn put_scaled(known: &[f64], m: u64, out: &mut Vec<u8>) {
    let n = known.len();
    let mf = m as f64;
    let mut k = [0i64; SLOTS];
    let mut r = [0i64; SLOTS];
    for (j, &v) in known.iter().enumerate() {
        let x = v * mf;
        // Saturating for values too large for the multiplier: the residual keeps them exact.
        k[j] = x.round() as i64;
        r[j] = residual(v, k[j], mf);
    }
    let (k, r) = (&k[..n], &r[..n]);
    // First differences, and second differences after the first one.
    let mut d1 = [0i64; SLOTS];
    let mut d2 = [0i64; SLOTS];
    for j in 1..n {
        d1[j - 1] = k[j].wrapping_sub(k[j - 1]);
    }
    for j in 1..n.saturating_sub(1) {
        d2[j - 1] = d1[j].wrapping_sub(d1[j - 1]);
    }
    let d1 = &d1[..n.saturating_sub(1)];
    let d2 = &d2[..n.saturating_sub(2)];
    out.push(1);
    put_varint(m, out);
    put_varint(zigzag(k[0]), out);
    if n >= 3 && stream_size(d2) + varint_len(zigzag(d1[0])) < stream_size(d1) {
        out.push(2);
        put_varint(zigzag(d1[0]), out);
        put_stream(d2, out);
    } else {
        out.push(1);
        put_stream(d1, out);
    }
    put_stream(r, out);
}

/// Bytes [`put_stream`] writes for `s`.
fn stream_size(s: &[i64]) -> usize {
    let (packed, sparse) = stream_sizes(s);
    1 + packed.min(sparse)
}

/// (packed, sparse) sizes of `s`, without the kind byte.
fn stream_sizes(s: &[i64]) -> (usize, usize) {
    if s.is_empty() {
        return (0, 0);
    }
    let (mut lo, mut hi) = (s[0], s[0]);
    let mut sparse = 0;
    let mut count = 0u64;
    let mut last = 0usize;
    for (i, &x) in s.iter().enumerate() {
        lo = lo.min(x);
        hi = hi.max(x);
        if x != 0 {
            sparse += varint_len((i - last) as u64) + varint_len(zigzag(x));
            last = i;
            count += 1;
        }
    }
    let w = width(hi.wrapping_sub(lo) as u64);
    let packed = varint_len(zigzag(lo)) + 1 + (s.len() * w as usize).div_ceil(8);
    (packed, varint_len(count) + sparse)
}

fn width(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// A stream of integers: `0`, frame of reference (min), width, bit-packed offsets; or `1`,
/// count, then (gap to the previous non-zero index, value) for each non-zero entry.
fn put_stream(s: &[i64], out: &mut Vec<u8>) {
    let (packed, sparse) = stream_sizes(s);
    if sparse < packed {
        out.push(1);
        let count = s.iter().filter(|&&x| x != 0).count();
        put_varint(count as u64, out);
        let mut last = 0;
        for (i, &x) in s.iter().enumerate() {
            if x != 0 {
                put_varint((i - last) as u64, out);
                put_varint(zigzag(x), out);
                last = i;
            }
        }
        return;
    }
    out.push(0);
    let lo = s.iter().copied().min().unwrap_or(0);
    let hi = s.iter().copied().max().unwrap_or(0);
    let w = width(hi.wrapping_sub(lo) as u64);
    put_varint(zigzag(lo), out);
    out.push(w as u8);
    if w == 0 {
        return;
    }
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &x in s {
        acc |= (x.wrapping_sub(lo) as u64 as u128) << bits;
        bits += w;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

fn varint_len(x: u64) -> usize {
    (width(x).max(1) as usize).div_ceil(7)
}

fn put_varint(mut x: u64, out: &mut Vec<u8>) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// A checked reader over a blob.
struct Bytes<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> Option<u8> {
        let x = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(x)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            x |= ((b & 0x7f) as u64).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(x);
            }
        }
        None
    }

    fn ivarint(&mut self) -> Option<i64> {
        self.varint().map(unzigzag)
    }
}

/// A stream written by [`put_stream`], read in order.
enum Stream<'a> {
    Packed {
        lo: i64,
        w: u32,
        data: &'a [u8],
        bit: usize,
    },
    Sparse {
        left: u64,
        next: usize,
        value: i64,
        at: usize,
        b: Bytes<'a>,
    },
}

impl<'a> Stream<'a> {
    /// The stream of `len` entries at `b`'s position; `b` moves past it.
    fn read(b: &mut Bytes<'a>, len: usize) -> Option<Stream<'a>> {
        match b.byte()? {
            0 => {
                let lo = b.ivarint()?;
                let w = b.byte()? as u32;
                if w > 64 {
                    return None;
                }
                let data = b.take((len * w as usize).div_ceil(8))?;
                Some(Stream::Packed {
                    lo,
                    w,
                    data,
                    bit: 0,
                })
            }
            1 => {
                let left = b.varint()?;
                if left > len as u64 {
                    return None;
                }
                // The entries are varints: walk them now to find the stream's end.
                let start = b.pos;
                let mut at = 0usize;
                for i in 0..left {
                    let gap = b.varint()?;
                    at = at.checked_add(usize::try_from(gap).ok()?)?;
                    if at >= len || (i > 0 && gap == 0) {
                        return None;
                    }
                    b.varint()?;
                }
                let mut s = Stream::Sparse {
                    left,
                    next: 0,
                    value: 0,
                    at: 0,
                    b: Bytes {
                        b: &b.b[..b.pos],
                        pos: start,
                    },
                };
                s.advance_sparse();
                Some(s)
            }
            _ => None,
        }
    }

    fn advance_sparse(&mut self) {
        if let Stream::Sparse {
            left,
            next,
            value,
            b,
            ..
        } = self
        {
            if *left == 0 {
                *next = usize::MAX;
                return;
            }
            *left -= 1;
            // Checked in `read`.
            *next += b.varint().unwrap_or(0) as usize;
            *value = b.ivarint().unwrap_or(0);
        }
    }

    /// Moves past the next `n` entries without unpacking them.
    fn skip(&mut self, n: usize) {
        let to = match self {
            Stream::Packed { w, bit, .. } => {
                *bit += n * *w as usize;
                return;
            }
            Stream::Sparse { at, .. } => {
                *at += n;
                *at
            }
        };
        while matches!(self, Stream::Sparse { next, .. } if *next != usize::MAX && *next < to) {
            self.advance_sparse();
        }
    }

    /// Reads the next `out.len()` entries into `out` (callers read exactly the stream's
    /// length). A packed stream of up to 56 bits per entry is unpacked one 64-bit load per
    /// entry, without going through [`Stream::next`]'s dispatch.
    fn fill(&mut self, out: &mut [i64]) {
        if let Stream::Packed { lo, w, data, bit } = self {
            let (lo, w, data) = (*lo, *w as usize, *data);
            if w == 0 {
                out.fill(lo);
                return;
            }
            if w <= 56 {
                let mask = (1u64 << w) - 1;
                let mut at = *bit;
                for o in out.iter_mut() {
                    let byte = at / 8;
                    // An entry of ≤ 56 bits shifted by < 8 fits one 64-bit word.
                    let word = match data.get(byte..byte + 8) {
                        Some(s) => u64::from_le_bytes(s.try_into().unwrap_or_default()),
                        None => {
                            let mut le = [0u8; 8];
                            let tail = data.get(byte..).unwrap_or(&[]);
                            let n = tail.len().min(8);
                            le[..n].copy_from_slice(&tail[..n]);
                            u64::from_le_bytes(le)
                        }
                    };
                    *o = lo.wrapping_add(((word >> (at % 8)) & mask) as i64);
                    at += w;
                }
                *bit = at;
                return;
            }
        }
        if let Stream::Sparse { next, .. } = self {
            if *next == usize::MAX {
                out.fill(0);
                return;
            }
        }
        for o in out.iter_mut() {
            *o = self.next();
        }
    }

    /// The next entry (callers read exactly the stream's length).
    #[inline]
    fn next(&mut self) -> i64 {
        match self {
            Stream::Packed { lo, w, data, bit } => {
                if *w == 0 {
                    return *lo;
                }
                let byte = *bit / 8;
                let shift = (*bit % 8) as u32;
                let le: [u8; 16] = match data.get(byte..byte + 16) {
                    Some(s) => s.try_into().unwrap_or([0; 16]),
                    None => {
                        let mut le = [0u8; 16];
                        let tail = data.get(byte..).unwrap_or(&[]);
                        le[..tail.len()].copy_from_slice(tail);
                        le
                    }
                };
                let raw = (u128::from_le_bytes(le) >> shift) as u64;
                let x = if *w == 64 {
                    raw
                } else {
                    raw & ((1u64 << *w) - 1)
                };
                *bit += *w as usize;
                lo.wrapping_add(x as i64)
            }
            Stream::Sparse {
                next, value, at, ..
            } => {
                let here = *at;
                *at += 1;
                if here == *next {
                    let v = *value;
                    self.advance_sparse();
                    v
                } else {
                    0
                }
            }
        }
    }
}

/// Call `put(slot, value)` for every value of a format-2 blob, in slot order; `None` (having
/// called `put` for none) if the blob is malformed.
pub fn for_each(blob: &[u8], put: impl FnMut(usize, f64)) -> Option<()> {
    for_each_in(blob, 0..SLOTS, put)
}

/// [`for_each`] for the slots in `range` only: the values before it are still summed up
/// (a difference-coded stream cannot be entered in the middle), but not divided by the
/// multiplier nor corrected; those after it are not read. The whole blob is checked all the
/// same: `None` (having called `put` for none) if it is malformed.
pub fn for_each_in(
    blob: &[u8],
    range: std::ops::Range<usize>,
    mut put: impl FnMut(usize, f64),
) -> Option<()> {
    let mut b = Bytes { b: blob, pos: 0 };
    if b.byte()? != TAG {
        return None;
    }
    // Slot of the j-th value.
    let mut slots = [0u16; SLOTS];
    let mut n = 0;
    match b.byte()? {
        0 => {
            for (j, s) in slots.iter_mut().enumerate() {
                *s = j as u16;
            }
            n = SLOTS;
        }
        1 => {
            let count = b.varint()?;
            let mut at = 0usize;
            for r in 0..count {
                let len = usize::try_from(b.varint()?).ok()?;
                let end = at.checked_add(len).filter(|&e| e <= SLOTS)?;
                if r % 2 == 1 {
                    for i in at..end {
                        slots[n] = i as u16;
                        n += 1;
                    }
                }
                at = end;
            }
        }
        2 => {
            let bits = b.take(BITMAP_BYTES)?;
            for i in 0..SLOTS {
                if bits[i / 8] & (1 << (i % 8)) != 0 {
                    slots[n] = i as u16;
                    n += 1;
                }
            }
        }
        _ => return None,
    }
    let slots = &slots[..n];
    if n == 0 {
        return (b.pos == blob.len()).then_some(());
    }
    // The values wanted: `first..last` (slots are increasing).
    let first = slots.partition_point(|&s| (s as usize) < range.start);
    let last = slots
        .partition_point(|&s| (s as usize) < range.end)
        .max(first);
    match b.byte()? {
        0 => {
            let raw = b.take(n * 8)?;
            if b.pos != blob.len() {
                return None;
            }
            for (&s, v) in slots[first..last]
                .iter()
                .zip(raw.chunks_exact(8).skip(first))
            {
                let mut le = [0u8; 8];
                le.copy_from_slice(v);
                put(s as usize, f64::from_le_bytes(le));
            }
            Some(())
        }
        1 => {
            let m = b.varint()?;
            if m == 0 {
                return None;
            }
            let mf = m as f64;
            let k0 = b.ivarint()?;
            let order = b.byte()?;
            let (mut d, mut diffs) = match order {
                1 => (0i64, Stream::read(&mut b, n - 1)?),
                2 if n >= 3 => {
                    let d = b.ivarint()?;
                    (d, Stream::read(&mut b, n - 2)?)
                }
                _ => return None,
            };
            let mut res = Stream::read(&mut b, n)?;
            if b.pos != blob.len() {
                return None;
            }
            if first == last {
                return Some(());
            }
            // The integers of values 0..last, a block at a time (small buffers on the stack,
            // nothing zeroed per chunk beyond them): the differences unpacked, then summed;
            // only the values from `first` on are divided and corrected. The residuals
            // before `first` are skipped, not unpacked.
            res.skip(first);
            let mut kb = [0i64; BLOCK];
            let mut rb = [0i64; BLOCK];
            let mut vb = [0f64; BLOCK];
            // Values whose integer takes no difference: k0 (and k0 + d for order 2).
            let head = (order as usize).min(last);
            kb[0] = k0;
            let mut k = k0;
            if head == 2 {
                k = k.wrapping_add(d);
                kb[1] = k;
            }
            let (mut j0, mut len) = (0usize, head);
            loop {
                let more = (BLOCK - len).min(last - (j0 + len));
                let block = &mut kb[len..len + more];
                diffs.fill(block);
                if order == 1 {
                    for x in block.iter_mut() {
                        k = k.wrapping_add(*x);
                        *x = k;
                    }
                } else {
                    for x in block.iter_mut() {
                        d = d.wrapping_add(*x);
                        k = k.wrapping_add(d);
                        *x = k;
                    }
                }
                len += more;
                let from = first.max(j0);
                if from < j0 + len {
                    let rs = &mut rb[..j0 + len - from];
                    res.fill(rs);
                    // The values first, in a loop of their own (divisions two at a time),
                    // then handed out.
                    let vs = &mut vb[..rs.len()];
                    for ((v, &k), &r) in vs.iter_mut().zip(&kb[from - j0..len]).zip(rs.iter()) {
                        let approx = (k as f64 / mf).to_bits();
                        *v = f64::from_bits(approx.wrapping_add(r as u64));
                    }
                    for (&s, &v) in slots[from..j0 + len].iter().zip(vs.iter()) {
                        put(s as usize, v);
                    }
                }
                j0 += len;
                len = 0;
                if j0 >= last {
                    return Some(());
                }
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Vec<u8> {
        let mut blob = Vec::new();
        encode(values, &mut blob);
        let mut back = vec![f64::NAN; SLOTS];
        for_each(&blob, |i, v| back[i] = v).expect("decodes");
        for (i, (a, b)) in values.iter().zip(&back).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "slot {i}: {a} became {b}"
            );
        }
        blob
    }

    fn walk(seed: u64, decimals: u32) -> Vec<f64> {
        let mut x = seed;
        let mut k: i64 = 5000;
        let scale = 10f64.powi(decimals as i32);
        (0..SLOTS)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                k += (x % 201) as i64 - 100;
                k as f64 / scale
            })
            .collect()
    }

    #[test]
    fn decimals_counters_and_constants_are_small() {
        let w = walk(7, 2);
        assert!(round_trip(&w).len() <= SLOTS + 16, "about a byte a point");
        let c: Vec<f64> = (0..SLOTS).map(|i| 1e9 + 1000.0 * i as f64).collect();
        assert!(
            round_trip(&c).len() < 20,
            "a steady counter: second differences are 0"
        );
        assert!(round_trip(&[42.5; SLOTS]).len() < 20);
        let slow: Vec<f64> = (0..SLOTS).map(|i| (i / 120) as f64 * 0.25).collect();
        assert!(round_trip(&slow).len() < 30);
        // Averages of six two-decimal values: multiplier 600, exact.
        let avg: Vec<f64> = w
            .chunks(6)
            .map(|c| c.iter().sum::<f64>() / 6.0)
            .chain(std::iter::repeat(f64::NAN))
            .take(SLOTS)
            .collect();
        let blob = round_trip(&avg);
        assert!(blob.len() < 60 * 2 + 16, "{} bytes", blob.len());
    }

    #[test]
    fn odd_values_round_trip() {
        let mut v = vec![f64::NAN; SLOTS];
        v[0] = -0.0;
        v[5] = f64::INFINITY;
        v[6] = f64::NEG_INFINITY;
        v[7] = f64::MAX;
        v[8] = f64::MIN_POSITIVE;
        v[9] = 5e-324;
        v[359] = 1.0 / 3.0;
        round_trip(&v);
        let mut one = vec![f64::NAN; SLOTS];
        one[200] = 7.0;
        assert!(round_trip(&one).len() <= 16);
        round_trip(&[f64::NAN; SLOTS]);
        let thirds: Vec<f64> = (0..SLOTS).map(|i| i as f64 / 3.0).collect();
        round_trip(&thirds);
        let mixed: Vec<f64> = (0..SLOTS)
            .map(|i| if i % 2 == 0 { 1e300 } else { -1e-300 })
            .collect();
        round_trip(&mixed);
    }

    #[test]
    fn malformed_blobs_are_refused() {
        assert!(for_each(&[], |_, _| ()).is_none());
        assert!(for_each(&[0], |_, _| ()).is_none());
        assert!(for_each(&[TAG, 9], |_, _| ()).is_none());
        // Runs past the chunk's end.
        assert!(for_each(&[TAG, 1, 2, 0xe8, 0x02, 2], |_, _| ()).is_none());
        assert!(for_each(&[TAG, 1, 2, 200, 1, 200, 1], |_, _| ()).is_none());
        let mut blob = Vec::new();
        encode(&walk(3, 2), &mut blob);
        for cut in 0..blob.len() {
            assert!(for_each(&blob[..cut], |_, _| ()).is_none(), "cut at {cut}");
        }
        blob.push(0);
        assert!(for_each(&blob, |_, _| ()).is_none(), "trailing byte");
    }

    proptest! {
        #[test]
        fn any_chunk_round_trips(
            vals in proptest::collection::vec(
                prop_oneof![
                    Just(f64::NAN),
                    (-100_000i64..100_000).prop_map(|k| k as f64 / 100.0),
                    any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
                    (0u64..1 << 40).prop_map(|k| k as f64),
                ],
                SLOTS..=SLOTS,
            )
        ) {
            round_trip(&vals);
        }

        #[test]
        fn a_range_decodes_as_the_whole_chunk_does(
            seed in any::<u64>(),
            decimals in 0u32..4,
            counter in any::<bool>(),
            holes in any::<bool>(),
            ulps_every in prop_oneof![Just(0u64), Just(3), Just(40)],
            a in 0usize..=SLOTS + 5,
            b in 0usize..=SLOTS + 5,
        ) {
            let mut v = if counter {
                (0..SLOTS).map(|i| 1e9 + (seed % 1000) as f64 * i as f64).collect()
            } else {
                walk(seed | 1, decimals)
            };
            if holes {
                for (i, x) in v.iter_mut().enumerate() {
                    if (i as u64 ^ seed).is_multiple_of(7) {
                        *x = f64::NAN;
                    }
                }
            }
            // Values one unit in the last place off their decimal: residual streams, packed
            // (many) or sparse (few).
            if ulps_every > 0 {
                for (i, x) in v.iter_mut().enumerate() {
                    if (i as u64 ^ seed).is_multiple_of(ulps_every) && x.is_finite() {
                        *x = f64::from_bits(x.to_bits() + 1);
                    }
                }
            }
            let mut blob = Vec::new();
            encode(&v, &mut blob);
            let mut whole = Vec::new();
            for_each(&blob, |i, x| whole.push((i, x.to_bits()))).expect("decodes");
            let mut part = Vec::new();
            for_each_in(&blob, a..b, |i, x| part.push((i, x.to_bits()))).expect("decodes");
            let given: Vec<(usize, u64)> = v
                .iter()
                .enumerate()
                .filter(|(_, x)| !x.is_nan())
                .map(|(i, x)| (i, x.to_bits()))
                .collect();
            prop_assert_eq!(&whole, &given);
            whole.retain(|&(i, _)| (a..b).contains(&i));
            prop_assert_eq!(part, whole);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(
            blob in proptest::collection::vec(any::<u8>(), 0..600),
            tag_it in any::<bool>(),
        ) {
            let mut blob = blob;
            if tag_it && !blob.is_empty() {
                blob[0] = TAG;
            }
            let mut seen = 0;
            let _ = for_each(&blob, |i, _| {
                assert!(i < SLOTS);
                seen += 1;
            });
            prop_assert!(seen <= SLOTS);
            let _ = for_each_in(&blob, 100..200, |i, _| assert!((100..200).contains(&i)));
        }
    }
}
