//! The state one process shares between requests: configuration, pool, caches.

use crate::cache::TtlCache;
use crate::config::Config;
use crate::db::Db;
use crate::db::DbError;
use crate::model::Region;
use crate::query::JobType;
use crate::store;
use once_cell::sync::Lazy;
use std::sync::Arc;

/// Shared by every request of a process, whichever door (function, local server, test)
/// it came through.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub regions: TtlCache<(), Arc<[Region]>>,
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
    /// The registered regions, from the per-instance cache while it is fresh.
    pub async fn regions(&self) -> Result<Arc<[Region]>, DbError> {
        match self.regions.get(&()) {
            Some(cached) => Ok(cached),
            None => self.reload_regions().await,
        }
    }

    async fn reload_regions(&self) -> Result<Arc<[Region]>, DbError> {
        let fresh: Arc<[Region]> = store::regions(&self.db).await?.into();
        self.regions.put((), fresh.clone());
        Ok(fresh)
    }

    /// The region `name` (any case) registered for `job_type`. A miss re-reads the
    /// database once, so a region added since the cache was filled is accepted at once.
    pub async fn region_for(
        &self,
        name: &str,
        job_type: JobType,
    ) -> Result<Option<Region>, DbError> {
        let find = |regions: &[Region]| {
            regions
                .iter()
                .find(|r| {
                    r.id.to_uppercase() == name.to_uppercase() && r.job_type == job_type.as_str()
                })
                .cloned()
        };
        if let Some(found) = find(&self.regions().await?) {
            return Ok(Some(found));
        }
        Ok(find(&self.reload_regions().await?))
    }

    pub async fn warm_up(&self) {
        if let Err(e) = self.db.migrations().await {
            tracing::warn!(error = %e, "database not ready at start-up");
        }
    }
}
