//! The state one process shares between requests: configuration, pool, caches.

use crate::cache::TtlCache;
use crate::config::Config;
use crate::db::Db;
use crate::db::DbError;
use crate::ingest::Ingest;
use crate::model::{Pipelines, Region};
use crate::params::{CacheKey, JobType};
use crate::regions::{self, catalyst};
use once_cell::sync::Lazy;
use std::sync::Arc;

/// Shared by every request of a process, whichever door (function, local server, test)
/// it came through.
pub struct App {
    pub config: Config,
    pub db: Arc<Db>,
    /// Group commit of post_stats (shares `db`).
    pub ingest: Ingest,
    /// The identifier of each key of `config.post_keys()`, by position, worked out once.
    pub post_key_ids: Vec<Option<String>>,
    pub regions: TtlCache<(), Arc<[Region]>>,
    /// The HTTP client of the Catalyst region sync, built on first use.
    catalyst_client: once_cell::sync::OnceCell<reqwest::Client>,
    /// Present while the last Catalyst sync is younger than `REGIONS_CACHE_TIMEOUT`, so a
    /// region miss re-reads the database without fetching the document again.
    catalyst_synced: TtlCache<(), ()>,
    /// `/api/pipelines` answers, keyed by their parameters.
    pub pipelines: TtlCache<CacheKey, Pipelines>,
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
        let db = Arc::new(
            Db::new(config.postgres.as_deref(), config.db_timeout)
                .backfill_in_background(config.backfill_in_background),
        );
        App {
            ingest: Ingest::new(db.clone()),
            post_key_ids: config.post_key_ids(),
            regions: TtlCache::new(config.regions_cache_timeout),
            catalyst_client: once_cell::sync::OnceCell::new(),
            catalyst_synced: TtlCache::new(config.regions_cache_timeout),
            pipelines: TtlCache::new(config.pipelines_cache_timeout),
            db,
            config,
        }
    }

    /// The process-wide app built from the environment, for function binaries.
    pub fn global() -> &'static App {
        &GLOBAL
    }

    /// The registered regions, from the per-instance cache while it is fresh.
    pub async fn regions(&self) -> Result<Arc<[Region]>, DbError> {
        match self.regions.get(&()) {
            Some(cached) => Ok(cached),
            None => self.reload_regions().await,
        }
    }

    async fn reload_regions(&self) -> Result<Arc<[Region]>, DbError> {
        self.sync_catalyst_regions().await?;
        let fresh: Arc<[Region]> = regions::regions(&self.db).await?.into();
        self.regions.put((), fresh.clone());
        Ok(fresh)
    }

    /// Adds the regions of `CATALYST_REGION_URL` that the database lacks, at most once per
    /// `REGIONS_CACHE_TIMEOUT`. A failing source is logged (its host only: the URL may hold
    /// a token) and ignored. Only a database that is away is returned, since the read that
    /// follows would fail the same way after a second wait.
    async fn sync_catalyst_regions(&self) -> Result<(), DbError> {
        let Some(url) = self.config.catalyst_region_url.as_deref() else {
            return Ok(());
        };
        if self.catalyst_synced.get(&()).is_some() {
            return Ok(());
        }
        let host = catalyst::host_of(url);
        let fetched = match self.catalyst_client.get_or_try_init(catalyst::client) {
            Ok(client) => catalyst::fetch(client, url).await,
            Err(e) => Err(e),
        };
        match fetched {
            Err(e) => {
                tracing::warn!(%host, error = %e, "catalyst region sync failed; serving regions from the database");
            }
            Ok(regions) => match regions::add_transcoding_regions(&self.db, &regions).await {
                Ok(0) => tracing::debug!(%host, "catalyst region sync: nothing new"),
                Ok(added) => tracing::info!(%host, added, "catalyst region sync added regions"),
                Err(DbError::Internal(detail)) => {
                    tracing::warn!(%host, %detail, "catalyst region sync could not store regions");
                }
                Err(e) => return Err(e),
            },
        }
        self.catalyst_synced.put((), ());
        Ok(())
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

    /// Connects and migrates; spawned at start so a cold start overlaps that work with
    /// the runtime's own start-up instead of the first request.
    pub async fn warm_up(&self) {
        if let Err(e) = self.db.migrations().await {
            tracing::warn!(error = %e, "database not ready at start-up");
        }
    }
}
