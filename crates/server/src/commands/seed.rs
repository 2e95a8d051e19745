//! `leaderboard seed`: synthetic test-job events (demo data, benchmarks, cut-over rehearsals).

use crate::database::{with_database, Database};
use crate::seed;
use crate::{Failure, SeedArgs};
use indicatif::{ProgressBar, ProgressStyle};
use leaderboard::db::DbError;
use leaderboard::schema::{backfill, migrate};
use std::time::{Duration, Instant};

pub(crate) async fn run(args: SeedArgs) -> Result<(), Failure> {
    let options = seed::Options {
        events: args.events,
        orchestrators: args.orchestrators,
        hours: args.hours,
        ai_share: args.ai_share,
        seed: args.seed,
    };
    options.validate().map_err(Failure::usage)?;
    with_database(|database| async move {
        let result = seed_into(&database, &options, args.original).await;
        (database, result)
    })
    .await
}

async fn seed_into(
    database: &Database,
    options: &seed::Options,
    original: bool,
) -> Result<(), Failure> {
    let mut client = database.connect().await?;
    if original {
        migrate::create_original(&client).await?;
    } else {
        migrate::run(&mut client).await?;
    }
    let bar = ProgressBar::new(options.events);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} events ({rate}, {eta} left)",
        )
        .map_err(|e| e.to_string())?
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            },
        )
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let summary = seed::copy_events(&mut client, options, |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let summary = summary?;
    // Fresh statistics, so the first reads after a bulk load get the plans its size calls for.
    if !original {
        backfill::refresh_statistics(&client).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: i64 = client
        .query_typed_one("SELECT count(*) FROM events", &[])
        .await
        .map_err(DbError::from)?
        .get(0);
    say!(
        "inserted {} events ({} AI) from {} orchestrators ({} with AI events) over the last {} h \
         in {elapsed:.1} s ({:.0} events/s); events now holds {total} rows",
        summary.inserted,
        summary.ai,
        summary.orchestrators,
        summary.ai_orchestrators,
        options.hours,
        summary.inserted as f64 / elapsed.max(1e-9)
    );
    Ok(())
}
