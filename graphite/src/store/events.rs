//! Graphite events (graphite-web 1.1's `events` app: deploys, alerts, annotations) in the
//! store's SQLite database, table `events`. An event is a time, a `what`, free `data` and
//! whitespace-separated `tags`, kept as given (graphite-web keeps duplicates and case).
//! Reads walk the time range a page at a time, so a query over many events holds one page.

use super::{Store, StoreError};

pub(super) const EVENTS_SQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        \"when\" REAL NOT NULL,
        what TEXT NOT NULL,
        data TEXT NOT NULL,
        tags TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_when ON events(\"when\", id)",
];

/// Most events the table holds; a post beyond is refused (delete old ones).
pub const MAX_EVENTS: i64 = 1_000_000;

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    /// Epoch seconds, as posted (graphite-web keeps the fraction: it decides whether
    /// `until` includes the event, and answers show it truncated).
    pub when: f64,
    pub what: String,
    pub data: String,
    /// The tags string as posted (a list is joined with spaces).
    pub tags: String,
}

impl Event {
    /// The tags as graphite-web lists them (`tags.split()`).
    pub fn tag_list(&self) -> Vec<&str> {
        self.tags.split_whitespace().collect()
    }
}

/// How several query tags combine (graphite-web's `set`): every tag (default, and
/// `intersection`) or any of them (`union`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSet {
    All,
    Any,
}

/// Why events were not read or written.
#[derive(Debug)]
pub enum EventError {
    /// The answer would list more than the caller's limit.
    TooMany(usize),
    /// The table holds [`MAX_EVENTS`].
    Full,
    /// The caller's stop flag was raised.
    Stopped,
    Store(StoreError),
}

impl From<sqlx::Error> for EventError {
    fn from(e: sqlx::Error) -> Self {
        EventError::Store(StoreError::Db(e))
    }
}

const PAGE: i64 = 1000;

/// Whether an event's tags string carries the wanted tags (`None`: every event matches).
fn tags_match(have: &str, want: Option<&[String]>, set: TagSet) -> bool {
    let Some(want) = want else { return true };
    let has = |t: &String| have.split_whitespace().any(|h| h == t);
    match set {
        TagSet::All => want.iter().all(has),
        TagSet::Any => want.iter().any(has),
    }
}

impl Store {
    /// Stores an event; returns its id.
    pub async fn add_event(
        &self,
        when: f64,
        what: &str,
        data: &str,
        tags: &str,
    ) -> Result<i64, EventError> {
        let mut tx = self.pool.begin().await?;
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
            .fetch_one(&mut *tx)
            .await?;
        if n >= MAX_EVENTS {
            return Err(EventError::Full);
        }
        let id = sqlx::query("INSERT INTO events (\"when\", what, data, tags) VALUES (?, ?, ?, ?)")
            .bind(when)
            .bind(what)
            .bind(data)
            .bind(tags)
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        tx.commit().await?;
        Ok(id)
    }

    /// Events with `from <= when <= until` carrying the tags (`None`: all), ordered by time,
    /// at most `limit` of them (more is [`EventError::TooMany`]). `stop` is polled per page.
    pub async fn events(
        &self,
        from: f64,
        until: f64,
        tags: Option<&[String]>,
        set: TagSet,
        limit: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<Event>, EventError> {
        let mut out = Vec::new();
        let mut after = (f64::NEG_INFINITY, i64::MIN);
        loop {
            if stop() {
                return Err(EventError::Stopped);
            }
            let rows: Vec<(i64, f64, String, String, String)> = sqlx::query_as(
                "SELECT id, \"when\", what, data, tags FROM events \
                 WHERE \"when\" >= ? AND \"when\" <= ? AND (\"when\" > ? OR (\"when\" = ? AND id > ?)) \
                 ORDER BY \"when\", id LIMIT ?",
            )
            .bind(from)
            .bind(until)
            .bind(after.0)
            .bind(after.0)
            .bind(after.1)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            let last = rows.len() < PAGE as usize;
            for (id, when, what, data, tags_s) in rows {
                after = (when, id);
                let e = Event {
                    id,
                    when,
                    what,
                    data,
                    tags: tags_s,
                };
                if tags_match(&e.tags, tags, set) {
                    if out.len() >= limit {
                        return Err(EventError::TooMany(limit));
                    }
                    out.push(e);
                }
            }
            if last {
                return Ok(out);
            }
        }
    }

    /// The times of the events [`Store::events`] would list (tags ANDed), without their
    /// text: what the `events()` render function draws. `stop` is polled per page.
    pub async fn event_times(
        &self,
        from: f64,
        until: f64,
        tags: Option<&[String]>,
        limit: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<f64>, EventError> {
        let mut out = Vec::new();
        let mut after = (f64::NEG_INFINITY, i64::MIN);
        loop {
            if stop() {
                return Err(EventError::Stopped);
            }
            let rows: Vec<(i64, f64, String)> = sqlx::query_as(
                "SELECT id, \"when\", tags FROM events \
                 WHERE \"when\" >= ? AND \"when\" <= ? AND (\"when\" > ? OR (\"when\" = ? AND id > ?)) \
                 ORDER BY \"when\", id LIMIT ?",
            )
            .bind(from)
            .bind(until)
            .bind(after.0)
            .bind(after.0)
            .bind(after.1)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            let last = rows.len() < PAGE as usize;
            for (id, when, tags_s) in rows {
                after = (when, id);
                if tags_match(&tags_s, tags, TagSet::All) {
                    if out.len() >= limit {
                        return Err(EventError::TooMany(limit));
                    }
                    out.push(when);
                }
            }
            if last {
                return Ok(out);
            }
        }
    }

    /// One event by id.
    pub async fn event(&self, id: i64) -> Result<Option<Event>, EventError> {
        let row: Option<(i64, f64, String, String, String)> =
            sqlx::query_as("SELECT id, \"when\", what, data, tags FROM events WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, when, what, data, tags)| Event {
            id,
            when,
            what,
            data,
            tags,
        }))
    }

    /// Deletes an event; whether it existed.
    pub async fn delete_event(&self, id: i64) -> Result<bool, EventError> {
        let r = sqlx::query("DELETE FROM events WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
