//! The scores of `/api/aggregated_stats` (docs/api.md, "Scores"): pure
//! functions over the averages of one group, already computed by the query
//! (`AVG(COALESCE(x, 0))`).
//!
//! All arithmetic is IEEE double precision in the order the contract writes it, so that
//! equal inputs give bit-equal outputs on every platform.
//!
//! No NaN or infinity can come out: JSON has no representation for them and the contract
//! forbids them. The stored data is validated (0 ≤ success_rate ≤ 1, times ≥ 0), so the
//! guards below only matter for rows that predate that validation or for pathological
//! values; each output field that would not be finite is 0 instead, and a non-finite
//! input average counts as 0, like the `COALESCE(x, 0)` of a missing value.

use serde::Serialize;

/// The three numbers the Explorer reads per orchestrator per region, for both job types.
/// Serialized in this field order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    pub success_rate: f64,
    pub round_trip_score: f64,
    pub score: f64,
}

/// `x` when finite, otherwise 0 (see the module documentation).
fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// Transcoding: `round_trip_score = 1 − e^(−seg/rtt)`, 0 when `rtt = 0`;
/// `score = success_rate × round_trip_score`, 0 when `success_rate = 0`.
///
/// `seg/rtt` overflowing to infinity (a subnormal `rtt`) gives `e^(−∞) = 0` and so a
/// round_trip_score of 1, the limit of the formula; it is finite and therefore kept.
pub fn transcoding(success_rate: f64, rtt: f64, seg: f64) -> Score {
    let success_rate = finite_or_zero(success_rate);
    let rtt = finite_or_zero(rtt);
    let seg = finite_or_zero(seg);
    let round_trip_score = if rtt == 0.0 {
        0.0
    } else {
        finite_or_zero(1.0 - (-(seg / rtt)).exp())
    };
    let score = if success_rate == 0.0 {
        0.0
    } else {
        finite_or_zero(success_rate * round_trip_score)
    };
    Score {
        success_rate,
        round_trip_score,
        score,
    }
}

/// AI: `k = −ln(0.8) / median`; `round_trip_score = e^(−k·rtt)` (so an rtt equal to the
/// median scores 0.8); `score = 0.65·success_rate + 0.35·round_trip_score`, 0 when
/// `success_rate = 0`.
///
/// `median` is the median round-trip time of the successful events of all orchestrators
/// (see [`median_round_trip`](crate::reads::median_round_trip)). Without one — `None`, or
/// a median that is not a finite number > 0, for which `k` means nothing — the
/// round_trip_score is 0 (contract **Decision**), and so is it when `k` itself overflows (a
/// subnormal median).
pub fn ai(success_rate: f64, rtt: f64, median: Option<f64>) -> Score {
    let success_rate = finite_or_zero(success_rate);
    let rtt = finite_or_zero(rtt);
    let k = median
        .filter(|m| m.is_finite() && *m > 0.0)
        .map(|median| -(0.8f64.ln()) / median)
        .filter(|k| k.is_finite());
    let round_trip_score = match k {
        Some(k) => finite_or_zero((-k * rtt).exp()),
        None => 0.0,
    };
    let score = if success_rate == 0.0 {
        0.0
    } else {
        finite_or_zero(0.65 * success_rate + 0.35 * round_trip_score)
    };
    Score {
        success_rate,
        round_trip_score,
        score,
    }
}

#[cfg(test)]
/// The continuous median, as PostgreSQL's `PERCENTILE_CONT(0.5)` computes it: the middle
/// value of the sorted values, or for an even count `lower + 0.5 * (upper − lower)` (the
/// operation order of `float8_lerp` in PostgreSQL's `orderedsetaggs.c`).
///
/// NaNs are ignored; nothing left → `None`. The slice is reordered.
pub fn median(values: &mut [f64]) -> Option<f64> {
    // Move the non-NaN values to the front.
    let mut count = 0;
    for i in 0..values.len() {
        if !values[i].is_nan() {
            values.swap(count, i);
            count += 1;
        }
    }
    let values = &mut values[..count];
    values.sort_unstable_by(f64::total_cmp);
    let middle = count / 2;
    match count {
        0 => None,
        _ if count % 2 == 1 => Some(values[middle]),
        _ => {
            let (lower, upper) = (values[middle - 1], values[middle]);
            Some(lower + 0.5 * (upper - lower))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of docs/api.md: (rtt, success_rate) per orchestrator.
    const EXAMPLE: [(f64, f64); 5] = [
        (8.0, 1.0),
        (2.0, 1.0),
        (1.0, 0.75),
        (2.0, 0.75),
        (0.5, 0.95),
    ];

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 1e-15,
            "{actual} is not within 1e-15 of {expected}"
        );
    }

    fn assert_finite(score: Score) {
        assert!(score.success_rate.is_finite(), "{score:?}");
        assert!(score.round_trip_score.is_finite(), "{score:?}");
        assert!(score.score.is_finite(), "{score:?}");
    }

    #[test]
    fn ai_worked_example() {
        let mut successful: Vec<f64> = EXAMPLE
            .iter()
            .filter(|(rtt, sr)| *sr == 1.0 && *rtt != 0.0)
            .map(|(rtt, _)| *rtt)
            .collect();
        let median = median(&mut successful);
        assert_eq!(median, Some(5.0));

        let first = ai(1.0, 8.0, median);
        assert_close(first.round_trip_score, 0.699751727323698);
        assert_close(first.score, 0.8949131045632943);
        assert_eq!(first.success_rate, 1.0);

        // The formula written out independently for every orchestrator.
        for (rtt, sr) in EXAMPLE {
            let k = -(0.8f64.ln()) / 5.0;
            let rts = (-k * rtt).exp();
            let expected = 0.65 * sr + 0.35 * rts;
            let got = ai(sr, rtt, Some(5.0));
            assert_eq!(got.success_rate, sr);
            assert_eq!(got.round_trip_score, rts);
            assert_eq!(got.score, expected);
        }
        // An rtt equal to the median scores 0.8 (up to rounding).
        assert_close(ai(0.75, 5.0, Some(5.0)).round_trip_score, 0.8);
    }

    #[test]
    fn top_ai_score_example_is_bit_exact() {
        let score = ai(1.0, 0.1, median(&mut [0.1]));
        assert_eq!(score.score, 0.9299999999999999);
    }

    #[test]
    fn transcoding_example() {
        let (seg, rtt) = (2.0804666666666662, 0.6348660516428571);
        let score = transcoding(1.0, rtt, seg);
        let expected = 1.0 - (-(seg / rtt)).exp();
        assert_eq!(score.round_trip_score, expected);
        assert_eq!(score.score, expected);
        assert_eq!(score.success_rate, 1.0);
        assert_eq!(score.score, 0.962259319983335);
        let half = transcoding(0.5, rtt, seg);
        assert_eq!(half.score, 0.5 * expected);
    }

    #[test]
    fn zero_rtt_and_zero_success() {
        assert_eq!(
            transcoding(1.0, 0.0, 2.0),
            Score {
                success_rate: 1.0,
                round_trip_score: 0.0,
                score: 0.0
            }
        );
        let t = transcoding(0.0, 0.5, 2.0);
        assert!(t.round_trip_score > 0.0);
        assert_eq!(t.score, 0.0);
        assert_eq!(t.score.to_bits(), 0.0f64.to_bits());

        let a = ai(0.0, 0.5, Some(1.0));
        assert!(a.round_trip_score > 0.0);
        assert_eq!(a.score, 0.0);
        // rtt 0 with a median: e^0 = 1.
        assert_eq!(ai(1.0, 0.0, Some(1.0)).round_trip_score, 1.0);
    }

    #[test]
    fn ai_without_median() {
        for median in [
            None,
            Some(0.0),
            Some(-1.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
        ] {
            let score = ai(0.9, 2.0, median);
            assert_eq!(score.round_trip_score, 0.0, "{median:?}");
            assert_eq!(score.score, 0.65 * 0.9, "{median:?}");
        }
        // A subnormal median makes k overflow.
        assert_eq!(ai(1.0, 0.0, Some(1e-320)).round_trip_score, 0.0);
    }

    #[test]
    fn outputs_are_always_finite() {
        let odd = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -1e308,
            0.0,
            -0.0,
            1e-320,
            1e308,
            1.0,
        ];
        for sr in odd {
            for rtt in odd {
                for other in odd {
                    assert_finite(transcoding(sr, rtt, other));
                    assert_finite(ai(sr, rtt, Some(other)));
                    assert_finite(ai(sr, rtt, None));
                }
            }
        }
        // Non-finite inputs count as 0.
        assert_eq!(transcoding(f64::NAN, 1.0, 1.0).score, 0.0);
        assert_eq!(transcoding(1.0, f64::NAN, 1.0).round_trip_score, 0.0);
        assert_eq!(transcoding(1.0, f64::INFINITY, 1.0).round_trip_score, 0.0);
        assert_eq!(transcoding(1.0, 1.0, f64::INFINITY).round_trip_score, 0.0);
        assert_eq!(ai(f64::NAN, 1.0, Some(1.0)).score, 0.0);
        // A negative rtt would make e^(−k·rtt) overflow: 0, not infinity.
        assert_eq!(ai(1.0, -1e308, Some(1.0)).round_trip_score, 0.0);
        assert_eq!(transcoding(1.0, -1e-300, 1e300).round_trip_score, 0.0);
        // seg/rtt overflowing to +∞ gives the limit of the formula.
        assert_eq!(transcoding(1.0, 1e-320, 1e300).round_trip_score, 1.0);
    }

    #[test]
    fn median_like_percentile_cont() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [f64::NAN]), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [8.0, 2.0]), Some(5.0));
        assert_eq!(median(&mut [1.0, f64::NAN, 2.0, f64::NAN]), Some(1.5));
        assert_eq!(median(&mut [f64::NAN, 5.0, 1.0, 9.0]), Some(5.0));
        // lower + 0.5 * (upper - lower), not (lower + upper) / 2, which overflows here.
        assert_eq!(median(&mut [f64::MAX, f64::MAX]), Some(f64::MAX));
        let (lower, upper) = (0.1, 0.7);
        assert_eq!(
            median(&mut [upper, lower]),
            Some(lower + 0.5 * (upper - lower))
        );
    }

    #[test]
    fn serializes_in_field_order() {
        let json = serde_json::to_string(&Score {
            success_rate: 1.0,
            round_trip_score: 0.5,
            score: 0.25,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"success_rate":1.0,"round_trip_score":0.5,"score":0.25}"#
        );
    }
}
