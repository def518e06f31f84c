//! Reconciler pass time over a large task table (SQLite, the embedded profile).
//!
//! Seeds `ROWS` task rows in one statement, most of them finished (the table a
//! long-lived service accumulates), a few hundred of each kind the reconciler repairs:
//! outbox entries left behind, `QUEUED` rows whose message may be lost, running tasks
//! whose lease expired and whose run is gone. Then it times the first pass (which
//! repairs up to a batch of each kind) and the median of `PASSES` steady passes (its
//! queries over the whole table, nothing left to repair), and prints the query plans
//! of the repair queries so an unindexed scan shows.
//!
//! Usage: `bench_reconciler [ROWS] [PASSES]` (100000, 20); `scripts/bench-reconciler`
//! builds and runs it.

// A bench binary: its figures are its output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use anyhow::Context;
use orchestrator::reconciler::Reconciler;
use orchestrator::{OrchestratorConfig, Services, now_ms};
use secrecy::SecretSlice;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// How the seeded rows split, per 100,000.
const STALE_QUEUED: i64 = 500;
const FRESH_QUEUED: i64 = 2_000;
const LIVE_RUNNING: i64 = 2_000;
const LOST_RUNNING: i64 = 250;
const OUTBOX_LEFT: i64 = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: i64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let passes: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let scale = |n: i64| (n * rows / 100_000).max(1);

    let dir = tempfile::tempdir()?;
    let config = OrchestratorConfig {
        data_dir: dir.path().to_path_buf(),
        ..OrchestratorConfig::default()
    };
    let key = SecretSlice::from(vec![7u8; 32]);
    let (services, _parts) = Services::embedded(config, "http://127.0.0.1:9", key)
        .await
        .context("opening the embedded services")?;
    let db = dir.path().join("tasks.db");

    let seeding = Instant::now();
    let kinds = [
        scale(STALE_QUEUED),
        scale(FRESH_QUEUED),
        scale(LIVE_RUNNING),
        scale(LOST_RUNNING),
    ];
    seed(&db, rows, kinds, scale(OUTBOX_LEFT)).await?;
    eprintln!(
        "seeded {rows} rows in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    explain(&db).await?;

    let reconciler = Reconciler::new(services);
    let started = Instant::now();
    let first = reconciler.pass().await;
    let first_time = started.elapsed();
    let mut times = Vec::with_capacity(passes);
    let mut steady_steps = 0;
    for _ in 0..passes {
        let started = Instant::now();
        let report = reconciler.pass().await;
        times.push(started.elapsed());
        steady_steps += report.taken.len();
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("rows: {rows}");
    println!(
        "first pass: {:.1} ms, {} repairs, {} failures",
        ms(first_time),
        first.taken.len(),
        first.failures.len()
    );
    println!(
        "steady passes: median {:.2} ms, min {:.2} ms, max {:.2} ms over {passes} passes ({steady_steps} repairs)",
        ms(median),
        ms(times.first().copied().unwrap_or_default()),
        ms(times.last().copied().unwrap_or_default()),
    );
    Ok(())
}

/// Writes every row in one transaction, straight into the store's file.
async fn seed(db: &std::path::Path, rows: i64, kinds: [i64; 4], outbox: i64) -> anyhow::Result<()> {
    let [stale, fresh, live, lost] = kinds;
    let now = now_ms();
    let old = now - 10 * 24 * 3600 * 1000;
    let hour_ago = now - 3600 * 1000;
    let mut conn = SqliteConnectOptions::new().filename(db).connect().await?;
    let mut tx = conn.begin().await?;
    // Row `i`: the last `lost` rows are runs lost with their lease expired, before them
    // `live` running ones, `fresh` and `stale` queued ones; the rest finished.
    let (b_lost, b_live) = (rows - lost, rows - lost - live);
    let (b_fresh, b_stale) = (b_live - fresh, b_live - fresh - stale);
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
         INSERT INTO tasks (id, owner, input_type, git_url, description, status, attempt,
                            runner_ref, created_at, updated_at, lease_holder, lease_expires_at)
         SELECT printf('%08x-0000-4000-8000-%012x', i, i), 'owner' || (i % 50), 'GIT',
                'https://example.invalid/r.git', 'bench task',
                CASE WHEN i >= {b_lost} OR i >= {b_live} THEN 'RUNNING_AGENT'
                     WHEN i >= {b_stale} THEN 'QUEUED'
                     WHEN i % 4 = 0 THEN 'FAILED' ELSE 'COMPLETED' END,
                CASE WHEN i >= {b_live} THEN 1 ELSE 0 END,
                CASE WHEN i >= {b_live}
                     THEN printf('agent-%08x-0000-4000-8000-%012x-1', i, i) END,
                {old} + i,
                CASE WHEN i >= {b_lost} THEN {hour_ago}
                     WHEN i >= {b_live} THEN {now}
                     WHEN i >= {b_fresh} THEN {now}
                     WHEN i >= {b_stale} THEN {hour_ago}
                     ELSE {old} + i END,
                CASE WHEN i >= {b_live} THEN 'bench-worker' END,
                CASE WHEN i >= {b_lost} THEN {hour_ago}
                     WHEN i >= {b_live} THEN {now} + 3600000 END
         FROM n",
        last = rows - 1,
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await?;
    let sql = format!(
        "INSERT INTO task_outbox (task_id, created_at)
         SELECT id, {hour_ago} FROM tasks WHERE status = 'QUEUED' ORDER BY id DESC LIMIT {outbox}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    Ok(())
}

/// The plans of the repair queries, as `orchestrator::store::sqlite` writes them.
async fn explain(db: &std::path::Path) -> anyhow::Result<()> {
    let mut conn = SqliteConnectOptions::new().filename(db).connect().await?;
    let queries = [
        "SELECT task_id FROM task_outbox WHERE created_at < 1 ORDER BY created_at, task_id LIMIT 500",
        "SELECT id FROM tasks WHERE status = 'QUEUED' AND updated_at < 1 ORDER BY updated_at, id LIMIT 500",
        "SELECT id FROM tasks WHERE status IN ('PROCESSING', 'DOWNLOADING_CODE') \
         AND (lease_expires_at IS NULL OR lease_expires_at < 1) ORDER BY lease_expires_at, id LIMIT 500",
        "SELECT id FROM tasks WHERE status IN ('RUNNING_AGENT', 'UPLOADING_RESULTS') \
         AND (lease_expires_at IS NULL OR lease_expires_at < 1) ORDER BY lease_expires_at, id LIMIT 500",
    ];
    for query in queries {
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {query}")))
                .fetch_all(&mut conn)
                .await?;
        let steps: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        eprintln!("plan: {}\n  {}", query, steps.join("; "));
    }
    Ok(())
}
