//! `leaderboard region add|list`: registering a region for a job type, so testers can post
//! to it. A post to a region not registered for its job type is refused with a 400 that
//! names this command; a running service sees the new region at once (a region miss
//! re-reads the database).

use crate::database::Database;
use crate::table::table;
use crate::{Failure, RegionCommand, RegionJobType};
use leaderboard::params::JobType;
use leaderboard::regions::{self, RegionAdded};

/// `regions.name` is VARCHAR(56), `regions.display_name` VARCHAR(128).
const ID_MAX_CHARS: usize = 56;
const NAME_MAX_CHARS: usize = 128;

pub(crate) async fn run(
    database: Database,
    command: RegionCommand,
) -> (Database, Result<(), Failure>) {
    let result = match command {
        RegionCommand::Add { id, name, job_type } => add(&database, &id, &name, job_type).await,
        RegionCommand::List => list(&database).await,
    };
    (database, result)
}

/// Checks the arguments before any connection: the id is stored upper-cased and trimmed
/// (posts match it in any case), the name trimmed.
pub(crate) fn check(id: &str, name: &str) -> Result<(String, String), Failure> {
    let id = id.trim().to_uppercase();
    let name = name.trim().to_string();
    if id.is_empty() {
        return Err(Failure::usage("the region id must not be empty"));
    }
    if id.chars().count() > ID_MAX_CHARS {
        return Err(Failure::usage(format!(
            "the region id is longer than {ID_MAX_CHARS} characters"
        )));
    }
    if name.is_empty() {
        return Err(Failure::usage("--name must not be empty"));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(Failure::usage(format!(
            "--name is longer than {NAME_MAX_CHARS} characters"
        )));
    }
    if id.contains('\0') || name.contains('\0') {
        return Err(Failure::usage("NUL characters are not allowed"));
    }
    Ok((id, name))
}

async fn add(
    database: &Database,
    id: &str,
    name: &str,
    job_type: RegionJobType,
) -> Result<(), Failure> {
    let (id, name) = check(id, name)?;
    let job_type = match job_type {
        RegionJobType::Ai => JobType::Ai,
        RegionJobType::Transcoding => JobType::Transcoding,
    };
    let kind = job_type.as_str();
    let client = database.connect_migrated().await?;
    match regions::add_region(&client, &id, &name, job_type).await? {
        RegionAdded::Added { others } => {
            let also: Vec<String> = others
                .iter()
                .map(|(other, name)| format!("{other} (as {name:?})"))
                .collect();
            if also.is_empty() {
                say!("added region {id} ({name}) for {kind} jobs");
            } else {
                say!(
                    "added region {id} ({name}) for {kind} jobs; it is also registered for {}",
                    also.join(", ")
                );
            }
            say!("running servers accept posts to it at once");
            Ok(())
        }
        RegionAdded::Existing {
            id: existing,
            name: existing_name,
        } if existing_name == name => {
            say!("region {existing} is already registered for {kind} jobs as {existing_name:?}: nothing to do");
            Ok(())
        }
        RegionAdded::Existing {
            id: existing,
            name: existing_name,
        } => Err(Failure::failed(format!(
            "region {existing} is already registered for {kind} jobs as {existing_name:?}, not {name:?}; \
             nothing changed (this command never renames a region)"
        ))),
    }
}

async fn list(database: &Database) -> Result<(), Failure> {
    let client = database.connect_migrated().await?;
    let regions = regions::regions_of(&client).await?;
    let rows: Vec<[&str; 3]> = regions
        .iter()
        .map(|r| [r.id.as_str(), r.name.as_str(), r.job_type.as_str()])
        .collect();
    say!("{}", table(["ID", "NAME", "JOB TYPE"], &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_upper_cased_and_names_trimmed() {
        let (id, name) = check(" fra3 ", " Frankfurt 3 ").expect("valid");
        assert_eq!((id.as_str(), name.as_str()), ("FRA3", "Frankfurt 3"));
        assert!(check("", "x").is_err());
        assert!(check("X", " ").is_err());
        assert!(check(&"X".repeat(57), "x").is_err());
        assert!(check("X", &"n".repeat(129)).is_err());
    }
}
