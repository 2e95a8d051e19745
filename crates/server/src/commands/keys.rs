//! `leaderboard keys`: the identifiers of the post_stats keys, as every stored row records
//! the one that let it in. An operator reads here which identifier a tester's key has
//! before revoking it, and with `--stored` which identifiers the stored rows carry (also
//! of keys no longer configured), to hand to `leaderboard events remove --key`.

use crate::database::Database;
use crate::table::table;
use crate::Failure;
use leaderboard::Config;

/// The configured keys, one line each: where it is set, its identifier.
pub(crate) fn configured(config: &Config) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    if let Some(secret) = &config.secret {
        keys.push(("SECRET".to_string(), leaderboard::auth::key_id(secret)));
    }
    for (i, key) in config.extra_secrets.iter().enumerate() {
        keys.push((
            format!("EXTRA_SECRETS #{}", i + 1),
            leaderboard::auth::key_id(key),
        ));
    }
    keys
}

/// `leaderboard keys`: the configured keys' identifiers; no database needed.
pub(crate) fn list(config: &Config) -> Result<(), Failure> {
    let keys = configured(config);
    if keys.is_empty() {
        say!("no key is configured: set SECRET or EXTRA_SECRETS (post_stats refuses every post)");
        return Ok(());
    }
    let rows: Vec<[&str; 2]> = keys
        .iter()
        .map(|(name, id)| [name.as_str(), id.as_str()])
        .collect();
    say!("{}", table(["KEY", "ID"], &rows));
    Ok(())
}

/// `leaderboard keys --stored`: every identifier the stored rows carry, with how many rows
/// and over what time, and which configured key it is, if any.
pub(crate) async fn stored(database: Database, config: Config) -> (Database, Result<(), Failure>) {
    let result = async {
        let client = database.connect_migrated().await?;
        let stored = leaderboard::removal::stored_keys(&client).await?;
        let configured = configured(&config);
        let cells: Vec<[String; 5]> = stored
            .iter()
            .map(|k| {
                let configured_as = configured
                    .iter()
                    .find(|(_, id)| *id == k.key_id)
                    .map(|(name, _)| name.clone())
                    .unwrap_or_else(|| "(not configured)".into());
                [
                    k.key_id.clone(),
                    configured_as,
                    k.events.to_string(),
                    k.first.map(crate::timestamps::rfc3339).unwrap_or_default(),
                    k.last.map(crate::timestamps::rfc3339).unwrap_or_default(),
                ]
            })
            .collect();
        let rows: Vec<[&str; 5]> = cells
            .iter()
            .map(|c| c.each_ref().map(String::as_str))
            .collect();
        say!(
            "{}",
            table(
                ["ID", "KEY", "EVENTS", "FIRST STORED", "LAST STORED"],
                &rows
            )
        );
        Ok(())
    }
    .await;
    (database, result)
}
