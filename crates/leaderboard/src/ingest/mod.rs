//! Group commit for post_stats: posts that arrive while a batch is being written wait in a
//! queue and are written together, as one multi-row `INSERT` in one transaction, in one
//! round trip (`store::insert_events`); each post is answered once its batch is committed.
//! A batch of one is a plain autocommit `INSERT`, as the original service writes it.
//!
//! There is no delay: a post that finds a writer slot free starts a writer at once, which
//! writes whatever is queued (that post alone, usually, when the service is quiet). While
//! `MAX_WRITERS` batches are in flight, new posts queue; each writer, once its batch is
//! committed, takes the next one from the queue, up to `MAX_ROWS` rows and `MAX_BYTES`
//! of bodies. So the batch size follows the load by itself: one row at one post at a
//! time, about the arrivals during one commit under load.
//!
//! A database error that hits a batch (a row the database refuses) is retried row by
//! row, so one bad row fails only its own post; the database being away or slower than
//! `DB_TIMEOUT` answers the whole batch with that error (503), and nothing of it is
//! stored (see `store::insert_events` for a `COMMIT` that lost its answer).
//!
//! Writers are tasks of their own: a client hanging up never cancels a batch that
//! carries other clients' posts.
//!
//! A post counts once: each carries the digest of its body, and a body already stored (or
//! in the same batch twice) is answered `ok` once the copy that counts is committed, and
//! stores nothing (`store::insert_events`, `migrations/V6__post_receipts.sql`).

pub mod freshness;
pub mod stat;
pub mod store;
pub mod strict_json;

use crate::db::{Db, DbError};
use crate::ingest::stat::Stat;
use crate::ingest::store::{insert_events, NewEvent};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Batches in flight at once, each holding one pooled connection (of 10): two let one
/// batch fill while the other commits, and leave the pool to the read routes.
pub const MAX_WRITERS: usize = 2;
/// Rows per batch: far more than queue during one commit at the 64 connections of the
/// benchmark (a bound, not a target), so the statement, its trigger and its commit are
/// shared widely, while one statement's work and locks stay small.
pub const MAX_ROWS: usize = 256;
/// Bodies per batch, in bytes (a body is at most 1 MiB; a larger post than this goes
/// alone): bounds the statement's parameters on a 128 MB function instance.
pub const MAX_BYTES: usize = 4 << 20;

/// The group-commit queue of one process.
pub struct Ingest {
    shared: Arc<Shared>,
}

struct Shared {
    db: Arc<Db>,
    state: Mutex<State>,
    counters: Counters,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    writers: usize,
}

/// A validated post, ready to store.
pub struct Post {
    pub region_key: i32,
    pub stat: Stat,
    /// The digest of the body's exact bytes (`auth::body_digest`).
    pub digest: [u8; crate::auth::DIGEST_BYTES],
    /// The identifier of the key that verified it (`auth::key_id`).
    pub key_id: String,
    /// The size of its body.
    pub bytes: usize,
}

impl Post {
    fn row(&self) -> NewEvent<'_> {
        NewEvent {
            region_key: self.region_key,
            stat: &self.stat,
            digest: &self.digest,
            key_id: &self.key_id,
        }
    }
}

struct Pending {
    post: Post,
    answer: oneshot::Sender<Result<(), DbError>>,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    rows: AtomicU64,
    largest: AtomicU64,
    rows_retried_alone: AtomicU64,
    stored: AtomicU64,
}

/// What the queue has done so far, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestStats {
    /// Batch statements sent (not counting the retries of single rows).
    pub batches: u64,
    /// Rows in those batches.
    pub rows: u64,
    /// The largest batch.
    pub largest: u64,
    /// Rows written alone again after their batch was refused.
    pub rows_retried_alone: u64,
    /// Rows stored: `rows` less the repeats of bodies already received (a batch whose
    /// `COMMIT` lost its answer but committed counts none).
    pub stored: u64,
    /// Posts waiting for a writer right now.
    pub queued: usize,
    /// Batches being written right now.
    pub writers: usize,
}

impl Ingest {
    pub fn new(db: Arc<Db>) -> Ingest {
        Ingest {
            shared: Arc::new(Shared {
                db,
                state: Mutex::new(State::default()),
                counters: Counters::default(),
            }),
        }
    }

    /// Stores one validated post unless its body was stored before; returns once the
    /// batch holding it (or the copy that counts) is committed, or the error that kept it
    /// from being stored.
    pub async fn store(&self, post: Post) -> Result<(), DbError> {
        let (answer, answered) = oneshot::channel();
        let start_writer = {
            let mut state = self.shared.lock();
            state.queue.push_back(Pending { post, answer });
            let free = state.writers < MAX_WRITERS;
            if free {
                state.writers += 1;
            }
            free
        };
        if start_writer {
            tokio::spawn(write_queued(self.shared.clone()));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(DbError::Internal("the batch writer stopped".into())))
    }

    pub fn stats(&self) -> IngestStats {
        let c = &self.shared.counters;
        let state = self.shared.lock();
        IngestStats {
            batches: c.batches.load(Ordering::Relaxed),
            rows: c.rows.load(Ordering::Relaxed),
            largest: c.largest.load(Ordering::Relaxed),
            rows_retried_alone: c.rows_retried_alone.load(Ordering::Relaxed),
            stored: c.stored.load(Ordering::Relaxed),
            queued: state.queue.len(),
            writers: state.writers,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the queue consistent (push/pop only).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next batch, or `None` (and this writer retires) when the queue is empty.
    fn next_batch(&self) -> Option<Vec<Pending>> {
        let mut state = self.lock();
        if state.queue.is_empty() {
            state.writers -= 1;
            return None;
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(next) = state.queue.front() {
            let full = batch.len() >= MAX_ROWS || bytes + next.post.bytes > MAX_BYTES;
            if full && !batch.is_empty() {
                break;
            }
            bytes += next.post.bytes;
            batch.extend(state.queue.pop_front());
        }
        Some(batch)
    }
}

/// Gives the writer slot back if a writer unwinds (it never should); its batch's posts
/// are then answered with an internal error as their senders drop.
struct WriterSlot(Arc<Shared>);

impl Drop for WriterSlot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().writers -= 1;
        }
    }
}

async fn write_queued(shared: Arc<Shared>) {
    let slot = WriterSlot(shared);
    while let Some(batch) = slot.0.next_batch() {
        write(&slot.0, batch).await;
    }
}

async fn write(shared: &Shared, batch: Vec<Pending>) {
    let c = &shared.counters;
    c.batches.fetch_add(1, Ordering::Relaxed);
    c.rows.fetch_add(batch.len() as u64, Ordering::Relaxed);
    c.largest.fetch_max(batch.len() as u64, Ordering::Relaxed);
    // A body twice in one batch is written once; both posts get that row's answer.
    let mut seen = HashSet::with_capacity(batch.len());
    let rows: Vec<NewEvent> = batch
        .iter()
        .filter(|p| seen.insert(p.post.digest))
        .map(|p| p.post.row())
        .collect();
    let result = insert_events(&shared.db, &rows).await;
    drop(rows);
    match result {
        Err(DbError::Internal(detail) | DbError::Conflict(detail)) if batch.len() > 1 => {
            tracing::warn!(rows = batch.len(), %detail, "a batch was refused; storing its rows one by one");
            c.rows_retried_alone
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            for pending in batch {
                let result = insert_events(&shared.db, &[pending.post.row()]).await;
                let _ = pending
                    .answer
                    .send(result.map(|stored| counted(c, stored, 1)));
            }
        }
        result => {
            let result = result.map(|stored| counted(c, stored, batch.len()));
            for pending in batch {
                let _ = pending.answer.send(result.clone());
            }
        }
    }
}

/// Counts `stored` rows for `posts` posts; the rest repeated a body already received.
fn counted(c: &Counters, stored: u64, posts: usize) {
    c.stored.fetch_add(stored, Ordering::Relaxed);
    let repeats = (posts as u64).saturating_sub(stored);
    if repeats > 0 {
        tracing::debug!(
            repeats,
            "bodies received before: answered ok, stored nothing"
        );
    }
}
