//! `leaderboard events remove --key ID`: cleaning up after a leaked key. It removes the rows
//! that key let in (since the leak, with `--since`), online and in bounded steps
//! (`leaderboard::removal`), after which every answer is what a database that never took
//! those posts gives. Without `--yes` it only shows what it would remove.

use crate::database::Database;
use crate::table::table;
use crate::timestamps::{parse, rfc3339};
use crate::{EventsCommand, Failure};
use leaderboard::removal::{self, Selection, Summary};
use leaderboard::Config;

pub(crate) async fn run(
    database: Database,
    command: EventsCommand,
) -> (Database, Result<(), Failure>) {
    let result = match command {
        EventsCommand::Remove {
            key,
            since,
            until,
            yes,
        } => remove(&database, &key, since.as_deref(), until.as_deref(), yes).await,
    };
    (database, result)
}

/// The selection the arguments name, checked before any connection.
pub(crate) fn selection(
    key: &str,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<Selection, Failure> {
    let key = key.trim().to_ascii_lowercase();
    if key.len() != 12 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "--key {key:?} is not a key identifier (12 hex digits, as `leaderboard keys` lists them)"
        )));
    }
    let since = since.map(|t| parse("--since", t)).transpose()?;
    let until = until.map(|t| parse("--until", t)).transpose()?;
    if let (Some(since), Some(until)) = (since, until) {
        if since > until {
            return Err(Failure::usage(
                "--since is after --until: nothing would match",
            ));
        }
    }
    Ok(Selection {
        key_id: Some(key),
        since,
        until,
    })
}

async fn remove(
    database: &Database,
    key: &str,
    since: Option<&str>,
    until: Option<&str>,
    yes: bool,
) -> Result<(), Failure> {
    let selection = selection(key, since, until)?;
    let key_id = selection.key_id.as_deref().unwrap_or_default();
    let client = database.connect_migrated().await?;
    // A step never waits long for a lock; one that would is tried again (removal::remove).
    client
        .batch_execute("SET lock_timeout = '1s'")
        .await
        .map_err(leaderboard::db::DbError::from)?;
    let (config, _) = Config::from_env();
    if let Some((name, _)) = crate::commands::keys::configured(&config)
        .into_iter()
        .find(|(_, id)| id == key_id)
    {
        note!(
            "note: key {key_id} is still configured ({name}): posts signed with it are still \
             accepted; revoke it on every deployment first"
        );
    }
    let summary = removal::summarize(&client, &selection).await?;
    say!("{}", describe(key_id, &selection, &summary));
    if summary.events == 0 {
        say!("nothing to remove");
        return Ok(());
    }
    if !yes {
        say!("nothing removed: run again with --yes to remove them");
        return Ok(());
    }
    let total = summary.events.max(1) as u64;
    let removed = removal::remove(&client, &selection, removal::STEP_ROWS, |done| {
        note!("removed {done} of about {total}");
    })
    .await?;
    say!(
        "removed {removed} events; every answer is now as if they had never been posted \
         (answers cached by running servers expire within their cache timeouts)"
    );
    Ok(())
}

/// What the selection holds, for a person about to remove it.
fn describe(key_id: &str, selection: &Selection, summary: &Summary) -> String {
    let window = match (selection.since, selection.until) {
        (None, None) => String::new(),
        (Some(since), None) => format!(", stored since {}", rfc3339(since)),
        (None, Some(until)) => format!(", stored until {}", rfc3339(until)),
        (Some(since), Some(until)) => {
            format!(", stored from {} to {}", rfc3339(since), rfc3339(until))
        }
    };
    let mut out = format!(
        "key {key_id}{window}: {} events of {} orchestrators",
        summary.events, summary.orchestrators
    );
    if let (Some(first), Some(last)) = (summary.first, summary.last) {
        out.push_str(&format!(", stored {} to {}", rfc3339(first), rfc3339(last)));
    }
    if !summary.regions.is_empty() {
        let counts: Vec<String> = summary.regions.iter().map(|r| r.2.to_string()).collect();
        let rows: Vec<[&str; 3]> = summary
            .regions
            .iter()
            .zip(&counts)
            .map(|((region, job_type, _), n)| [region.as_str(), job_type.as_str(), n.as_str()])
            .collect();
        out.push('\n');
        out.push_str(&table(["REGION", "JOB TYPE", "EVENTS"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_twelve_hex_digits_and_the_window_in_order() {
        let s =
            selection(" 0A1B2C3D4E5F ", Some("100"), Some("2026-12-02T16:46:40Z")).expect("valid");
        assert_eq!(s.key_id.as_deref(), Some("0a1b2c3d4e5f"));
        assert_eq!((s.since, s.until), (Some(100.0), Some(1_796_230_000.0)));
        for bad in ["", "0a1b2c3d4e5", "0a1b2c3d4e5f0", "0a1b2c3d4e5g", "SECRET"] {
            assert!(selection(bad, None, None).is_err(), "{bad:?}");
        }
        assert!(selection("0a1b2c3d4e5f", Some("200"), Some("100")).is_err());
        assert!(selection("0a1b2c3d4e5f", Some("soon"), None).is_err());
    }
}
