//! The state one process shares between requests: configuration, pool, caches.

use crate::cache::TtlCache;
use crate::config::Config;
use crate::db::Db;
use crate::model::Region;
use once_cell::sync::Lazy;

/// Shared by every request of a process, whichever door (function, local server, test)
/// it came through.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub regions: TtlCache<(), Vec<Region>>,
}

static GLOBAL: Lazy<App> = Lazy::new(|| {
    let (config, warnings) = Config::from_env();
    crate::logging::init(&config.log_level);
    for w in &warnings {
        tracing::warn!(variable = w.variable, "{}", w.message);
    }
    App::new(config)
});

impl App {
    pub fn new(config: Config) -> App {
        let db = Db::new(config.postgres.as_deref(), config.db_timeout);
        App {
            regions: TtlCache::new(config.regions_cache_timeout),
            db,
            config,
        }
    }

    /// The process-wide app built from the environment, for function binaries.
    pub fn global() -> &'static App {
        &GLOBAL
    }

    /// Connects and migrates; spawned at start so a cold start overlaps that work with
    /// the runtime's own start-up instead of the first request.
    pub async fn warm_up(&self) {
        if let Err(e) = self.db.migrations().await {
            tracing::warn!(error = %e, "database not ready at start-up");
        }
    }
}
