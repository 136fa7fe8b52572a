//! The engine behind a queue. Engine calls are blocking and the model is loaded once, so the
//! request handlers do not call it: they send their inputs to a worker thread, which takes every
//! input waiting when it is free and embeds them as one [`Engine::embed`] batch. Concurrent text
//! queries thus share forward passes. Texts and files have a worker each, so a long audio upload
//! does not hold up text searches.

use crate::error::ApiError;
use clamp3_engine::{Embedded, Engine, Item, Options, Silent};
use clamp3_features::FileKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// How many inputs may wait for a worker before senders wait too.
const QUEUE_DEPTH: usize = 1024;

/// One input and where its result goes.
struct Job {
    item: Item,
    reply: oneshot::Sender<clamp3_engine::Result<Embedded>>,
}

/// What the workers did, for `/v1/health` and the benchmarks.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Engine calls made.
    pub batches: AtomicUsize,
    /// Inputs embedded by them.
    pub inputs: AtomicUsize,
    /// The largest batch so far.
    pub largest_batch: AtomicUsize,
}

impl BatchStats {
    fn record(&self, size: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.inputs.fetch_add(size, Ordering::Relaxed);
        self.largest_batch.fetch_max(size, Ordering::Relaxed);
    }
}

/// The queue into the engine's workers.
pub struct Embedder {
    texts: mpsc::Sender<Job>,
    files: mpsc::Sender<Job>,
    /// What the workers did.
    pub stats: Arc<BatchStats>,
}

impl Embedder {
    /// Starts the two workers (texts, files); each ends when the embedder is dropped.
    pub fn start(engine: Arc<Engine>, max_batch: usize) -> std::io::Result<Self> {
        let stats = Arc::new(BatchStats::default());
        let lane = |name: &str| -> std::io::Result<mpsc::Sender<Job>> {
            let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
            let (engine, stats) = (engine.clone(), stats.clone());
            std::thread::Builder::new()
                .name(format!("clamp3-embed-{name}"))
                .spawn(move || work(&engine, receiver, max_batch.max(1), &stats))?;
            Ok(sender)
        };
        Ok(Embedder {
            texts: lane("texts")?,
            files: lane("files")?,
            stats,
        })
    }

    /// One input's global vector (and caption, for an image).
    pub async fn embed(&self, item: Item) -> Result<Embedded, ApiError> {
        let result = self.submit(item).await?;
        Ok(result.await.map_err(|_| stopped())??)
    }

    /// Several inputs' vectors, all queued before any is awaited so they share batches; the
    /// first failure fails the whole.
    pub async fn embed_all(&self, items: Vec<Item>) -> Result<Vec<Vec<f32>>, ApiError> {
        let mut pending = Vec::with_capacity(items.len());
        for item in items {
            pending.push(self.submit(item).await?);
        }
        let mut vectors = Vec::with_capacity(pending.len());
        for result in pending {
            vectors.push(result.await.map_err(|_| stopped())??.embedding.data);
        }
        Ok(vectors)
    }

    /// Queues an input on its worker; the receiver gets its result.
    async fn submit(
        &self,
        item: Item,
    ) -> Result<oneshot::Receiver<clamp3_engine::Result<Embedded>>, ApiError> {
        let lane = match &item {
            Item::Text(_) => &self.texts,
            other if FileKind::of(other.name()) == Some(FileKind::Text) => &self.texts,
            _ => &self.files,
        };
        let (reply, result) = oneshot::channel();
        lane.send(Job { item, reply })
            .await
            .map_err(|_| stopped())?;
        Ok(result)
    }
}

fn stopped() -> ApiError {
    ApiError::unavailable("the embedding worker has stopped")
}

/// A worker: waits for an input, takes every other one already waiting (up to `max_batch`),
/// embeds them in one engine call and answers each.
fn work(engine: &Engine, mut queue: mpsc::Receiver<Job>, max_batch: usize, stats: &BatchStats) {
    while let Some(first) = queue.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // A request that timed out or was cancelled needs no vector.
        jobs.retain(|job| !job.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let (items, replies): (Vec<Item>, Vec<_>) =
            jobs.into_iter().map(|job| (job.item, job.reply)).unzip();
        stats.record(items.len());
        let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.embed(&items, &Options::default(), &Silent)
        }));
        match results {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The requester may have gone meanwhile: nothing to do then.
                    let _ = reply.send(result);
                }
            }
            Err(_) => {
                // A bug in the engine fails this batch, not the server.
                for reply in replies {
                    let _ = reply.send(Err(clamp3_engine::Error::Spec(
                        "internal error while embedding".into(),
                    )));
                }
            }
        }
    }
}
