//! The parameter rules of every GET route, case by case.

use super::*;

const NOW: f64 = 1_726_900_000.5;
const DAY: Duration = Duration::from_secs(24 * 3600);

fn parse(query: &str) -> Params {
    Params::parse(Some(query), NOW, DAY).unwrap()
}

fn message(result: Result<Params, ApiError>) -> String {
    match result {
        Err(ApiError::BadRequest(message)) => message,
        other => panic!("expected a bad request, got {other:?}"),
    }
}

fn parse_err(query: &str) -> String {
    message(Params::parse(Some(query), NOW, DAY))
}

#[test]
fn nothing_given() {
    for query in [None, Some(""), Some("&"), Some("unknown=1")] {
        let params = Params::parse(query, NOW, DAY).unwrap();
        assert_eq!(
            params,
            Params {
                orchestrator: None,
                region: None,
                model: None,
                pipeline: None,
                job_type: JobType::Transcoding,
                since: None,
                until: None,
                window: Window {
                    since: Some(NOW - 86400.0),
                    until: NOW
                },
            }
        );
        assert!(!params.is_empty());
    }
}

#[test]
fn orchestrator_and_region_are_trimmed_and_cased() {
    let params = parse("orchestrator=%20%200xAbC%09&region=+fra+");
    assert_eq!(params.orchestrator.as_deref(), Some("0xabc"));
    assert_eq!(params.region.as_deref(), Some("FRA"));
    let params = parse("orchestrator=+++&region=%20");
    assert_eq!(params.orchestrator, None);
    assert_eq!(params.region, None);
}

#[test]
fn model_and_pipeline_are_exact() {
    let expected_pipeline = Some("Image to video");
    let expected_model = Some("stabilityai/stable-video-diffusion-img2vid-xt-1-1");
    for query in [
        "pipeline=Image%20to%20video&model=stabilityai/stable-video-diffusion-img2vid-xt-1-1",
        "pipeline=Image+to+video&model=stabilityai%2Fstable-video-diffusion-img2vid-xt-1-1",
    ] {
        let params = parse(query);
        assert_eq!(params.pipeline.as_deref(), expected_pipeline);
        assert_eq!(params.model.as_deref(), expected_model);
        assert_eq!(params.job_type, JobType::Ai);
    }
    let params = parse("model=+A%2Bb+&pipeline=%20");
    assert_eq!(params.model.as_deref(), Some(" A+b "));
    assert_eq!(params.pipeline.as_deref(), Some(" "));
    let params = parse("model=&pipeline=");
    assert_eq!((params.model, params.pipeline), (None, None));
    assert_eq!(params.job_type, JobType::Transcoding);
}

#[test]
fn invalid_utf8_does_not_panic() {
    let params = parse("model=%FF%FE&pipeline=%C3&orchestrator=%80");
    assert_eq!(params.model.as_deref(), Some("\u{FFFD}\u{FFFD}"));
    assert_eq!(params.pipeline.as_deref(), Some("\u{FFFD}"));
    assert_eq!(params.orchestrator.as_deref(), Some("\u{FFFD}"));
    assert!(parse_err("since=%FF").starts_with("invalid since: "));
}

#[test]
fn first_occurrence_wins() {
    let params = parse("orchestrator=0xA&orchestrator=0xB&region=lax&region=fra");
    assert_eq!(params.orchestrator.as_deref(), Some("0xa"));
    assert_eq!(params.region.as_deref(), Some("LAX"));
    // Even when the first one is empty.
    assert_eq!(parse("region=&region=FRA").region, None);
    // Only the first is validated.
    assert_eq!(parse("since=1&since=x").since, Some(1.0));
    assert_eq!(parse_err("since=x&since=1"), "invalid since: x");
    // Names are case-sensitive.
    assert_eq!(parse("Region=FRA").region, None);
}

#[test]
fn windows() {
    let params = parse("since=1726864722.25");
    assert_eq!(params.since, Some(1726864722.25));
    assert_eq!(params.until, None);
    assert_eq!(
        params.window,
        Window {
            since: Some(1726864722.25),
            until: NOW
        }
    );

    let params = parse("until=1726864722.75");
    assert_eq!(
        params.window,
        Window {
            since: None,
            until: 1726864722.75
        }
    );
    assert!(params.window.contains(-1e12));
    assert!(params.window.contains(1726864722.75));
    assert!(!params.window.contains(1726864722.8));

    let params = parse("since=100&until=200.5");
    assert_eq!(
        params.window,
        Window {
            since: Some(100.0),
            until: 200.5
        }
    );
    assert!(!params.is_empty());
    assert!(params.window.contains(100.0) && params.window.contains(200.5));
    assert!(!params.window.contains(99.9));

    assert!(parse("since=200&until=100").is_empty());
    assert!(!parse("since=100&until=100").is_empty());
    assert!(parse(&format!("since={}", NOW + 1.0)).is_empty());
    assert!(!parse("until=-5").is_empty());

    let window = Window::default_at(NOW, Duration::from_secs(3600));
    assert_eq!(window.since, Some(NOW - 3600.0));
    assert_eq!(window.until, NOW);
}

#[test]
fn number_forms() {
    for (text, value) in [
        ("1726864722", 1726864722.0),
        ("1726864722.", 1726864722.0),
        ("+1726864722.25", 1726864722.25),
        (".5", 0.5),
        ("-1", -1.0),
        ("1.7e9", 1.7e9),
        ("1E3", 1000.0),
        ("%201%20", 1.0),
        ("-0", 0.0),
    ] {
        assert_eq!(parse(&format!("since={text}")).since, Some(value), "{text}");
        assert_eq!(parse(&format!("until={text}")).until, Some(value), "{text}");
    }
    // Empty is absent.
    assert_eq!(parse("since=&until=+").since, None);
}

#[test]
fn bad_numbers() {
    for (text, echoed) in [
        ("abc", "abc"),
        ("NaN", "NaN"),
        ("inf", "inf"),
        ("-infinity", "-infinity"),
        ("1e999", "1e999"),
        ("0x10", "0x10"),
        ("1_000", "1_000"),
        ("1,5", "1,5"),
        ("1.2.3", "1.2.3"),
        ("e5", "e5"),
        ("--1", "--1"),
        ("2024-09-20", "2024-09-20"),
    ] {
        assert_eq!(
            parse_err(&format!("since={text}")),
            format!("invalid since: {echoed}")
        );
        assert_eq!(
            parse_err(&format!("until={text}")),
            format!("invalid until: {echoed}")
        );
    }
    let long = "9".repeat(400) + "x";
    let message = parse_err(&format!("until={long}"));
    assert_eq!(message, format!("invalid until: {}…", "9".repeat(64)));
    // Characters, not bytes: no panic on a multi-byte boundary.
    let long = "é".repeat(100);
    let message = parse_err(&format!("since={long}"));
    assert_eq!(message, format!("invalid since: {}…", "é".repeat(64)));
}

#[test]
fn job_types() {
    assert_eq!(parse("job_type=ai").job_type, JobType::Ai);
    assert_eq!(parse("job_type=transcoding").job_type, JobType::Transcoding);
    assert_eq!(parse("job_type=").job_type, JobType::Transcoding);
    assert_eq!(parse("job_type=+ai+").job_type, JobType::Ai);
    assert_eq!(parse("pipeline=p").job_type, JobType::Ai);
    assert_eq!(parse("model=m").job_type, JobType::Ai);
    assert_eq!(
        parse("model=m&pipeline=p&job_type=ai").job_type,
        JobType::Ai
    );
    for value in ["AI", "video", "transcoding,ai"] {
        assert_eq!(
            parse_err(&format!("job_type={value}")),
            format!("invalid job_type: {value} (allowed: transcoding, ai)")
        );
    }
    let conflict = "job_type transcoding can not be combined with model or pipeline";
    assert_eq!(parse_err("job_type=transcoding&model=m"), conflict);
    assert_eq!(parse_err("job_type=transcoding&pipeline=p"), conflict);
    assert_eq!(JobType::Ai.as_str(), "ai");
    assert_eq!(JobType::Transcoding.as_str(), "transcoding");
}

#[test]
fn aggregated_stats_rules() {
    let agg = |q: &str| Params::aggregated_stats(Some(q), NOW, DAY);
    assert_eq!(message(agg("model=m")), "pipeline required");
    assert_eq!(message(agg("pipeline=p")), "model required");
    assert_eq!(
        message(agg("job_type=ai")),
        "model and pipeline required for job_type ai"
    );
    assert_eq!(message(agg("since=x&model=m")), "invalid since: x");
    let params = agg("orchestrator=0xA&model=m&pipeline=p").unwrap();
    assert_eq!(params.job_type, JobType::Ai);
    assert_eq!(params.orchestrator.as_deref(), Some("0xa"));
    let params = Params::aggregated_stats(None, NOW, DAY).unwrap();
    assert_eq!(params.job_type, JobType::Transcoding);
}

#[test]
fn score_history_rules() {
    let history = |q: &str| Params::score_history(Some(q), NOW);
    let (params, interval) = Params::score_history(None, NOW).unwrap();
    assert_eq!(interval, Interval::Hour);
    assert_eq!(params.window, Window::default_at(NOW, HISTORY_WINDOW));
    assert_eq!(params.window.since, Some(NOW - 7.0 * 86_400.0));
    let (params, interval) = history("interval=6h&model=m&pipeline=p&region=fra").unwrap();
    assert_eq!(interval, Interval::SixHours);
    assert_eq!(params.job_type, JobType::Ai);
    assert_eq!(params.region.as_deref(), Some("FRA"));
    assert_eq!(
        history("interval=86400&interval=x").unwrap().1,
        Interval::Day
    );
    // The parameters of aggregated_stats, with its errors, checked first.
    assert!(
        matches!(history("model=m&interval=1d"), Err(ApiError::BadRequest(m)) if m == "pipeline required")
    );
    assert!(matches!(history("since=x"), Err(ApiError::BadRequest(m)) if m == "invalid since: x"));
    assert!(
        matches!(history("interval=2h"), Err(ApiError::BadRequest(m)) if m.starts_with("invalid interval: 2h (allowed: 1h, 6h, 1d"))
    );
}

#[test]
fn raw_stats_rules() {
    let raw = |q: &str| Params::raw_stats(Some(q), NOW, DAY);
    let required = "orchestrator is a required parameter";
    assert_eq!(message(Params::raw_stats(None, NOW, DAY)), required);
    assert_eq!(message(raw("region=FRA")), required);
    assert_eq!(message(raw("orchestrator=+")), required);
    assert_eq!(
        message(raw("orchestrator=0xa&model=m")),
        "pipeline required"
    );
    let params = raw("orchestrator=0xa&pipeline=p").unwrap();
    assert_eq!(params.job_type, JobType::Ai);
    assert_eq!(params.model, None);
    let params = raw("orchestrator=0xa&job_type=ai").unwrap();
    assert_eq!(params.job_type, JobType::Ai);
    assert_eq!(
        raw("orchestrator=0xa").unwrap().job_type,
        JobType::Transcoding
    );
    assert_eq!(
        message(raw("orchestrator=0xa&job_type=x")),
        "invalid job_type: x (allowed: transcoding, ai)"
    );
}

#[test]
fn pipelines_reads_region_and_window_only() {
    let params = Params::pipelines(
        Some("region=fra&since=5&until=10&job_type=bad&model=m&orchestrator=0xA"),
        NOW,
        DAY,
    )
    .unwrap();
    assert_eq!(params.region.as_deref(), Some("FRA"));
    assert_eq!(
        params.window,
        Window {
            since: Some(5.0),
            until: 10.0
        }
    );
    assert_eq!(params.job_type, JobType::Ai);
    assert_eq!((params.orchestrator, params.model), (None, None));
    assert_eq!(
        message(Params::pipelines(Some("until=soon"), NOW, DAY)),
        "invalid until: soon"
    );
}

#[test]
fn top_ai_score_reads_orchestrator_only() {
    let params =
        Params::top_ai_score(Some("orchestrator=+0xAB+&since=bad&model=m%00"), NOW, DAY).unwrap();
    assert_eq!(params.orchestrator.as_deref(), Some("0xab"));
    assert_eq!(params.window, Window::default_at(NOW, DAY));
    assert_eq!(params.job_type, JobType::Ai);
    assert_eq!(params.model, None);
    assert_eq!(
        Params::top_ai_score(None, NOW, DAY).unwrap().orchestrator,
        None
    );
    assert_eq!(
        message(Params::top_ai_score(Some("orchestrator=0x%00"), NOW, DAY)),
        "orchestrator must not contain NUL characters"
    );
}

#[test]
fn nul_is_refused_in_the_values_a_route_reads() {
    for name in ["orchestrator", "region", "model", "pipeline"] {
        assert_eq!(
            parse_err(&format!("{name}=a%00b&pipeline=p&model=m")),
            format!("{name} must not contain NUL characters")
        );
    }
    assert_eq!(
        message(Params::pipelines(Some("region=%00"), NOW, DAY)),
        "region must not contain NUL characters"
    );
    // Parameters a route does not read are not looked at.
    assert!(Params::pipelines(Some("orchestrator=%00&model=%00"), NOW, DAY).is_ok());
}

#[test]
fn times_beyond_postgresql_are_unbounded() {
    let params = parse("since=-1e300&until=1e300");
    assert_eq!(
        (params.since, params.until),
        (Some(f64::NEG_INFINITY), Some(f64::INFINITY))
    );
    assert!(!params.is_empty());
    let params = parse("until=-1e300");
    assert_eq!(params.window.until, f64::NEG_INFINITY);
    let params = parse("since=1e300");
    assert!(params.is_empty());
    // The first and last representable days are kept as they are.
    for t in [-210_000_000_000.0, 9_000_000_000_000.0, 0.0, NOW] {
        assert_eq!(parse(&format!("since={t}")).since, Some(t));
    }
    let ages = Window::default_at(NOW, Duration::from_secs(u64::MAX));
    assert_eq!(ages.since, Some(f64::NEG_INFINITY));
}

#[test]
fn cache_keys() {
    let key = |q: &str, now: f64| Params::pipelines(Some(q), now, DAY).unwrap().cache_key();
    // Independent of the current time, dependent on every parameter.
    assert_eq!(key("", NOW), key("", NOW + 10.0));
    assert_eq!(key("since=5", NOW), key("since=5", NOW + 10.0));
    assert_eq!(key("region=fra", NOW), key("region=FRA+", NOW));
    assert_eq!(key("since=0", NOW), key("since=-0", NOW));
    assert_eq!(key("since=5", NOW), key("since=5.0", NOW));
    assert_ne!(key("region=FRA", NOW), key("region=LAX", NOW));
    assert_ne!(key("region=FRA", NOW), key("", NOW));
    assert_ne!(key("since=5", NOW), key("until=5", NOW));
    assert_ne!(key("since=5", NOW), key("since=5.25", NOW));
    let set: std::collections::HashSet<CacheKey> =
        [key("", NOW), key("", NOW), key("region=FRA", NOW)].into();
    assert_eq!(set.len(), 2);
}
