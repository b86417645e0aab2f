//! What the store holds of each series, as time ranges: the `intervals` of a leaf in the find
//! answers a cluster front end reads (graphite-web's remote finder merges them to choose which
//! nodes answer a window, `graphite/storage.py` `_merge_leaf_nodes`).
//!
//! For each archive, from its first present slot to the end of its last present slot (the
//! first and last chunk of the archive are walked slot by slot, without building a dense
//! chunk; the chunks between are not read, so a gap inside an archive is not seen), slots
//! older than the archive's retention left out; plus the cached points not yet flushed. The
//! ranges are merged into disjoint, sorted intervals.

use super::chunk;
use super::codec;
use super::raw;
use super::read::{Matched, IDS_PER_QUERY};
use super::{Store, StoreError};

impl Store {
    /// The `[start, end)` ranges the store holds of each of `series`, as of `now`: sorted,
    /// disjoint; empty for a series with no point left.
    pub async fn held(
        &self,
        series: &[Matched],
        now: i64,
    ) -> Result<Vec<Vec<(i64, i64)>>, StoreError> {
        let mut spans: Vec<Vec<(i64, i64)>> = vec![Vec::new(); series.len()];
        let mut cached: Vec<Option<(i64, i64)>> = vec![None; series.len()];
        self.each_cached(series, |i, p| {
            let c = cached[i].get_or_insert((p.ts, p.ts));
            *c = (c.0.min(p.ts), c.1.max(p.ts));
        });
        for (i, c) in cached.into_iter().enumerate() {
            if let (Some((lo, hi)), Some(a)) = (c, series[i].schema.archives.first()) {
                spans[i].push((chunk::slot(lo, a.step), chunk::slot(hi, a.step) + a.step));
            }
        }
        let archives = series
            .iter()
            .map(|m| m.schema.archives.len())
            .max()
            .unwrap_or(0);
        if archives > 0 && !series.is_empty() {
            self.with_reader(|db| {
                for archive in 0..archives {
                    let members: Vec<usize> = (0..series.len())
                        .filter(|&i| series[i].schema.archives.len() > archive)
                        .collect();
                    for batch in members.chunks(IDS_PER_QUERY) {
                        ends(db, archive, batch, series, now, &mut spans)?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(spans.into_iter().map(merge).collect())
    }
}

/// The range `archive` holds of each series of `batch` (indexes into `series`), pushed onto
/// its `spans`: the first and last chunk of the archive decoded.
fn ends(
    db: &mut raw::ReadConn,
    archive: usize,
    batch: &[usize],
    series: &[Matched],
    now: i64,
    spans: &mut [Vec<(i64, i64)>],
) -> Result<(), StoreError> {
    let mut ids = String::new();
    for i in 0..batch.len() {
        ids.push_str(if i == 0 { "?" } else { ", ?" });
    }
    let sql = format!(
        "SELECT k.series_id, k.chunk_start, k.data FROM chunks AS k JOIN \
         (SELECT series_id, MIN(chunk_start) AS lo, MAX(chunk_start) AS hi FROM chunks \
          WHERE series_id IN ({ids}) AND archive = ? GROUP BY series_id) AS b \
         ON k.series_id = b.series_id AND k.archive = ? \
         AND (k.chunk_start = b.lo OR k.chunk_start = b.hi)"
    );
    let mut stmt = db.prepare_once(&sql)?;
    for (n, &i) in batch.iter().enumerate() {
        stmt.bind(n + 1, series[i].id as i64)?;
    }
    stmt.bind(batch.len() + 1, archive as i64)?;
    stmt.bind(batch.len() + 2, archive as i64)?;
    let of_id: std::collections::HashMap<u64, usize> =
        batch.iter().map(|&i| (series[i].id, i)).collect();
    let mut range: std::collections::HashMap<usize, (i64, i64)> = Default::default();
    stmt.for_each(|id, start, data| {
        let Some(&i) = of_id.get(&(id as u64)) else {
            return;
        };
        let a = series[i].schema.archives[archive];
        // Slots older than the archive's retention are no longer read.
        let oldest = chunk::slot(now - a.retention(), a.step) + a.step;
        let (mut lo, mut hi) = (None::<i64>, None::<i64>);
        let mut see = |k: usize| {
            let t = start + k as i64 * a.step;
            if t >= oldest {
                lo = Some(lo.map_or(t, |l| l.min(t)));
                hi = Some(hi.map_or(t, |h| h.max(t)));
            }
        };
        // The present slots, without decoding into a chunk (format 2), else decoded.
        let read = match data.first() {
            Some(&codec::TAG) => codec::for_each(data, |k, v| {
                if !v.is_nan() {
                    see(k);
                }
            }),
            _ => chunk::decode(data).map(|values| {
                for (k, v) in values.iter().enumerate() {
                    if !v.is_nan() {
                        see(k);
                    }
                }
            }),
        };
        if read.is_none() {
            tracing::warn!(series = id, archive, start, "unreadable chunk ignored");
            return;
        }
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let r = range.entry(i).or_insert((lo, hi + a.step));
            *r = (r.0.min(lo), r.1.max(hi + a.step));
        }
    })?;
    for (i, r) in range {
        spans[i].push(r);
    }
    Ok(())
}

/// Sorted, disjoint intervals covering `spans` (touching ones joined).
fn merge(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (lo, hi) in spans {
        match out.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn merge_joins_overlapping_and_touching_ranges() {
        assert_eq!(
            merge(vec![(50, 60), (0, 10), (10, 20), (15, 18), (30, 40)]),
            [(0, 20), (30, 40), (50, 60)]
        );
        assert_eq!(merge(vec![]), []);
    }
}
