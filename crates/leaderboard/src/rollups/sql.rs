//! The SQL that reads the rollups of migration V4 and the events they do not hold yet
//! (the window's ragged edges, the events a recount has not reached), shared by the
//! leaderboard's reads and score history; and the rounding their sums leave.

use crate::db::sql::{pending, Param};
use crate::db::{Db, DbError};
use crate::rollups::plan::SPANS;

/// `SELECT {select}` over the whole buckets of a [`Plan`]: for each span of [`SPANS`] the
/// rows of `tables.0` in its two ranges, and the rows of `tables.1` (600 s rows appended
/// since the last compaction, not yet in `tables.0`) in any of them. The ranges are bound
/// from parameter `$first` on, four per span.
///
/// Each range of `tables.0` is an arm of its own, so the bucket bounds are conditions of
/// the primary key `(span, model, pipeline, bucket, …)`: as one `OR` of two ranges they
/// were only a filter on it, and a model's 7-day window read every bucket the table holds
/// for that model (at 5 M events over 30 days, 7,500 rows read for 1,675 kept).
pub(crate) fn bucket_arms(
    select: &str,
    tables: (&str, &str),
    filter: &str,
    first: usize,
) -> String {
    let (table, appends) = tables;
    let range = |p: usize| format!("(b.bucket >= ${p} AND b.bucket < ${})", p + 1);
    let mut arms: Vec<String> = SPANS
        .iter()
        .enumerate()
        .flat_map(|(i, span)| {
            [0, 2].map(|offset| {
                format!(
                    "SELECT {select} FROM {table} b WHERE b.span = {span} AND {} {filter}",
                    range(first + 4 * i + offset)
                )
            })
        })
        .collect();
    let all_ranges: Vec<String> = (0..2 * SPANS.len()).map(|i| range(first + 2 * i)).collect();
    arms.push(format!(
        "SELECT {select} FROM {appends} b WHERE ({}) {filter}",
        all_ranges.join(" OR ")
    ));
    arms.join(" UNION ALL ")
}

/// The events of a window that are not in its buckets, bound from `$first`, as a CTE named
/// `edge`: the raw events of a [`Plan`]'s edges and, while the backfill of migration V4 is
/// under way, the events between them that it has not counted yet (`id <=
/// pending_through`, read in the same snapshot as the buckets, so each event is counted
/// exactly once). Materialized so the time index alone finds them, however the rest of
/// the query filters; the second arm is skipped outright once the backfill is done.
/// Unscored tests (migration V5's `leaderboard_scored`) are left out, as the rollups
/// leave them out.
///
/// Columns `region_id, orchestrator, payload, model, pipeline, success_rate,
/// round_trip_time, seg_duration`: an edge's events keep their payload (the query takes
/// out only what it keeps), the uncounted ones come with those fields taken out of it
/// instead, by the parallel workers (`numbers`: the three scored ones too, else NULL), so
/// [`edge_text!`] and [`edge_field!`] read either. During a recount the second arm is
/// every event of the window, and materializing their whole payloads (a 7-day window: 2 M
/// of them, written to a temporary file and read back to be parsed in the leader alone)
/// cost more than the straightforward AVG over `event_details`.
///
/// The second arm is only in the statements for a recount (`pending`: with the query's
/// group conditions, so only the events it keeps are parsed, the region as an array the
/// parallel workers get as a value); the others start with [`recount_marker`] instead and
/// are run again as the former when it answers (see [`recount_checked`]). Planned in,
/// that arm cost every request: estimated at a third of `events`, its parsing raised the
/// plan's cost past `jit_above_cost` (35-50 ms of compiling per aggregated_stats at 1 M
/// events), and without the parsing it still cost 0.3 ms. The edges' arm does not filter
/// on the query's groups: there, those conditions made PostgreSQL combine the time index
/// with the region's or the model's index (800,000 entries read for 5,000 rows:
/// aggregated_stats twice as slow).
pub(crate) fn raw_edges(first: usize, numbers: bool, pending: Option<&str>) -> String {
    let number = |name: &str| {
        if numbers {
            format!("leaderboard_number(e.payload -> '{name}')")
        } else {
            "NULL::float8".to_string()
        }
    };
    let uncounted = if let Some(filter) = pending {
        format!(
            concat!(
                " UNION ALL \
                 SELECT e.region_id, e.orchestrator, NULL::jsonb, e.payload ->> 'model', \
                        e.payload ->> 'pipeline', {sr}, {rtt}, {seg} \
                   FROM events e \
                  WHERE ",
                pending!(),
                " IS NOT NULL AND e.id <= ",
                pending!(),
                " AND e.event_time >= to_timestamp(${b}) AND e.event_time < to_timestamp(${c}) \
                    AND leaderboard_scored(e.payload) {filter}"
            ),
            filter = filter,
            b = first + 1,
            c = first + 2,
            sr = number("success_rate"),
            rtt = number("round_trip_time"),
            seg = number("seg_duration"),
        )
    } else {
        String::new()
    };
    format!(
        "edge AS MATERIALIZED (\
           SELECT e.region_id, e.orchestrator, e.payload, NULL::text AS model, \
                  NULL::text AS pipeline, NULL::float8 AS success_rate, \
                  NULL::float8 AS round_trip_time, NULL::float8 AS seg_duration \
             FROM events e \
            WHERE ((e.event_time >= to_timestamp(${a}) AND e.event_time < to_timestamp(${b})) \
                OR (e.event_time >= to_timestamp(${c}) AND e.event_time <= to_timestamp(${d}))) \
              AND leaderboard_scored(e.payload) {uncounted})",
        a = first,
        b = first + 1,
        c = first + 2,
        d = first + 3,
    )
}

/// A field of an [`raw_edges`] row as text (`model`, `pipeline`): taken out already, or
/// from its payload.
macro_rules! edge_text {
    ($field:literal) => {
        concat!("COALESCE(e.", $field, ", e.payload ->> '", $field, "')")
    };
}

/// A scored field of an [`raw_edges`] row as the rollups sum it, `COALESCE(…, 0)`.
macro_rules! edge_field {
    ($field:literal) => {
        concat!(
            "COALESCE(e.",
            $field,
            ", leaderboard_number(e.payload -> '",
            $field,
            "'), 0)"
        )
    };
}

pub(crate) use {edge_field, edge_text};

/// Runs `statements[0]`, which starts with [`recount_marker`] (its column `marker` NULL),
/// and when that row comes (a recount under way in the statement's snapshot) runs
/// `statements[1]`, which reads the uncounted events too, and returns its rows instead.
/// The other rows come as they are.
pub(crate) async fn recount_checked(
    db: &Db,
    client: &tokio_postgres::Client,
    statements: &[String; 2],
    values: &[Param<'_>],
    marker: usize,
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    let rows = db.timed(client.query_typed(&statements[0], values)).await?;
    if rows
        .iter()
        .any(|row| row.get::<_, Option<&str>>(marker).is_none())
    {
        return db.timed(client.query_typed(&statements[1], values)).await;
    }
    Ok(rows)
}

/// The first arm of a statement that leaves the uncounted events out: one row of
/// `columns` NULLs when, in the statement's own snapshot, the backfill is under way after
/// all (a recount, such as V5's, committed after [`history_regions`] read its state and
/// emptied the rollups; for the leaderboard's statements, any backfill). The reader sees
/// that row and runs the statement again with the events (see [`History::pending`],
/// [`recount_checked`]), so the data read and the decision to read the events come from
/// one snapshot.
pub(crate) fn recount_marker(columns: usize) -> String {
    format!(
        "SELECT {} FROM leaderboard_backfill m WHERE m.pending_through IS NOT NULL UNION ALL ",
        vec!["NULL"; columns].join(", ")
    )
}

/// The rollups' sums gain and lose rows (updates, deletes, the backfill), so an average
/// taken from them carries float rounding the straightforward AVG does not: rates that
/// are all 0 may come out at 1e-17, all 1 at a few ulps above 1, round trips that are all
/// 0 at 1e-15 s. The scores jump at exactly 0 (score 0 without success, round-trip score
/// 0 without a round trip), so such residues are snapped: a success rate within 1e-9 of 0
/// or just above 1 (at most a billion events' worth of ulps; no real average is that
/// close), a round trip under a microsecond (no network round trip is). Real values,
/// rates above 1 written by hand included, stay as they are.
pub(crate) fn settle_rate(average: f64) -> f64 {
    const RESIDUE: f64 = 1e-9;
    if average.abs() < RESIDUE {
        0.0
    } else if average > 1.0 && average - 1.0 < RESIDUE {
        1.0
    } else {
        average
    }
}

/// See [`settle_rate`]: a round trip average under a microsecond is rounding residue.
pub(crate) fn settle_seconds(average: f64) -> f64 {
    const RESIDUE: f64 = 1e-6;
    if average.abs() < RESIDUE {
        0.0
    } else {
        average
    }
}

#[cfg(test)]
mod tests {
    use super::{bucket_arms, settle_rate, settle_seconds};
    use crate::rollups::plan::SPANS;

    #[test]
    fn each_rollup_arm_bounds_its_buckets_by_one_range_of_the_key() {
        let sql = bucket_arms(
            "b.n",
            ("event_buckets_6h", "event_bucket_appends"),
            "AND b.model = $1",
            2,
        );
        let arms: Vec<&str> = sql.split(" UNION ALL ").collect();
        let (appends, rollups) = arms.split_last().expect("arms");
        assert_eq!(rollups.len(), 2 * SPANS.len(), "{sql}");
        for (i, arm) in rollups.iter().enumerate() {
            let p = 2 + 2 * i;
            let range = format!("(b.bucket >= ${p} AND b.bucket < ${})", p + 1);
            assert!(arm.contains("FROM event_buckets_6h b"), "{arm}");
            assert!(arm.contains(&range) && !arm.contains(" OR "), "{arm}");
            assert!(arm.contains(&format!("b.span = {}", SPANS[i / 2])), "{arm}");
            assert!(appends.contains(&range), "{appends}");
        }
        assert!(appends.contains("FROM event_bucket_appends b"), "{appends}");
    }

    #[test]
    fn rollup_rounding_is_snapped_back_into_the_unit_range_and_real_values_stay() {
        assert_eq!(settle_rate(1.0000000000000002), 1.0);
        assert_eq!(settle_rate(-2e-17), 0.0);
        assert_eq!(settle_rate(1.1e-16), 0.0);
        assert_eq!(settle_seconds(3e-15), 0.0);
        assert_eq!(settle_seconds(0.25), 0.25);
        assert_eq!(settle_rate(0.75), 0.75);
        assert_eq!(settle_rate(1.5), 1.5);
        assert_eq!(settle_rate(-0.5), -0.5);
    }
}
