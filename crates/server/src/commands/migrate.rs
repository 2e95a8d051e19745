//! `leaderboard migrate status|up|down`: the migrations, and the online part of an upgrade
//! (V4's backfill) with a progress bar.

use crate::database::Database;
use crate::{Failure, MigrateCommand};
use indicatif::{ProgressBar, ProgressStyle};
use leaderboard::db;
use leaderboard::schema::backfill;
use leaderboard::schema::migrate::{self, DownPlan, Status};
use std::time::{Duration, Instant};

pub(crate) async fn run(
    database: Database,
    command: MigrateCommand,
) -> (Database, Result<(), Failure>) {
    let result = match command {
        MigrateCommand::Status => migrate_status(&database).await,
        MigrateCommand::Up => migrate_up(&database).await,
        MigrateCommand::Down { to, yes } => migrate_down(&database, to, yes).await,
    };
    (database, result)
}

async fn migrate_status(database: &Database) -> Result<(), Failure> {
    let client = database.connect().await?;
    let status = migrate::status(&client).await?;
    print_status(&db::redact_url(&database.url), &status);
    if let Some(p) = backfill::progress(&client).await? {
        let state = match (p.complete, p.index_ready) {
            (true, true) => "complete".to_string(),
            (true, false) => "counted; an index not built yet (`migrate up` builds it)".into(),
            (false, _) => format!(
                "{:.1} % ({} rows counted, {} ids left; `migrate up` finishes it)",
                100.0 * p.fraction_done(),
                p.rows_done,
                p.ids_left
            ),
        };
        say!("backfill        {state}");
    }
    match status.problem {
        Some(problem) => Err(Failure::failed(format!(
            "the service refuses this database: {problem}"
        ))),
        None => Ok(()),
    }
}

fn print_status(url: &str, status: &Status) {
    say!("database        {url}");
    say!(
        "version         {} (this build knows migrations up to {})",
        status.version,
        status.latest
    );
    if status.applied.is_empty() {
        say!("applied         none");
    }
    for (i, a) in status.applied.iter().enumerate() {
        let label = if i == 0 { "applied" } else { "" };
        let mut flags = String::new();
        if a.unknown {
            flags.push_str("  UNKNOWN to this build");
        }
        if a.changed {
            flags.push_str("  CHANGED since applied");
        }
        say!(
            "{label:<15} V{} {}  ({}){flags}",
            a.version,
            a.name,
            a.applied_on
        );
    }
    if status.pending.is_empty() {
        say!("pending         none");
    }
    for (i, p) in status.pending.iter().enumerate() {
        let label = if i == 0 { "pending" } else { "" };
        let adopt = match status.to_adopt {
            Some(v) if i64::from(p.version) <= v => "  (adopted: recorded as applied, not run)",
            _ => "",
        };
        say!("{label:<15} V{} {}{adopt}", p.version, p.name);
    }
    let golang = match (status.golang_migrate, status.to_adopt) {
        (None, _) => "none (no schema_migrations row)".to_string(),
        (Some(g), _) if g.dirty => format!(
            "DIRTY at version {v}: the service refuses to start until it is repaired (migrate force {v})",
            v = g.version
        ),
        (Some(g), Some(_)) => format!(
            "version {}, clean, NOT ADOPTED yet: the next start or `leaderboard migrate up` \
             records it without running anything",
            g.version
        ),
        (Some(g), None) => format!("version {}, clean, adopted", g.version),
    };
    say!("golang-migrate  {golang}");
    if let Some(problem) = &status.problem {
        say!("problem         {problem}");
    }
}

async fn migrate_up(database: &Database) -> Result<(), Failure> {
    // A connection of its own, closed afterwards, so the advisory lock cannot outlive us.
    // The migrations try again by themselves when they lose a race with another session
    // (a table busy with a cut-over's writers, a deadlock), saying so in the log.
    let mut client = database.connect().await?;
    let state = migrate::run(&mut client).await?;
    if let Some(version) = state.adopted_golang_migrate_version {
        say!("adopted the golang-migrate database at version {version}: recorded as applied, nothing run");
    }
    if state.applied_now.is_empty() {
        say!(
            "nothing to apply: the database is at version {}",
            state.version
        );
    } else {
        let applied: Vec<String> = state.applied_now.iter().map(|v| format!("V{v}")).collect();
        say!(
            "applied {}: the database is at version {}",
            applied.join(", "),
            state.version
        );
    }
    backfill_up(database, &client).await
}

/// The online part of the migrations (the backfill, then the finish: the concurrent
/// index build and fresh statistics), with a progress bar: rows counted, rate, time left,
/// and what the finish is doing or waiting for. Another process (a deployed service's
/// background task, another operator) may be doing part of it; this waits for that and
/// returns once all is done, whoever did it.
async fn backfill_up(database: &Database, client: &tokio_postgres::Client) -> Result<(), Failure> {
    let Some(before) = backfill::progress(client).await? else {
        return Ok(());
    };
    if before.settled() {
        return Ok(());
    }
    // Holds the finish's lock while this process does the finish.
    let mut lock = database.connect().await?;
    let started = Instant::now();
    let bar = ProgressBar::new(before.ids_total.max(0) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {percent}% backfill: {msg} ({eta} left)",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let rows_before = before.rows_done;
    let report = |report: backfill::Report<'_>| match report {
        backfill::Report::Counting(p) => {
            bar.set_position((p.ids_total - p.ids_left).max(0) as u64);
            let rate =
                (p.rows_done - rows_before) as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{} rows counted, {rate:.0} rows/s", p.rows_done));
        }
        backfill::Report::Finishing => {
            bar.set_position(bar.length().unwrap_or(0));
            bar.set_message("all counted; building the indexes and refreshing statistics");
        }
        backfill::Report::WaitingForAnother => bar.set_message(
            "all counted; another process is building the indexes or refreshing \
             statistics, waiting for it",
        ),
    };
    report(backfill::Report::Counting(&before));
    let done = backfill::run(client, &mut lock, backfill::OPERATOR_STEP, report).await;
    bar.finish_and_clear();
    let done = done?;
    say!(
        "backfill complete: {} events counted into the rollups ({} by this run in {:.1} s), \
         indexes ready, statistics refreshed",
        done.rows_done,
        done.rows_done - rows_before,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn describe_reverts(plan: &DownPlan) -> String {
    plan.reverts
        .iter()
        .map(|r| {
            if r.noop {
                format!("V{} {} (no-op: its data stays)", r.version, r.name)
            } else {
                format!("V{} {}", r.version, r.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn migrate_down(database: &Database, to: u32, yes: bool) -> Result<(), Failure> {
    let to = i32::try_from(to).map_err(|_| Failure::usage(format!("--to {to} is too large")))?;
    let mut client = database.connect().await?;
    if !yes {
        let plan = migrate::plan_down(&client, to).await?;
        if plan.reverts.is_empty() {
            say!(
                "nothing to revert: the database is at version {}",
                plan.from
            );
            return Ok(());
        }
        note!(
            "would revert {} (version {} -> {}){}",
            describe_reverts(&plan),
            plan.from,
            plan.to,
            if plan.to == 0 {
                ", dropping every event and region"
            } else {
                ""
            }
        );
        note!("Back up first, e.g. pg_dump --format=custom --file=leaderboard.dump \"$POSTGRES\"");
        return Err(Failure::usage(format!(
            "not reverting without --yes: back up first, then run `leaderboard migrate down --to {to} --yes`"
        )));
    }
    let plan = migrate::down(&mut client, to).await?;
    if plan.reverts.is_empty() {
        say!(
            "nothing to revert: the database is at version {}",
            plan.from
        );
        return Ok(());
    }
    say!(
        "reverted {}: the database is at version {}",
        describe_reverts(&plan),
        plan.to
    );
    match plan.golang_migrate_to {
        Some(0) => say!("golang-migrate's schema_migrations emptied to match"),
        Some(v) => say!("golang-migrate's schema_migrations set to version {v} to match"),
        None => {}
    }
    Ok(())
}
