//! `leaderboard sign`: the Authorization value of a post_stats body under `SECRET`.

use crate::Failure;
use leaderboard::Config;
use std::io::Read;
use std::path::PathBuf;

/// `leaderboard sign`: the HMAC of exactly the bytes read, as the server checks it.
pub(crate) fn run(file: Option<PathBuf>) -> Result<(), Failure> {
    let (config, _) = Config::from_env();
    let secret = config.secret.ok_or_else(|| {
        Failure::usage(
            "SECRET is not set: export the secret the server checks posts with, e.g. SECRET=... leaderboard sign body.json",
        )
    })?;
    let body = match file {
        Some(path) if path.as_os_str() != "-" => std::fs::read(&path)
            .map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))?,
        _ => {
            let mut body = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut body)
                .map_err(|e| Failure::failed(format!("cannot read standard input: {e}")))?;
            body
        }
    };
    say!("{}", leaderboard::auth::sign(&secret, &body));
    Ok(())
}
