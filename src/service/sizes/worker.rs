//! The runtime around jobs: workers that claim, heartbeat while a job runs,
//! record failures, and stop taking work when told to.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::Sizes;
use crate::db::queue::{self, Claim, JobState};
use crate::service::error::{Result, chain};

/// Longest error text kept on a job.
const MAX_ERROR_CHARS: usize = 2000;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

impl Sizes {
    fn lease_ms(&self) -> i64 {
        (self.config.lease_seconds as i64).saturating_mul(1000)
    }

    /// Fails jobs whose holder vanished on their last allowed attempt, then
    /// claims the oldest claimable job, if any.
    pub async fn claim(&self) -> Result<Option<Claim>> {
        let now = now_ms();
        let max = self.config.max_attempts as i32;
        queue::expire_last_attempts(&self.db, now, max).await?;
        Ok(queue::claim(&self.db, now, now + self.lease_ms(), max).await?)
    }

    /// Extends a claim's lease; false when the job is no longer ours.
    pub async fn heartbeat(&self, claim: Claim) -> Result<bool> {
        Ok(queue::heartbeat(&self.db, claim, now_ms() + self.lease_ms()).await?)
    }

    /// Records a failed attempt: back to pending, or failed for good once
    /// the attempts are used up. The error is kept either way.
    async fn fail(&self, claim: Claim, error: &str) -> Result<()> {
        let state = if claim.attempt >= self.config.max_attempts as i32 {
            JobState::Failed
        } else {
            JobState::Pending
        };
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        queue::settle(&self.db, claim, state, Some(error)).await?;
        Ok(())
    }

    /// Runs a claimed job with its lease kept alive, and records a failure
    /// as such.
    pub async fn work(&self, claim: Claim) -> Result<()> {
        let _heart = self.keep_alive(claim);
        let started = std::time::Instant::now();
        let outcome = self.run(claim).await;
        self.metrics
            .variant_jobs_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = outcome {
            let message = chain(&e);
            tracing::warn!(job = claim.job_id, attempt = claim.attempt, error = %message, "variant job failed");
            self.fail(claim, &message).await?;
        }
        Ok(())
    }

    /// Heartbeats for `claim` until the returned guard is dropped, however
    /// the job ends (including a shutdown dropping the job midway).
    fn keep_alive(&self, claim: Claim) -> AbortOnDrop {
        let db = self.db.clone();
        let lease = self.lease_ms();
        let every = Duration::from_millis((lease / 3).max(100) as u64);
        AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match queue::heartbeat(&db, claim, now_ms() + lease).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => tracing::warn!("heartbeat failed: {e}"),
                }
            }
        }))
    }

    /// Claims and runs one job. Returns whether there was a job.
    pub async fn work_once(&self) -> Result<bool> {
        let Some(claim) = self.claim().await? else {
            return Ok(false);
        };
        self.work(claim).await?;
        Ok(true)
    }

    /// Starts `n` workers that run until `stop` turns true. A worker never
    /// takes a new job after that, and hands a job it is running back to
    /// the queue (not counting the attempt), so that the next server to
    /// start takes it at once rather than after its lease. The handles
    /// finish once every handback is written.
    pub fn spawn_workers(
        self: &Arc<Self>,
        n: usize,
        stop: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n)
            .map(|id| {
                let this = Arc::clone(self);
                let stop = stop.clone();
                tokio::spawn(async move { this.worker(id, stop).await })
            })
            .collect()
    }

    async fn worker(&self, id: usize, mut stop: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(10));
        loop {
            if *stop.borrow() {
                break;
            }
            let claimed = tokio::select! {
                r = self.claim() => r,
                _ = stop.changed() => break,
            };
            match claimed {
                Ok(Some(claim)) => {
                    let finished = tokio::select! {
                        r = self.work(claim) => Some(r),
                        _ = stop.changed() => None,
                    };
                    match finished {
                        Some(Ok(())) => continue,
                        Some(Err(e)) => {
                            tracing::warn!(worker = id, "variant worker error: {}", e.chain());
                        }
                        None => {
                            match queue::release(&self.db, claim).await {
                                Ok(true) => tracing::info!(
                                    job = claim.job_id,
                                    "shutting down: job handed back to the queue"
                                ),
                                Ok(false) => {}
                                Err(e) => tracing::warn!(
                                    job = claim.job_id,
                                    "could not hand the job back (its lease will run out): {e}"
                                ),
                            }
                            break;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(worker = id, "variant worker error: {}", e.chain()),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => break,
            }
        }
        tracing::debug!(worker = id, "variant worker stopped");
    }
}

/// Stops the heartbeat however the job ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
