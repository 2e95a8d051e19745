//! The statements of `/api/score_history`: the extent of the data it would read, the sums
//! per point, and the AI median per bucket.

use crate::db::sql::pending;
use crate::rollups::sql::recount_marker;
use once_cell::sync::Lazy;

/// The scored events of a score_history request that V4's backfill has not counted yet
/// (see [`raw_edges`]), of every orchestrator, as a CTE named `pending_events`; empty at
/// once when the backfill is done. It holds only what the statements use, the three
/// scored fields already taken out of the payload (as the rollups sum them, `COALESCE(…,
/// 0)`): materializing whole payloads of every event of a 7-day window during a recount
/// wrote them all to a temporary file first, and each arm parsed them again.
///
/// `materialized` where PostgreSQL would otherwise misjudge it: it estimates a handful of
/// rows from the payload conditions, and for the averages inlined it sorted 1.6 M rows in
/// parallel workers to group them (4.4 s) where the materialized rows are hashed (2.9 s);
/// the extent's min and max per group are cheap in the workers (1.6 s inlined, 2.4 s
/// materialized, on the same 7 days).
pub(crate) fn history_pending(materialized: bool) -> String {
    format!(
        concat!(
            "pending_events AS {}(SELECT e.region_id, e.orchestrator, e.event_time, \
                    COALESCE(leaderboard_number(e.payload -> 'success_rate'), 0) AS success_rate, \
                    COALESCE(leaderboard_number(e.payload -> 'round_trip_time'), 0) AS round_trip_time, \
                    COALESCE(leaderboard_number(e.payload -> 'seg_duration'), 0) AS seg_duration \
               FROM events e WHERE ",
            pending!(),
            " IS NOT NULL AND e.id <= ",
            pending!(),
            " AND e.event_time >= to_timestamp($9) AND e.event_time < to_timestamp($10) \
                AND leaderboard_scored(e.payload) \
                AND COALESCE(e.payload ->> 'model', '') = $2 \
                AND COALESCE(e.payload ->> 'pipeline', '') = $3 \
                AND e.region_id = ANY ($1::int4[]))"
        ),
        if materialized { "MATERIALIZED " } else { "" }
    )
}

/// The most buckets of a span a one-region request lists ([`history_buckets`]); a longer
/// window, or an open one, reads the range.
pub(crate) const LISTED_BUCKETS: i64 = 10_000;

/// The condition on `b.bucket` of a span's compacted rows, `span`-wide buckets starting in
/// `[lo, hi)` (SQL expressions of multiples of `span`): a range, or with `listed` the list
/// of those starts. Every compacted bucket is a multiple of its span (the writers file a
/// 600 s bucket under `bucket / span * span`), so both select the same rows. The primary
/// key leads with `(span, model, pipeline, bucket, region_id, …)`: over a range it reads
/// every region's rows to keep one region's, where a list of buckets is one short probe
/// per bucket (the 6 h count of all orchestrators of one region read 127,000 index
/// entries for 5,800).
pub(crate) fn history_buckets(span: &str, lo: &str, hi: &str, listed: bool) -> String {
    if listed {
        format!("b.bucket = ANY (ARRAY(SELECT generate_series({lo}, {hi} - 1, {span})))")
    } else {
        format!("b.bucket >= {lo} AND b.bucket < {hi}")
    }
}

/// The group filter on a rollup table `b`.
macro_rules! history_filter {
    () => {
        "AND b.model = $2 AND b.pipeline = $3 AND ($4::text IS NULL OR b.orchestrator = $4) \
         AND b.region_id = ANY ($1::int4[])"
    };
}

/// How many (orchestrator, region) groups have data in a score_history request's window,
/// and the first and last bucket start of that data (of any span): the input of
/// [`Buckets::most_points`]. Read from the 6 h buckets (a sixth of the hourly rows), the
/// appended rows and the events not counted yet.
pub(crate) static HISTORY_EXTENT: Lazy<[[String; 2]; 2]> = Lazy::new(|| {
    [false, true].map(|listed| {
        [false, true].map(|pending| {
            let (with, arm) = if pending {
                (
                    format!("{}, ", history_pending(false)),
                    " UNION ALL \
                     SELECT p.region_id, p.orchestrator, floor(extract(epoch FROM v.t))::int8 \
                       FROM (SELECT e.region_id, e.orchestrator, min(e.event_time) AS first, \
                                    max(e.event_time) AS last \
                               FROM pending_events e WHERE ($4::text IS NULL OR e.orchestrator = $4) \
                              GROUP BY e.region_id, e.orchestrator) p \
                      CROSS JOIN LATERAL (VALUES (p.first), (p.last)) v (t)",
                )
            } else {
                (String::new(), "")
            };
            format!(
                "WITH {with} g AS (\
                   SELECT b.region_id, b.orchestrator, b.bucket FROM event_buckets b \
                    WHERE b.span = 21600 AND {buckets} {f} \
                   UNION ALL \
                   SELECT b.region_id, b.orchestrator, b.bucket FROM event_bucket_appends b \
                    WHERE b.bucket >= $7 AND b.bucket < $8 {f} {arm}) \
                 SELECT count(*), min(x.first), max(x.last), {recount} \
                   FROM (SELECT min(g.bucket) AS first, max(g.bucket) AS last FROM g \
                          GROUP BY g.region_id, g.orchestrator) x",
                recount = concat!(pending!(), " IS NOT NULL"),
                buckets = history_buckets("21600", "$7 - (($7 % 21600) + 21600) % 21600", "$8", listed),
                f = history_filter!(),
            )
        })
    })
});

/// The rows a score_history request adds up, `(region, orchestrator, bucket, events, sums of
/// the three scored fields)`, in the order they are to be added: the rollup rows of the
/// interval's span, the appended 600 s rows, and the events not counted yet, summed per
/// group and interval bucket here (one row per point, whatever their number: sent one
/// row per event, a 7-day window during a recount was 2 M rows). `bucket` is the start of
/// a rollup bucket (or of the interval's bucket), which [`history_averages`] files under
/// the interval's bucket holding it. The span's compacted rows start at its first positive
/// bucket: migration V4 files a bucket before 1970 under the span's bucket 0 (it divides
/// towards zero), so that range is read from the 600 s rows, which are exact. Without the
/// uncounted events, the statement starts with [`recount_marker`].
///
/// The rollup rows are not grouped here: with the interval's own span nearly every row is
/// a group of one, and PostgreSQL's grouping (a hash or a sort on the orchestrator's text,
/// numeric sums of `events`) took more than half of the statement's time, which adding
/// them up as they arrive does not.
pub(crate) static HISTORY: Lazy<[[String; 2]; 2]> = Lazy::new(|| {
    let columns = "b.region_id, b.orchestrator::text, b.bucket, b.events, b.success_rate, \
                   b.round_trip_time, b.seg_duration";
    [false, true].map(|listed| {
        [false, true].map(|pending| {
            let (with, marker, arm) = if pending {
                (
                    format!("WITH {}", history_pending(true)),
                    String::new(),
                    format!(
                        " UNION ALL \
                         SELECT e.region_id, e.orchestrator::text, extract(epoch FROM {bucket})::int8, \
                                count(*), sum(e.success_rate), sum(e.round_trip_time), \
                                sum(e.seg_duration) \
                           FROM pending_events e WHERE ($4::text IS NULL OR e.orchestrator = $4) \
                          GROUP BY e.region_id, e.orchestrator, {bucket}",
                        bucket = date_bin("e.event_time")
                    ),
                )
            } else {
                (String::new(), recount_marker(7), String::new())
            };
            format!(
                "{with} {marker} SELECT {columns} FROM event_buckets b \
                         WHERE b.span = $5 AND {buckets} {f} \
                        UNION ALL \
                        SELECT {columns} FROM event_buckets b \
                         WHERE b.span = 600 AND b.bucket >= $7 AND b.bucket < least($8, $5::int8) {f} \
                        UNION ALL \
                        SELECT {columns} FROM event_bucket_appends b \
                         WHERE b.bucket >= $7 AND b.bucket < $8 {f} {arm}",
                buckets = history_buckets("$5::int8", "greatest($7, $5::int8)", "$8", listed),
                f = history_filter!(),
            )
        })
    })
});

/// The earliest instant `date_bin` measures the AI median's buckets from: a Unix day
/// boundary (so a bucket of any interval starts where Unix time puts it) that every
/// timestamp PostgreSQL can store lies within 2^63 microseconds of. From `'epoch'`,
/// `date_bin` fails ("interval out of range") for an event after the year 292,000.
macro_rules! bin_origin {
    () => {
        "timestamptz '2100-01-01 00:00:00+00'"
    };
}

/// The start of the interval's bucket (`$6` seconds) holding `time`, by `date_bin`: integer
/// arithmetic on microseconds, where the numeric `floor(extract(epoch …) / $6)` per row
/// cost about as much as the median's sort.
pub(crate) fn date_bin(time: &str) -> String {
    format!(
        "date_bin(make_interval(secs => $6), {time}, {})",
        bin_origin!()
    )
}

/// The AI median per interval bucket of a score_history request: as
/// [`median_round_trip`] takes it for the bucket's window (every orchestrator; the
/// request's region, or every AI region), from `ai_round_trips` and the events not
/// counted yet, in [`date_bin`]'s buckets; without those events, it starts with
/// [`recount_marker`]. (Taking the medians in Rust instead was slower: sending every
/// round trip cost more than PostgreSQL's sorts.)
pub(crate) static HISTORY_MEDIANS: Lazy<[String; 2]> = Lazy::new(|| {
    [false, true].map(|pending| {
        let (with, marker, arm) = if pending {
            (
                format!("WITH {}", history_pending(true)),
                String::new(),
                format!(
                    " UNION ALL \
                     SELECT {}, e.round_trip_time FROM pending_events e \
                      WHERE e.success_rate = 1 AND e.round_trip_time <> 0",
                    date_bin("e.event_time")
                ),
            )
        } else {
            (String::new(), recount_marker(2), String::new())
        };
        format!(
            "{with} {marker} SELECT extract(epoch FROM r.t)::int8, \
                    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY r.round_trip_time) \
               FROM (SELECT {} AS t, a.round_trip_time \
                       FROM ai_round_trips a \
                      WHERE a.pipeline = $3 AND a.model = $2 \
                        AND a.event_time >= to_timestamp($9) AND a.event_time < to_timestamp($10) \
                        AND a.region_id = ANY ($1::int4[]) {arm}) r \
              GROUP BY r.t",
            date_bin("a.event_time")
        )
    })
});
