//! One memory budget shared by every decode in the process: uploads being
//! checked and resize jobs alike. A decode reserves what its header says it
//! will allocate before a single pixel is decoded, and holds the
//! reservation until its buffers are gone; what is not reserved cannot be
//! allocated by a decode, so decoding cannot push the process past
//! `limits.decode_memory` however many requests arrive at once.
//!
//! An upload that finds the budget spent waits `limits.decode_wait_seconds`
//! and is then refused as busy (503 with Retry-After); a resize job simply
//! waits its turn.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::imaging::Limits;

/// How uploads and decodes are bounded: the limits checked against headers
/// and structure, the memory decodes share, the longest a decode may run,
/// and the memory upload bodies being received share.
#[derive(Debug, Clone)]
pub struct Decoding {
    pub limits: Limits,
    pub budget: Arc<DecodeBudget>,
    pub timeout: Duration,
    pub upload_memory: Arc<DecodeBudget>,
}

/// Reservations are counted in KiB, so the budget fits the semaphore's
/// permit count for any sane size.
const UNIT: u64 = 1024;

/// Why a reservation was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// This one decode needs more than the whole budget: it can never run.
    #[error("decoding needs {needed} bytes; the decode memory limit is {limit} bytes")]
    TooBig { needed: u64, limit: u64 },
    /// Other decodes hold the budget and did not give it back in time.
    #[error("every byte of decode memory is in use; waited {waited:?}")]
    Busy { waited: Duration },
}

/// A reservation; dropping it gives the memory back.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: u64,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// A reservation this large held a decode whose buffers the allocator
/// would otherwise keep resident after they are freed.
const GIVE_BACK_ABOVE: u64 = 64 << 20;

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes >= GIVE_BACK_ABOVE {
            crate::give_back_memory();
        }
    }
}

#[derive(Debug)]
pub struct DecodeBudget {
    permits: Arc<Semaphore>,
    limit: u64,
    wait: Duration,
}

impl DecodeBudget {
    /// A budget of `limit` bytes; uploads wait at most `wait` for room.
    pub fn new(limit: u64, wait: Duration) -> Self {
        let units = (limit / UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        Self {
            permits: Arc::new(Semaphore::new(units as usize)),
            limit,
            wait,
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }

    fn units(&self, bytes: u64) -> Result<u32, BudgetError> {
        let units = bytes.div_ceil(UNIT).max(1);
        if bytes > self.limit {
            return Err(BudgetError::TooBig {
                needed: bytes,
                limit: self.limit,
            });
        }
        u32::try_from(units).map_err(|_| BudgetError::TooBig {
            needed: bytes,
            limit: self.limit,
        })
    }

    /// For an upload: waits up to the configured time, then gives up.
    pub async fn reserve_for_upload(&self, bytes: u64) -> Result<Reservation, BudgetError> {
        let units = self.units(bytes)?;
        let acquire = Arc::clone(&self.permits).acquire_many_owned(units);
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reservation {
                _permit: permit,
                bytes,
            }),
            // The semaphore is never closed; a timeout is the only refusal.
            Ok(Err(_)) | Err(_) => Err(BudgetError::Busy { waited: self.wait }),
        }
    }

    /// Only if the room is free right now: for optional work (sizes made
    /// within an upload) that has a cheaper path when it is not.
    pub fn try_reserve(&self, bytes: u64) -> Option<Reservation> {
        let units = self.units(bytes).ok()?;
        let permit = Arc::clone(&self.permits)
            .try_acquire_many_owned(units)
            .ok()?;
        Some(Reservation {
            _permit: permit,
            bytes,
        })
    }

    /// For a resize job: waits as long as it takes.
    pub async fn reserve_for_job(&self, bytes: u64) -> Result<Reservation, BudgetError> {
        let units = self.units(bytes)?;
        match Arc::clone(&self.permits).acquire_many_owned(units).await {
            Ok(permit) => Ok(Reservation {
                _permit: permit,
                bytes,
            }),
            Err(_) => Err(BudgetError::Busy {
                waited: Duration::ZERO,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_are_held_until_dropped_and_uploads_give_up_in_time() {
        let budget = DecodeBudget::new(10 << 20, Duration::from_millis(50));
        let first = budget.reserve_for_upload(8 << 20).await.unwrap();
        assert_eq!(budget.available(), 2 << 20);
        let started = std::time::Instant::now();
        let refused = budget.reserve_for_upload(4 << 20).await.unwrap_err();
        assert!(matches!(refused, BudgetError::Busy { .. }), "{refused:?}");
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(first);
        let second = budget.reserve_for_upload(4 << 20).await.unwrap();
        assert_eq!(second.bytes(), 4 << 20);
    }

    #[tokio::test]
    async fn a_decode_larger_than_the_budget_is_refused_at_once() {
        let budget = DecodeBudget::new(1 << 20, Duration::from_secs(60));
        let err = budget.reserve_for_job(2 << 20).await.unwrap_err();
        assert_eq!(
            err,
            BudgetError::TooBig {
                needed: 2 << 20,
                limit: 1 << 20
            }
        );
    }

    #[tokio::test]
    async fn optional_work_takes_room_only_when_it_is_free() {
        let budget = DecodeBudget::new(4 << 20, Duration::from_secs(60));
        let held = budget.try_reserve(3 << 20).expect("free room is granted");
        assert!(budget.try_reserve(2 << 20).is_none());
        assert!(
            budget.try_reserve(8 << 20).is_none(),
            "more than the budget"
        );
        drop(held);
        assert_eq!(
            budget.try_reserve(2 << 20).map(|r| r.bytes()),
            Some(2 << 20)
        );
    }

    #[tokio::test]
    async fn a_job_waits_for_room() {
        let budget = Arc::new(DecodeBudget::new(1 << 20, Duration::ZERO));
        let held = budget.reserve_for_job(1 << 20).await.unwrap();
        let waiter = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move { budget.reserve_for_job(1 << 20).await.map(|r| r.bytes()) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(1 << 20));
    }
}
