//! What one `/api/score_history` request reads: its regions, whether a recount is under
//! way, and the values its statements are bound to.

use crate::db::sql::{float8, int8, pending, scope, text, Param};
use crate::db::{Db, DbError};
use crate::history::buckets::Buckets;
use crate::history::sql::LISTED_BUCKETS;
use crate::params::Params;
use tokio_postgres::types::Type;

/// What a score_history request reads: the keys of its regions, and whether the events
/// V4's backfill has not counted are read too (see [`history_regions`](crate::history::history_regions); a statement that
/// finds a recount under way reads them whatever this says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryScope {
    pub regions: Vec<i32>,
    pub pending: bool,
}

/// The regions a score_history request covers, `(key, name)`: its job type's, or the
/// one it names. Read first, so the queries below get the keys as a value the planner
/// sees (an index on the region, not a join that misleads its row estimates).
///
/// Also whether V4's backfill was under way (`pending_through` set) when they were read.
/// When it was not, the queries below leave out the events it has not counted (there are
/// none): planned in, that part costs milliseconds even when it reads nothing (the
/// planner sends it to parallel workers, which start before its filter finds the
/// backfill done). The backfill restarts only when a migration (such as V5) recounts
/// everything, in the transaction that empties the rollups; one that commits after this
/// read is noticed by each statement in its own snapshot ([`recount_marker`](crate::rollups::sql::recount_marker), the extent's
/// last column), which then reads the events too.
pub async fn history_regions(
    db: &Db,
    params: &Params,
) -> Result<(Vec<(i32, String)>, bool), DbError> {
    let client = db.client().await?;
    let rows = db
        .timed(client.query_typed(
            concat!(
                "WITH ",
                scope!(),
                " SELECT s.id, s.name, ",
                pending!(),
                " IS NOT NULL FROM scope s \
                 UNION ALL SELECT NULL, NULL, ",
                pending!(),
                " IS NOT NULL"
            ),
            &[
                text(&params.job_type.as_str()),
                text(&params.region.as_deref()),
            ],
        ))
        .await?;
    let pending = rows
        .iter()
        .any(|r| r.get::<_, Option<bool>>(2) == Some(true));
    let regions = rows
        .iter()
        .filter_map(|r| Some((r.get::<_, Option<i32>>(0)?, r.get::<_, Option<String>>(1)?)))
        .collect();
    Ok((regions, pending))
}

/// The values of one `/api/score_history` request, in the parameter order of
/// [`HISTORY_EXTENT`], [`HISTORY`] and [`HISTORY_MEDIANS`]: $1 the region keys
/// ([`history_regions`](crate::history::history_regions)), $2 model and $3 pipeline ('' for transcoding; AI always has
/// both), $4 orchestrator, $5 the span of `event_buckets` read, $6 the interval, $7/$8 the
/// bucket bounds, $9/$10 the same as Unix seconds for `event_time`.
pub(crate) struct History<'a> {
    /// Whether to read the events the backfill has not counted ([`history_regions`](crate::history::history_regions)).
    pub(crate) pending: bool,
    /// Whether to find the rollup rows bucket by bucket ([`LISTED_BUCKETS`]).
    pub(crate) listed: bool,
    pub(crate) regions: &'a [i32],
    pub(crate) model: &'a str,
    pub(crate) pipeline: &'a str,
    pub(crate) orchestrator: Option<&'a str>,
    pub(crate) span: i32,
    pub(crate) interval: i64,
    pub(crate) lo: i64,
    pub(crate) hi: i64,
    pub(crate) lo_seconds: f64,
    pub(crate) hi_seconds: f64,
}

impl<'a> History<'a> {
    pub(crate) fn of(
        params: &'a Params,
        scope: &'a HistoryScope,
        buckets: &Buckets,
    ) -> History<'a> {
        let (lo, hi) = buckets.bounds();
        let (lo_seconds, hi_seconds) = buckets.seconds();
        // The largest list is of the finest span read, an hour.
        let listed = params.region.is_some()
            && buckets
                .lo
                .zip(buckets.hi)
                .is_some_and(|(lo, hi)| (hi - lo) / 3600 <= LISTED_BUCKETS);
        History {
            pending: scope.pending,
            listed,
            regions: &scope.regions,
            model: params.model.as_deref().unwrap_or(""),
            pipeline: params.pipeline.as_deref().unwrap_or(""),
            orchestrator: params.orchestrator.as_deref(),
            span: buckets.interval.source_span(),
            interval: buckets.interval.seconds(),
            lo,
            hi,
            lo_seconds,
            hi_seconds,
        }
    }

    /// `statements[1]` while the backfill is under way, else `statements[0]`.
    pub(crate) fn statement<'s>(&self, statements: &'s [String; 2]) -> &'s str {
        &statements[usize::from(self.pending)]
    }

    /// Of a statement over the rollups, the variant that lists the buckets when
    /// [`History::listed`] (`statements[1]`), else the one that reads their range.
    pub(crate) fn rollup_statement<'s>(&self, statements: &'s [[String; 2]; 2]) -> &'s str {
        self.statement(&statements[usize::from(self.listed)])
    }

    pub(crate) fn values(&self) -> [Param<'_>; 10] {
        [
            (&self.regions, Type::INT4_ARRAY),
            text(&self.model),
            text(&self.pipeline),
            text(&self.orchestrator),
            (&self.span, Type::INT4),
            int8(&self.interval),
            int8(&self.lo),
            int8(&self.hi),
            float8(&self.lo_seconds),
            float8(&self.hi_seconds),
        ]
    }
}
