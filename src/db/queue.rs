//! Where the resize queue lives: every statement about `variant_jobs`. Each
//! is written once with sea-query and rendered for the connection's
//! database, so there is no `$1` copy of a `?1` statement to keep in step;
//! the row lock PostgreSQL needs (`FOR UPDATE SKIP LOCKED`) is simply left
//! out for SQLite, which runs one writer at a time.
//!
//! A claimed job carries its attempt number, and every write that ends or
//! extends a claim is fenced by it: a worker whose lease was taken over can
//! no longer touch the job.

use std::collections::BTreeMap;
use std::fmt;

use chrono::Utc;
use sea_orm::sea_query::{Cond, Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set,
};

use super::entities::variant_jobs::{self, Column};

/// Where a job stands. Stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobState {
    /// Waiting for a worker (new, re-queued, or back after a failed attempt).
    Pending,
    /// Claimed by a worker that holds a lease on it.
    Running,
    Done,
    /// Out of attempts; the last error is kept.
    Failed,
}

impl JobState {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Running, Self::Done, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job a worker holds: the attempt number fences its writes, so a worker
/// whose lease was taken over cannot overwrite the new holder's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub job_id: i64,
    pub image_id: i64,
    pub attempt: i32,
}

/// One image's job as pages and the API report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub state: JobState,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// The message a job gets when its holder vanished on its last attempt.
pub const LEASE_EXPIRED: &str = "the worker stopped responding on the last attempt (lease expired)";

fn state(s: JobState) -> Expr {
    Expr::value(s.as_str())
}

/// Marks jobs whose holder vanished (lease run out) on their last allowed
/// attempt as failed: nobody may take them again. Returns how many.
pub async fn expire_last_attempts(
    db: &DatabaseConnection,
    now_ms: i64,
    max_attempts: i32,
) -> Result<u64, DbErr> {
    let update = Query::update()
        .table(variant_jobs::Entity)
        .value(Column::State, state(JobState::Failed))
        .value(Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .value(Column::LastError, Expr::value(LEASE_EXPIRED))
        .value(Column::UpdatedAt, Expr::value(Utc::now()))
        .and_where(Expr::col(Column::State).eq(JobState::Running.as_str()))
        .and_where(Expr::col(Column::LeaseUntil).lt(now_ms))
        .and_where(Expr::col(Column::Attempts).gte(max_attempts))
        .to_owned();
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(backend.build(&update))
        .await?
        .rows_affected())
}

/// Claims the oldest claimable job (pending, or running with an expired
/// lease, with attempts left) in one atomic statement, taking a lease
/// until `lease_until_ms`.
pub async fn claim(
    db: &DatabaseConnection,
    now_ms: i64,
    lease_until_ms: i64,
    max_attempts: i32,
) -> Result<Option<Claim>, DbErr> {
    let claimable = Query::select()
        .column(Column::Id)
        .from(variant_jobs::Entity)
        .cond_where(
            Cond::all()
                .add(
                    Cond::any()
                        .add(Expr::col(Column::State).eq(JobState::Pending.as_str()))
                        .add(
                            Cond::all()
                                .add(Expr::col(Column::State).eq(JobState::Running.as_str()))
                                .add(Expr::col(Column::LeaseUntil).lt(now_ms)),
                        ),
                )
                .add(Expr::col(Column::Attempts).lt(max_attempts)),
        )
        .order_by(Column::Id, Order::Asc)
        .limit(1)
        // Replicas skip each other's candidates instead of queueing on them.
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .to_owned();
    let update = Query::update()
        .table(variant_jobs::Entity)
        .value(Column::State, state(JobState::Running))
        .value(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .value(Column::LeaseUntil, Expr::value(lease_until_ms))
        .value(Column::UpdatedAt, Expr::value(Utc::now()))
        .and_where(Expr::col(Column::Id).in_subquery(claimable))
        .returning(Query::returning().columns([Column::Id, Column::ImageId, Column::Attempts]))
        .to_owned();
    let backend = db.get_database_backend();
    let Some(row) = db.query_one_raw(backend.build(&update)).await? else {
        return Ok(None);
    };
    Ok(Some(Claim {
        job_id: row.try_get("", "id")?,
        image_id: row.try_get("", "image_id")?,
        attempt: row.try_get("", "attempts")?,
    }))
}

/// The row a claim still owns: its job, running, at the claimed attempt.
/// Every write that extends or ends a claim is fenced by it, so a worker
/// whose lease was taken over changes nothing.
fn owned(claim: Claim) -> Cond {
    Cond::all()
        .add(Column::Id.eq(claim.job_id))
        .add(Column::State.eq(JobState::Running.as_str()))
        .add(Column::Attempts.eq(claim.attempt))
}

/// Extends a claim's lease; false when the job is no longer ours.
pub async fn heartbeat(
    db: &DatabaseConnection,
    claim: Claim,
    lease_until_ms: i64,
) -> Result<bool, DbErr> {
    let res = variant_jobs::Entity::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(lease_until_ms))
        .filter(owned(claim))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Moves a job we hold out of `running`, releasing its lease. Fenced by the
/// attempt number: false (nothing written) when the job is no longer ours.
pub async fn settle<C: ConnectionTrait>(
    conn: &C,
    claim: Claim,
    to: JobState,
    error: Option<String>,
) -> Result<bool, DbErr> {
    let res = variant_jobs::Entity::update_many()
        .col_expr(Column::State, state(to))
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(owned(claim))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Hands a claimed job back without counting the attempt, for a worker
/// stopped by a graceful shutdown: the job did not fail, and any worker
/// may take it at once. False when the job is no longer ours.
pub async fn release(db: &DatabaseConnection, claim: Claim) -> Result<bool, DbErr> {
    let res = variant_jobs::Entity::update_many()
        .col_expr(Column::State, state(JobState::Pending))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1))
        .col_expr(Column::LeaseUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(owned(claim))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Ends every lease now, so that running jobs can be claimed at once. For
/// SQLite at startup: only one server process uses the file, so a job
/// still marked running was left by a process that is gone. The attempt
/// stays counted (it may have crashed the process).
pub async fn expire_all_leases(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let res = variant_jobs::Entity::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(0i64))
        .filter(Column::State.eq(JobState::Running.as_str()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Queues (or re-queues, with fresh attempts) the job of one image.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, image_id: i64) -> Result<(), DbErr> {
    let now = Utc::now();
    let existing = variant_jobs::Entity::find()
        .filter(Column::ImageId.eq(image_id))
        .one(conn)
        .await?;
    match existing {
        Some(job) => {
            let mut job: variant_jobs::ActiveModel = job.into();
            job.state = Set(JobState::Pending.as_str().into());
            job.attempts = Set(0);
            job.last_error = Set(None);
            job.lease_until = Set(None);
            job.updated_at = Set(now);
            job.update(conn).await?;
        }
        None => {
            new_job(image_id, JobState::Pending).insert(conn).await?;
        }
    }
    Ok(())
}

/// A fresh job row for `image_id`, unclaimed, in `state`.
fn new_job(image_id: i64, state: JobState) -> variant_jobs::ActiveModel {
    let now = Utc::now();
    variant_jobs::ActiveModel {
        image_id: Set(image_id),
        state: Set(state.as_str().into()),
        attempts: Set(0),
        last_error: Set(None),
        lease_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Records an image whose sizes were made within its upload: its job row,
/// already done, so that counts and `kitteh variants requeue` treat it like
/// any other image.
pub async fn record_done<C: ConnectionTrait>(conn: &C, image_id: i64) -> Result<(), DbErr> {
    new_job(image_id, JobState::Done).insert(conn).await?;
    Ok(())
}

/// Up to `limit` images after `after` whose jobs are in `state`, by id.
pub async fn images_in_state_after(
    db: &DatabaseConnection,
    state: JobState,
    after: i64,
    limit: u64,
) -> Result<Vec<i64>, DbErr> {
    use sea_orm::QuerySelect;
    Ok(variant_jobs::Entity::find()
        .filter(Column::State.eq(state.as_str()))
        .filter(Column::ImageId.gt(after))
        .order_by_asc(Column::ImageId)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|j| j.image_id)
        .collect())
}

/// Job counts by state, every state present (zero when none).
pub async fn counts(db: &DatabaseConnection) -> Result<BTreeMap<JobState, i64>, DbErr> {
    // Kept by the jobs table's triggers: no count over every job.
    let tallies = super::tallies(db).await?;
    Ok(JobState::ALL
        .iter()
        .map(|s| {
            let n = tallies
                .get(&format!("jobs_{}", s.as_str()))
                .copied()
                .unwrap_or(0);
            (*s, n)
        })
        .collect())
}

/// The job of one image, if it has one.
pub async fn of_image(db: &DatabaseConnection, image_id: i64) -> Result<Option<Job>, DbErr> {
    let Some(row) = variant_jobs::Entity::find()
        .filter(Column::ImageId.eq(image_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let state = JobState::parse(&row.state).ok_or_else(|| {
        DbErr::Custom(format!(
            "variant_jobs holds an unknown state {:?}",
            row.state
        ))
    })?;
    Ok(Some(Job {
        state,
        attempts: row.attempts,
        last_error: row.last_error,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("Pending"), None);
    }

    #[test]
    fn the_claim_locks_rows_on_postgres_only() {
        use sea_orm::DbBackend;
        let sub = Query::select()
            .column(Column::Id)
            .from(variant_jobs::Entity)
            .limit(1)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let pg = DbBackend::Postgres.build(&sub).to_string();
        let lite = DbBackend::Sqlite.build(&sub).to_string();
        assert!(pg.contains("FOR UPDATE SKIP LOCKED"), "{pg}");
        assert!(!lite.contains("FOR UPDATE"), "{lite}");
    }
}
