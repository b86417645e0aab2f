//! Chunks of one archive of one series, and how cached points are folded into them.
//!
//! A chunk holds [`CHUNK_SLOTS`] consecutive slots of one archive, aligned to
//! `CHUNK_SLOTS × step`; a missing value is NaN (values are never NaN: the parser rejects it).
//! Points are applied as whisper writes them: into the finest archive whose retention covers
//! the point's age (last write wins), then every coarser archive's slot is recomputed from the
//! next finer archive's slots it spans, honouring xFilesFactor (whisper's `__propagate`).
//! The same code runs at flush time (then written back) and at read time (on a copy), so a
//! point is visible to reads exactly as it will be stored. Pure: no I/O.

use std::collections::{BTreeSet, HashMap};

use super::codec;
use super::schema::SeriesSchema;

/// Slots per chunk.
pub const CHUNK_SLOTS: i64 = 360;

/// A cached point: timestamp, value, and the archive it is written to (by its age on arrival).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pt {
    pub ts: i64,
    pub value: f64,
    pub dest: u8,
}

/// `(archive, chunk_start)`.
pub type ChunkKey = (u8, i64);
/// Decoded chunks of one series (keys are small integers: a fast fixed-seed hash).
pub type ChunkMap = HashMap<ChunkKey, Vec<f64>, foldhash::fast::FixedState>;

/// Start of the slot holding `ts`.
pub fn slot(ts: i64, step: i64) -> i64 {
    ts - ts.rem_euclid(step)
}

/// Start of the chunk holding `ts`.
pub fn chunk_start(ts: i64, step: i64) -> i64 {
    slot(ts, step * CHUNK_SLOTS)
}

/// Encode a chunk in the compressed format ([`codec`], format 2).
pub fn encode(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    codec::encode(values, &mut out);
    out
}

/// Decode a chunk of either format (format 1: `0` + 360 dense little-endian f64s, or `1` +
/// `(u16 slot, f64)` pairs; format 2: [`codec`]); `None` if the blob is neither.
pub fn decode(blob: &[u8]) -> Option<Vec<f64>> {
    let mut out = vec![f64::NAN; CHUNK_SLOTS as usize];
    let (&kind, body) = blob.split_first()?;
    match kind {
        codec::TAG => codec::for_each(blob, |i, v| out[i] = v)?,
        0 if body.len() == out.len() * 8 => {
            for (o, b) in out.iter_mut().zip(body.chunks_exact(8)) {
                *o = f64::from_le_bytes(b.try_into().ok()?);
            }
        }
        1 if body.len() % 10 == 0 => {
            for e in body.chunks_exact(10) {
                let i = u16::from_le_bytes([e[0], e[1]]) as usize;
                *out.get_mut(i)? = f64::from_le_bytes(e[2..10].try_into().ok()?);
            }
        }
        _ => return None,
    }
    Some(out)
}

fn chunks_covering(out: &mut BTreeSet<ChunkKey>, archive: usize, step: i64, from: i64, until: i64) {
    let span = step * CHUNK_SLOTS;
    let mut c = chunk_start(from, step);
    while c < until {
        out.insert((archive as u8, c));
        c += span;
    }
}

/// The chunks [`apply`] reads or writes for `pts`.
pub fn needs(schema: &SeriesSchema, pts: &[Pt], out: &mut BTreeSet<ChunkKey>) {
    let a = &schema.archives;
    // A series' points mostly share chunks and coarse slots: skip repeats of the last one.
    let mut last_chunk: Vec<Option<i64>> = vec![None; a.len()];
    let mut last_slot: Vec<Option<i64>> = vec![None; a.len()];
    for p in pts {
        let dest = p.dest as usize;
        for k in dest..a.len() {
            let s = slot(p.ts, a[k].step);
            let c = chunk_start(s, a[k].step);
            if last_chunk[k] != Some(c) {
                out.insert((k as u8, c));
                last_chunk[k] = Some(c);
            }
            if k > dest && last_slot[k] != Some(s) {
                chunks_covering(out, k - 1, a[k - 1].step, s, s + a[k].step);
                last_slot[k] = Some(s);
            }
        }
    }
}

fn set(
    map: &mut ChunkMap,
    touched: &mut BTreeSet<ChunkKey>,
    archive: usize,
    step: i64,
    ts: i64,
    value: f64,
) {
    let c = chunk_start(ts, step);
    let chunk = map
        .entry((archive as u8, c))
        .or_insert_with(|| vec![f64::NAN; CHUNK_SLOTS as usize]);
    chunk[((ts - c) / step) as usize] = value;
    if touched.last() != Some(&(archive as u8, c)) {
        touched.insert((archive as u8, c));
    }
}

/// Apply `pts` (in arrival order) to `map`, which must hold every existing chunk in
/// [`needs`]; the chunks changed are added to `touched`.
pub fn apply(
    schema: &SeriesSchema,
    pts: &[Pt],
    map: &mut ChunkMap,
    touched: &mut BTreeSet<ChunkKey>,
) {
    let a = &schema.archives;
    for p in pts {
        let d = p.dest as usize;
        if d < a.len() {
            set(map, touched, d, a[d].step, slot(p.ts, a[d].step), p.value);
        }
    }
    for k in 1..a.len() {
        let dirty: BTreeSet<i64> = pts
            .iter()
            .filter(|p| (p.dest as usize) < k)
            .map(|p| slot(p.ts, a[k].step))
            .collect();
        let (fine, coarse) = (a[k - 1].step, a[k].step);
        let total = (coarse / fine) as usize;
        let mut known = Vec::with_capacity(total);
        for s in dirty {
            known.clear();
            let mut t = s;
            // The fine slots of one coarse slot are consecutive: look each chunk up once.
            let mut cur: Option<(i64, Option<&Vec<f64>>)> = None;
            while t < s + coarse {
                let c = chunk_start(t, fine);
                let chunk = match cur {
                    Some((start, chunk)) if start == c => chunk,
                    _ => {
                        let chunk = map.get(&((k - 1) as u8, c));
                        cur = Some((c, chunk));
                        chunk
                    }
                };
                if let Some(v) = chunk.map(|ch| ch[((t - c) / fine) as usize]) {
                    if !v.is_nan() {
                        known.push(v);
                    }
                }
                t += fine;
            }
            if known.is_empty() || (known.len() as f64) / (total as f64) < schema.x_files_factor {
                continue;
            }
            let v = schema.aggregation.apply(&known, total);
            set(map, touched, k, coarse, s, v);
        }
    }
}

/// Values of `archive` for slots `[from, until)` (both slot-aligned): one lookup per chunk.
pub fn extract(
    map: &ChunkMap,
    archive: usize,
    step: i64,
    from: i64,
    until: i64,
) -> Vec<Option<f64>> {
    let n = ((until - from) / step).max(0) as usize;
    let mut out = Vec::with_capacity(n);
    let mut t = from;
    while out.len() < n {
        let c = chunk_start(t, step);
        let first = ((t - c) / step) as usize;
        let take = (CHUNK_SLOTS as usize - first).min(n - out.len());
        match map.get(&(archive as u8, c)) {
            Some(v) => out.extend(
                v[first..first + take]
                    .iter()
                    .map(|x| (!x.is_nan()).then_some(*x)),
            ),
            None => out.resize(out.len() + take, None),
        }
        t += take as i64 * step;
    }
    out
}

/// Decode the chunk starting at `chunk_start` (slots of `step` seconds) straight into
/// `out`, whose slot 0 is at `from`: slots outside `out` are skipped, missing values left
/// as they are. False (and `out` unchanged) if the blob is not a chunk ([`decode`]).
pub fn decode_into(
    blob: &[u8],
    chunk_start: i64,
    step: i64,
    from: i64,
    out: &mut [Option<f64>],
) -> bool {
    decode_with(blob, chunk_start, step, from, out, |o, v| {
        if !v.is_nan() {
            *o = Some(v);
        }
    })
}

/// [`decode_into`] into values as [`crate::functions::agg::Columns`] folds them:
/// NaN for a missing value.
pub fn decode_into_nan(
    blob: &[u8],
    chunk_start: i64,
    step: i64,
    from: i64,
    out: &mut [f64],
) -> bool {
    decode_with(blob, chunk_start, step, from, out, |o, v| *o = v)
}

/// [`decode_into`] with `set(slot of out, value)` for each value of a slot `out` holds
/// (format 1's NaN included).
fn decode_with<T>(
    blob: &[u8],
    chunk_start: i64,
    step: i64,
    from: i64,
    out: &mut [T],
    set: impl Fn(&mut T, f64),
) -> bool {
    let Some((&kind, body)) = blob.split_first() else {
        return false;
    };
    // Output index of the chunk's slot j is j - skip (skip may be negative).
    let skip = (from - chunk_start) / step;
    // The chunk's slots that land in `out`.
    let lo = skip.clamp(0, CHUNK_SLOTS) as usize;
    let hi = skip.saturating_add(out.len() as i64).clamp(0, CHUNK_SLOTS) as usize;
    let put = |out: &mut [T], j: usize, v: f64| {
        let k = j as i64 - skip;
        if k >= 0 && (k as usize) < out.len() {
            set(&mut out[k as usize], v);
        }
    };
    match kind {
        // Only the slots `out` holds are decoded in full.
        codec::TAG => codec::for_each_in(blob, lo..hi, |j, v| put(out, j, v)).is_some(),
        0 if body.len() == CHUNK_SLOTS as usize * 8 => {
            for (j, b) in body.chunks_exact(8).enumerate().take(hi).skip(lo) {
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                put(out, j, f64::from_le_bytes(le));
            }
            true
        }
        1 if body.len() % 10 == 0 => {
            let entries = body.chunks_exact(10);
            if entries
                .clone()
                .any(|e| u16::from_le_bytes([e[0], e[1]]) as i64 >= CHUNK_SLOTS)
            {
                return false;
            }
            for e in entries {
                let mut le = [0u8; 8];
                le.copy_from_slice(&e[2..10]);
                put(
                    out,
                    u16::from_le_bytes([e[0], e[1]]) as usize,
                    f64::from_le_bytes(le),
                );
            }
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::{parse_retentions, Aggregation};
    use super::*;

    fn schema(ret: &str, agg: Aggregation, xff: f64) -> SeriesSchema {
        SeriesSchema {
            archives: parse_retentions(ret).unwrap(),
            aggregation: agg,
            x_files_factor: xff,
        }
    }

    fn run(s: &SeriesSchema, pts: &[Pt], map: &mut ChunkMap) -> BTreeSet<ChunkKey> {
        let mut need = BTreeSet::new();
        needs(s, pts, &mut need);
        let mut touched = BTreeSet::new();
        apply(s, pts, map, &mut touched);
        assert!(touched.is_subset(&need), "apply wrote outside needs()");
        touched
    }

    fn pt(ts: i64, value: f64) -> Pt {
        Pt { ts, value, dest: 0 }
    }

    /// Format 1, as the store wrote it before compressed chunks: `0` + dense little-endian
    /// f64s, or `1` + `(u16 slot, f64)` pairs when that is smaller.
    fn encode_v1(values: &[f64]) -> Vec<u8> {
        let known = values.iter().filter(|v| !v.is_nan()).count();
        let mut out = Vec::new();
        if known * 10 < values.len() * 8 {
            out.push(1);
            for (i, v) in values.iter().enumerate() {
                if !v.is_nan() {
                    out.extend_from_slice(&(i as u16).to_le_bytes());
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        } else {
            out.push(0);
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn decode_into_and_extract_agree_with_decode() {
        let step = 10;
        let c0 = chunk_start(1_700_000_000, step);
        let span = step * CHUNK_SLOTS;
        let mut dense = vec![f64::NAN; CHUNK_SLOTS as usize];
        let mut sparse = dense.clone();
        for (i, v) in dense.iter_mut().enumerate() {
            if i % 5 != 0 {
                *v = i as f64;
            }
        }
        sparse[7] = -7.0;
        sparse[300] = 3.0;
        let mut map = ChunkMap::default();
        map.insert((0, c0), dense.clone());
        map.insert((0, c0 + 2 * span), sparse.clone());
        // Windows starting before, inside and after chunk boundaries; chunk c0 + span missing.
        for (from, until) in [
            (c0, c0 + span),
            (c0 - 5 * step, c0 + 3 * span),
            (c0 + 100 * step, c0 + 2 * span + 8 * step),
            (c0 + 2 * span + 7 * step, c0 + 2 * span + 8 * step),
        ] {
            let want: Vec<Option<f64>> = (0..(until - from) / step)
                .map(|i| {
                    let t = from + i * step;
                    let c = chunk_start(t, step);
                    map.get(&(0, c))
                        .map(|v| v[((t - c) / step) as usize])
                        .filter(|v| !v.is_nan())
                })
                .collect();
            assert_eq!(extract(&map, 0, step, from, until), want);
            for format in [encode, encode_v1] {
                let mut got = vec![None; want.len()];
                for (c, v) in [(c0, &dense), (c0 + 2 * span, &sparse)] {
                    assert!(decode_into(&format(v), c, step, from, &mut got));
                }
                assert_eq!(got, want, "{from}..{until}");
            }
        }
        let mut out = vec![None; 4];
        assert!(!decode_into(
            &[1, 0x70, 0x01, 0, 0, 0, 0, 0, 0, 0, 0],
            c0,
            step,
            c0,
            &mut out
        ));
        assert!(!decode_into(&[0, 1, 2], c0, step, c0, &mut out));
        assert!(!decode_into(&[], c0, step, c0, &mut out));
        assert!(!decode_into(&[codec::TAG, 1, 0, 2], c0, step, c0, &mut out));
        assert_eq!(out, vec![None; 4]);
    }

    #[test]
    fn both_formats_round_trip_sparse_and_dense() {
        let mut v = vec![f64::NAN; CHUNK_SLOTS as usize];
        v[3] = 1.5;
        v[359] = -2.0;
        let dense: Vec<f64> = (0..CHUNK_SLOTS).map(|i| i as f64).collect();
        let v1 = encode_v1(&v);
        assert_eq!((v1[0], v1.len()), (1, 21));
        assert_eq!(encode_v1(&dense)[0], 0);
        for (format, tag) in [
            (encode as fn(&[f64]) -> Vec<u8>, codec::TAG),
            (encode_v1, 1),
        ] {
            let sparse = format(&v);
            assert_eq!(sparse[0], tag);
            let back = decode(&sparse).unwrap();
            assert_eq!((back[3], back[359]), (1.5, -2.0));
            assert!(back[0].is_nan());
            assert_eq!(decode(&format(&dense)).unwrap(), dense);
        }
        assert!(encode(&v).len() < 21 && encode(&dense).len() < 40);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[1, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(decode(&[7]), None);
    }

    #[test]
    fn last_write_wins_within_a_slot() {
        let s = schema("10s:1h", Aggregation::Average, 0.5);
        let mut map = ChunkMap::default();
        run(&s, &[pt(1000, 1.0), pt(1005, 2.0), pt(1010, 3.0)], &mut map);
        assert_eq!(
            extract(&map, 0, 10, 990, 1030),
            vec![None, Some(2.0), Some(3.0), None]
        );
        // A later flush overwrites the stored slot.
        run(&s, &[pt(1001, 9.0)], &mut map);
        assert_eq!(extract(&map, 0, 10, 1000, 1010), vec![Some(9.0)]);
    }

    #[test]
    fn rollup_honours_x_files_factor() {
        // 10s → 60s: six fine slots per coarse slot.
        let s = schema("10s:1h,60s:1d", Aggregation::Average, 0.5);
        let mut map = ChunkMap::default();
        run(&s, &[pt(600, 1.0), pt(610, 2.0)], &mut map);
        // 2/6 known < 0.5: nothing propagated.
        assert_eq!(extract(&map, 1, 60, 600, 660), vec![None]);
        run(&s, &[pt(620, 3.0)], &mut map);
        // 3/6 = 0.5 ≥ 0.5: average of what is known.
        assert_eq!(extract(&map, 1, 60, 600, 660), vec![Some(2.0)]);
        let sum = schema("10s:1h,60s:1d,600s:1y", Aggregation::Sum, 0.0);
        let mut map = ChunkMap::default();
        run(&sum, &[pt(600, 1.0), pt(1250, 4.0)], &mut map);
        assert_eq!(extract(&map, 1, 60, 600, 720), vec![Some(1.0), None]);
        assert_eq!(extract(&map, 2, 600, 600, 1800), vec![Some(1.0), Some(4.0)]);
    }

    #[test]
    fn each_method_rolls_up_like_whisper() {
        let pts: Vec<Pt> = [4.0, -1.0, 7.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, v)| pt(60 + 10 * i as i64, *v))
            .collect();
        let cases = [
            (Aggregation::Average, 3.0),
            (Aggregation::Sum, 12.0),
            (Aggregation::Min, -1.0),
            (Aggregation::Max, 7.0),
            (Aggregation::Last, 2.0),
            (Aggregation::AvgZero, 2.0),
        ];
        for (m, want) in cases {
            let s = schema("10s:1h,60s:1d", m, 0.5);
            let mut map = ChunkMap::default();
            run(&s, &pts, &mut map);
            assert_eq!(
                extract(&map, 1, 60, 60, 120),
                vec![Some(want)],
                "{}",
                m.name()
            );
        }
    }

    #[test]
    fn old_points_go_straight_to_a_coarser_archive() {
        let s = schema("10s:1h,60s:1d", Aggregation::Average, 0.5);
        let mut map = ChunkMap::default();
        run(
            &s,
            &[Pt {
                ts: 125,
                value: 5.0,
                dest: 1,
            }],
            &mut map,
        );
        assert_eq!(extract(&map, 1, 60, 60, 180), vec![None, Some(5.0)]);
        assert_eq!(extract(&map, 0, 10, 120, 130), vec![None]);
    }

    #[test]
    fn slots_span_chunk_boundaries() {
        let s = schema("10s:1d,1h:30d", Aggregation::Max, 0.0);
        let mut map = ChunkMap::default();
        // Chunk span of the fine archive is 3600 s: both points are in different fine chunks
        // but in the same coarse slot only if aligned; use a slot spanning one chunk exactly.
        let touched = run(&s, &[pt(3599, 1.0), pt(3600, 2.0), pt(7199, 3.0)], &mut map);
        assert!(touched.contains(&(0, 0)) && touched.contains(&(0, 3600)));
        assert_eq!(extract(&map, 1, 3600, 0, 7200), vec![Some(1.0), Some(3.0)]);
    }
}
