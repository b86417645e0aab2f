//! The store's Graphite 1.1 tags: tagged names are stored under their canonical form (as
//! carbon does: `cpu;host=a;dc=x` and `cpu;dc=x;host=a` are one series) and every series is
//! in a [`TagIndex`] (untagged ones by their `name` tag, as carbon tags every series).
//!
//! Persistence: the index is not a table of its own. A series' tags are a function of its
//! canonical path, which the `series` table already holds, so [`Store::open`] rebuilds the
//! index from it (0.16 s per 100k series, `cargo bench -p graphite --bench tags`) and it can never disagree with the data.
//!
//! Hooks in `mod.rs`: `load_series` builds the index at open (on a thread of its own, beside
//! the trie's); [`Store::catch_up`] calls [`Store::index_tags`] for new series; `cache_batch` hands a point of a non-canonical spelling to
//! [`Store::cache_respelled`] (via [`respelled`]); `fetch` and `expand` look a tagged
//! pattern up exactly ([`Store::tagged_match`]) instead of globbing it, as graphite-web's
//! finder does.

use std::sync::{Arc, PoisonError, RwLockReadGuard};

use super::Store;
use crate::tags::{self as t, TagError, TagIndex};

/// The canonical spelling of `path` if it is a tagged name spelled otherwise (`None` for an
/// untagged, canonical or unparseable name: those are stored as they are).
pub(crate) fn respelled(path: &str) -> Option<String> {
    memchr::memchr(b';', path.as_bytes())?;
    match t::canonical(path) {
        Ok(std::borrow::Cow::Owned(c)) => Some(c),
        _ => None,
    }
}

impl Store {
    /// Adds new series to the tag index.
    pub(crate) fn index_tags(&self, paths: impl IntoIterator<Item = Arc<str>>) {
        let mut ix = self.tags.write().unwrap_or_else(PoisonError::into_inner);
        for p in paths {
            ix.insert(p);
        }
    }

    /// Caches points whose tagged names were spelled non-canonically, under the canonical
    /// name (their shard is that name's). Returns how many were kept.
    pub(crate) fn cache_respelled(&self, points: &[(String, f64, i64)], now: i64) -> u64 {
        if points.is_empty() {
            return 0;
        }
        self.cache_by_path(points.iter().map(|(p, v, ts)| (p.as_str(), *v, *ts)), now)
    }

    /// For a tagged pattern (one with `;`): the one series it names (in any spelling), or
    /// none. `None` for a glob pattern.
    pub(crate) fn tagged_match(&self, pattern: &str) -> Option<Vec<(String, u64)>> {
        if !pattern.contains(';') {
            return None;
        }
        let path = t::canonical(pattern)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| pattern.to_string());
        let index = self.index_read();
        Some(index.get(&path).map(|id| (path, id)).into_iter().collect())
    }

    /// The tag index, read-locked (for the `/tags` API). Hold it briefly: new series wait.
    pub fn tag_index(&self) -> RwLockReadGuard<'_, TagIndex> {
        self.catch_up();
        self.tags.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// `find_series`: the paths of the series matching every tag expression, sorted.
    pub fn find_tagged<S: AsRef<str>>(&self, exprs: &[S]) -> Result<Vec<String>, TagError> {
        // Parse (and compile regexes) outside the lock.
        let parsed = t::parse_exprs(exprs)?;
        Ok(self.tag_index().find_parsed(&parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::Schemas;

    const NOW: i64 = 1_700_000_000;

    async fn store(dir: &std::path::Path) -> Store {
        let s = Schemas::parse("[a]\npattern=.\nretentions=10s:1h\n", "s", "", "a").unwrap();
        Store::open(dir, s, 1_000_000).await.unwrap()
    }

    #[tokio::test]
    async fn spellings_are_one_series_found_by_tags_and_kept_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = store(dir.path()).await;
            assert!(s.insert_at("cpu;host=a;dc=x", NOW - 20, 1.0, NOW));
            assert!(s.insert_at("cpu;dc=x;host=a", NOW - 10, 2.0, NOW));
            assert!(s.insert_at("cpu;dc=y;host=b", NOW - 10, 3.0, NOW));
            assert!(s.insert_at("plain.path", NOW - 10, 4.0, NOW));
            assert_eq!(s.series_count(), 3);
            assert_eq!(
                s.stats
                    .cache_points
                    .load(std::sync::atomic::Ordering::Relaxed),
                4
            );
            assert_eq!(
                s.find_tagged(&["name=cpu", "dc=x"]).unwrap(),
                ["cpu;dc=x;host=a"]
            );
            // Either spelling fetches the canonical series, with both points.
            for spelling in ["cpu;dc=x;host=a", "cpu;host=a;dc=x"] {
                let f = s.fetch(spelling, NOW - 30, NOW, NOW).await.unwrap();
                assert_eq!(f.len(), 1);
                assert_eq!(f[0].path, "cpu;dc=x;host=a");
                let v: Vec<f64> = f[0].values.iter().flatten().copied().collect();
                assert_eq!(v, [1.0, 2.0]);
            }
            assert!(s
                .fetch("cpu;dc=z", NOW - 30, NOW, NOW)
                .await
                .unwrap()
                .is_empty());
            s.close().await.unwrap();
        }
        let s = store(dir.path()).await;
        assert_eq!(s.tag_index().len(), 3);
        assert_eq!(
            s.find_tagged(&["name=~cpu|plain"]).unwrap(),
            ["cpu;dc=x;host=a", "cpu;dc=y;host=b", "plain.path"]
        );
        assert!(s.find_tagged(&["dc!=x"]).is_err());
    }
}
