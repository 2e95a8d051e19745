//! Synthetic events for demos and benchmarks: stats as the job testers post them, from
//! many orchestrators over every region, generated from a seed and bulk-loaded into
//! `events` with binary COPY (`leaderboard seed`, and the read-path benchmark).
//!
//! Each payload is what `post_stats` would store for such a post (a test checks this), so
//! every read route sees seeded events exactly like posted ones.

use bytes::{BufMut, BytesMut};
use leaderboard::db::DbError;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, GenericClient};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Number of events.
    pub events: u64,
    /// Number of distinct orchestrators.
    pub orchestrators: u32,
    /// Events are spread uniformly over the last `hours` hours.
    pub hours: f64,
    /// Share of AI events (over the AI regions); the rest are transcoding events.
    pub ai_share: f64,
    /// Same seed (and end time), same events.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            events: 10_000,
            orchestrators: 200,
            hours: 24.0,
            ai_share: 0.2,
            seed: 1,
        }
    }
}

impl Options {
    /// Refuses values that cannot make sense, naming the option.
    pub fn validate(&self) -> Result<(), String> {
        if self.orchestrators == 0 {
            return Err("--orchestrators must be at least 1".into());
        }
        if !(self.hours.is_finite() && self.hours > 0.0) {
            return Err(format!(
                "--hours must be a positive number, got {}",
                self.hours
            ));
        }
        if !(0.0..=1.0).contains(&self.ai_share) {
            return Err(format!(
                "--ai-share must be between 0 and 1, got {}",
                self.ai_share
            ));
        }
        Ok(())
    }
}

/// An AI pipeline the AI tester exercises, with its two models and the range its round
/// trips take (seconds).
#[derive(Debug, Clone, Copy)]
pub struct Pipeline {
    pub name: &'static str,
    pub models: [&'static str; 2],
    pub round_trip: (f64, f64),
    /// `input_parameters` with `{model}` for the model id.
    input: &'static str,
}

/// The six pipelines × two models of AI events.
pub const PIPELINES: [Pipeline; 6] = [
    Pipeline {
        name: "text-to-image",
        models: [
            "ByteDance/SDXL-Lightning",
            "SG161222/RealVisXL_V4.0_Lightning",
        ],
        round_trip: (1.0, 6.0),
        input: r#"{"guidance_scale":2,"height":512,"model_id":"{model}","num_images_per_prompt":1,"num_inference_steps":6,"prompt":"a bear","safety_check":false,"width":512}"#,
    },
    Pipeline {
        name: "image-to-image",
        models: ["timbrooks/instruct-pix2pix", "ByteDance/SDXL-Lightning"],
        round_trip: (1.0, 5.0),
        input: r#"{"image":"bear.png","model_id":"{model}","prompt":"make it snow","strength":0.8}"#,
    },
    Pipeline {
        name: "image-to-video",
        models: [
            "stabilityai/stable-video-diffusion-img2vid-xt-1-1",
            "stabilityai/stable-video-diffusion-img2vid-xt",
        ],
        round_trip: (4.0, 10.0),
        input: r#"{"fps":6,"height":576,"image":"bear.png","model_id":"{model}","width":1024}"#,
    },
    Pipeline {
        name: "upscale",
        models: [
            "stabilityai/stable-diffusion-x4-upscaler",
            "stabilityai/sd-x2-latent-upscaler",
        ],
        round_trip: (2.0, 8.0),
        input: r#"{"image":"bear-small.png","model_id":"{model}","prompt":"a bear"}"#,
    },
    Pipeline {
        name: "audio-to-text",
        models: ["openai/whisper-large-v3", "distil-whisper/distil-large-v3"],
        round_trip: (0.2, 3.0),
        input: r#"{"audio":"speech.wav","model_id":"{model}"}"#,
    },
    Pipeline {
        name: "segment-anything-2",
        models: ["facebook/sam2-hiera-large", "facebook/sam2-hiera-base-plus"],
        round_trip: (0.2, 2.0),
        input: r#"{"image":"bear.png","model_id":"{model}","point_coords":[[256,256]],"point_labels":[1]}"#,
    },
];

const AI_ERRORS: [(&str, &str); 3] = [
    (
        "HTTP-STATUS-503",
        "{\"error\":{\"message\":\"Service Unavailable Error\"}}\n",
    ),
    (
        "HTTP-STATUS-500",
        "{\"error\":{\"message\":\"Internal Server Error\"}}\n",
    ),
    (
        "HTTP-STATUS-400",
        "{\"error\":{\"message\":\"Bad Request: model not loaded\"}}\n",
    ),
];

const TRANSCODING_ERRORS: [(&str, &str); 3] = [
    ("SEGMENT_UPLOAD_FAILED", "upload timed out"),
    ("TRANSCODE_FAILED", "orchestrator returned an error"),
    ("DOWNLOAD_FAILED", "rendition download timed out"),
];

/// Segments the stream tester sends per test, and renditions it expects for each.
const SEGMENTS_SENT: u32 = 15;
const RENDITIONS: u32 = 2;

/// A region events can go to: its database id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: i32,
    pub name: String,
}

/// The regions of the database by job type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regions {
    pub transcoding: Vec<Region>,
    pub ai: Vec<Region>,
}

/// Reads the regions (every one, as `/api/regions` lists them) from a migrated database.
pub async fn regions(client: &impl GenericClient) -> Result<Regions, DbError> {
    let rows = client
        .query_typed(
            "SELECT r.id, r.name::text, j.name::text \
               FROM regions r JOIN job_types j ON j.id = r.job_type_id ORDER BY r.id",
            &[],
        )
        .await?;
    let mut regions = Regions::default();
    for row in rows {
        let region = Region {
            id: row.get(0),
            name: row.get(1),
        };
        match row.get::<_, &str>(2) {
            "transcoding" => regions.transcoding.push(region),
            "ai" => regions.ai.push(region),
            _ => {}
        }
    }
    Ok(regions)
}

struct Orchestrator {
    address: String,
    /// 0 for the fastest, 1 for the slowest: its round trips sit at that end of the range.
    pace: f64,
    /// Chance that a test succeeds.
    reliability: f64,
}

/// One generated event, borrowed from the generator until the next one.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub event_time: SystemTime,
    pub orchestrator: &'a str,
    pub region_id: i32,
    pub ai: bool,
    /// The JSON payload as `post_stats` stores it.
    pub payload: &'a str,
}

/// Generates events one by one, oldest first, deterministically from the options' seed
/// and `end`.
pub struct Generator {
    rng: fastrand::Rng,
    regions: Regions,
    /// Region names as JSON strings, by index into `regions`.
    transcoding_names: Vec<String>,
    ai_names: Vec<String>,
    orchestrators: Vec<Orchestrator>,
    /// Indexes of the orchestrators that also run AI jobs.
    ai_orchestrators: Vec<usize>,
    /// `input_parameters` as JSON strings, by pipeline and model.
    inputs: Vec<[String; 2]>,
    ai_share: f64,
    end: f64,
    window: f64,
    remaining: u64,
    /// Position in the window of the previous event (1: its start, 0: `end`).
    position: f64,
    payload: String,
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

impl Generator {
    /// A generator of `options.events` events ending at `end`. Fails when there is no
    /// transcoding region to put events in.
    pub fn new(options: &Options, regions: Regions, end: SystemTime) -> Result<Generator, String> {
        options.validate()?;
        if regions.transcoding.is_empty() {
            return Err("the database has no transcoding region (run the migrations first)".into());
        }
        let mut rng = fastrand::Rng::with_seed(options.seed);
        let orchestrators: Vec<Orchestrator> = (0..options.orchestrators)
            .map(|_| {
                let mut bytes = [0u8; 20];
                rng.fill(&mut bytes);
                Orchestrator {
                    address: format!("0x{}", hex::encode(bytes)),
                    pace: rng.f64(),
                    reliability: 0.78 + 0.19 * rng.f64(),
                }
            })
            .collect();
        // About a third of the orchestrators run AI jobs too, and at least one.
        let mut ai_orchestrators: Vec<usize> = (0..orchestrators.len())
            .filter(|_| rng.f64() < 0.35)
            .collect();
        if ai_orchestrators.is_empty() {
            ai_orchestrators.push(0);
        }
        let inputs = PIPELINES
            .iter()
            .map(|p| {
                p.models
                    .map(|m| json_string(&p.input.replace("{model}", m)))
            })
            .collect();
        let end_secs = end
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Ok(Generator {
            rng,
            transcoding_names: regions
                .transcoding
                .iter()
                .map(|r| json_string(&r.name))
                .collect(),
            ai_names: regions.ai.iter().map(|r| json_string(&r.name)).collect(),
            ai_share: if regions.ai.is_empty() {
                0.0
            } else {
                options.ai_share
            },
            regions,
            orchestrators,
            ai_orchestrators,
            inputs,
            end: end_secs,
            window: options.hours * 3600.0,
            remaining: options.events,
            position: 1.0,
            payload: String::with_capacity(512),
        })
    }

    /// Events still to come.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next event, or `None` after the last one.
    pub fn next_event(&mut self) -> Option<Event<'_>> {
        if self.remaining == 0 {
            return None;
        }
        // Uniform over the window, in time order as a live database receives them (ids
        // and event times rise together): the largest of n uniform values is U^(1/n),
        // the largest of the rest that times U^(1/(n-1)), and so on.
        self.position *= self.rng.f64().powf(1.0 / self.remaining as f64);
        self.remaining -= 1;
        let at = self.end - self.window * self.position;
        let event_time = UNIX_EPOCH + Duration::from_secs_f64(at.max(0.0));
        let timestamp = at.floor() as i64;
        self.payload.clear();
        let ai = self.ai_share > 0.0 && self.rng.f64() < self.ai_share;
        let (orchestrator, region_id) = if ai {
            self.ai_payload(timestamp)
        } else {
            self.transcoding_payload(timestamp)
        };
        Some(Event {
            event_time,
            orchestrator: &self.orchestrators[orchestrator].address,
            region_id,
            ai,
            payload: &self.payload,
        })
    }

    fn transcoding_payload(&mut self, timestamp: i64) -> (usize, i32) {
        let rng = &mut self.rng;
        let o = rng.usize(..self.orchestrators.len());
        let r = rng.usize(..self.regions.transcoding.len());
        let (pace, reliability) = (
            self.orchestrators[o].pace,
            self.orchestrators[o].reliability,
        );
        // Round trip of a ~2 s segment: 0.5 to 3 s, slower orchestrators at the top.
        let rtt = 0.5 + 2.5 * (0.6 * pace + 0.4 * rng.f64());
        let seg_duration = 2.0 + 0.04 * (rng.f64() - 0.5);
        let upload = rtt * (0.3 + 0.15 * rng.f64());
        let transcode = rtt * (0.1 + 0.1 * rng.f64());
        let download = rtt - upload - transcode;
        let expected = SEGMENTS_SENT * RENDITIONS;
        let received = if rng.f64() < reliability {
            expected
        } else if rng.bool() {
            rng.u32(1..expected)
        } else {
            0
        };
        let error = (received < expected).then(|| {
            (
                TRANSCODING_ERRORS[rng.usize(..TRANSCODING_ERRORS.len())],
                (expected - received).div_ceil(RENDITIONS),
            )
        });
        let success_rate = if received == expected {
            "1".to_string()
        } else if received == 0 {
            "0".to_string()
        } else {
            (f64::from(received) / f64::from(expected)).to_string()
        };
        let p = &mut self.payload;
        common(
            p,
            &self.transcoding_names[r],
            &self.orchestrators[o].address,
            &success_rate,
            rtt,
        );
        match error {
            None => p.push_str(r#","errors":[]"#),
            Some(((code, message), count)) => {
                let _ = write!(
                    p,
                    r#","errors":[{{"error_code":"{code}","message":"{message}","count":{count}}}]"#
                );
            }
        }
        let _ = write!(
            p,
            r#","timestamp":{timestamp},"seg_duration":{seg_duration},"segments_sent":{SEGMENTS_SENT}"#
        );
        if received > 0 {
            let _ = write!(p, r#","segments_received":{received}"#);
        }
        let _ = write!(
            p,
            r#","upload_time":{upload},"download_time":{download},"transcode_time":{transcode}}}"#
        );
        (o, self.regions.transcoding[r].id)
    }

    fn ai_payload(&mut self, timestamp: i64) -> (usize, i32) {
        let rng = &mut self.rng;
        let o = self.ai_orchestrators[rng.usize(..self.ai_orchestrators.len())];
        let r = rng.usize(..self.regions.ai.len());
        let p = rng.usize(..PIPELINES.len());
        let m = rng.usize(..2);
        let (pace, reliability) = (
            self.orchestrators[o].pace,
            self.orchestrators[o].reliability,
        );
        let (low, high) = PIPELINES[p].round_trip;
        let rtt = low + (high - low) * (0.6 * pace + 0.4 * rng.f64());
        let ok = rng.f64() < reliability;
        let warm = rng.f64() < 0.8;
        let error = (!ok).then(|| AI_ERRORS[rng.usize(..AI_ERRORS.len())]);
        let payload = &mut self.payload;
        common(
            payload,
            &self.ai_names[r],
            &self.orchestrators[o].address,
            if ok { "1" } else { "0" },
            rtt,
        );
        match error {
            None => payload.push_str(r#","errors":[]"#),
            Some((code, _)) => {
                let _ = write!(
                    payload,
                    r#","errors":[{{"error_code":"{code}","count":1}}]"#
                );
            }
        }
        let pipeline = PIPELINES[p];
        let _ = write!(
            payload,
            r#","timestamp":{timestamp},"model":"{}","pipeline":"{}","input_parameters":{}"#,
            pipeline.models[m], pipeline.name, self.inputs[p][m]
        );
        if let Some((_, response)) = error {
            let _ = write!(payload, r#","response_payload":{}"#, json_string(response));
        }
        if warm {
            payload.push_str(r#","model_is_warm":true"#);
        }
        payload.push('}');
        (o, self.regions.ai[r].id)
    }
}

/// Writes the fields every stat has; `success_rate` goes in as written.
fn common(p: &mut String, region: &str, address: &str, success_rate: &str, rtt: f64) {
    let _ = write!(
        p,
        r#"{{"region":{region},"orchestrator":"{address}","success_rate":{success_rate},"round_trip_time":{rtt}"#
    );
}

/// A JSON document already serialised, sent as JSONB in binary COPY (version byte + text).
#[derive(Debug)]
struct JsonbText<'a>(&'a str);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

/// What [`copy_events`] inserted.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub inserted: u64,
    pub ai: u64,
    pub orchestrators: usize,
    pub ai_orchestrators: usize,
    /// The window the events were spread over.
    pub from: SystemTime,
    pub to: SystemTime,
}

/// Rows per COPY statement.
const BATCH: u64 = 100_000;
/// Rows between two progress reports.
const PROGRESS_EVERY: u64 = 10_000;

/// Generates `options.events` events ending now and inserts them into `events` of a
/// migrated database with binary COPY, in batches, in one transaction (all or nothing).
/// `progress` is called with the number of rows written so far. Row triggers on `events`
/// fire as for any insert.
pub async fn copy_events(
    client: &mut Client,
    options: &Options,
    mut progress: impl FnMut(u64),
) -> Result<Summary, DbError> {
    let end = SystemTime::now();
    let tx = client.transaction().await?;
    let regions = regions(&tx).await?;
    let mut generator = Generator::new(options, regions, end).map_err(DbError::Internal)?;
    let mut summary = Summary {
        inserted: 0,
        ai: 0,
        orchestrators: generator.orchestrators.len(),
        ai_orchestrators: generator.ai_orchestrators.len(),
        from: end - Duration::from_secs_f64(options.hours * 3600.0),
        to: end,
    };
    let types = [Type::TIMESTAMPTZ, Type::VARCHAR, Type::INT4, Type::JSONB];
    while generator.remaining() > 0 {
        let sink = tx
            .copy_in("COPY events (event_time, orchestrator, region_id, payload) FROM STDIN (FORMAT binary)")
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        tokio::pin!(writer);
        let mut batch = 0;
        while batch < BATCH {
            let Some(event) = generator.next_event() else {
                break;
            };
            summary.ai += u64::from(event.ai);
            writer
                .as_mut()
                .write(&[
                    &event.event_time,
                    &event.orchestrator,
                    &event.region_id,
                    &JsonbText(event.payload),
                ])
                .await?;
            batch += 1;
            if (summary.inserted + batch).is_multiple_of(PROGRESS_EVERY) {
                progress(summary.inserted + batch);
            }
        }
        summary.inserted += writer.as_mut().finish().await?;
    }
    tx.commit().await?;
    progress(summary.inserted);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leaderboard::ingest::stat::Stat;
    use leaderboard::params::JobType;
    use serde_json::Value;

    fn seed_regions() -> Regions {
        let transcoding = [
            "GLOBAL", "ATL", "ATL2", "MDW", "FRA", "HOU", "LON", "LAX", "MAD", "MIA", "MOS2",
            "ASH", "NYC", "PRG", "SJO", "SAO", "SEA", "SIN", "STO", "SYD", "HND", "TOR",
        ];
        Regions {
            transcoding: transcoding
                .iter()
                .enumerate()
                .map(|(i, n)| Region {
                    id: 100 + i as i32,
                    name: n.to_string(),
                })
                .collect(),
            ai: ["GLOBAL", "MDW", "FRA", "LAX"]
                .iter()
                .enumerate()
                .map(|(i, n)| Region {
                    id: 200 + i as i32,
                    name: n.to_string(),
                })
                .collect(),
        }
    }

    fn generate(
        options: &Options,
        end: SystemTime,
    ) -> Vec<(SystemTime, String, i32, bool, String)> {
        let mut g = Generator::new(options, seed_regions(), end).unwrap();
        let mut out = Vec::new();
        while let Some(e) = g.next_event() {
            out.push((
                e.event_time,
                e.orchestrator.to_string(),
                e.region_id,
                e.ai,
                e.payload.to_string(),
            ));
        }
        out
    }

    #[test]
    fn every_payload_is_what_post_stats_would_store_for_it() {
        let options = Options {
            events: 5_000,
            ..Options::default()
        };
        let regions = seed_regions();
        for (_, orchestrator, region_id, ai, payload) in generate(&options, SystemTime::now()) {
            let stat = Stat::parse(payload.as_bytes()).unwrap_or_else(|e| panic!("{payload}: {e}"));
            let stored: Value = serde_json::from_str(&payload).unwrap();
            assert_eq!(stat.payload, stored, "post_stats would store it as is");
            assert_eq!(stat.orchestrator, orchestrator);
            assert_eq!(stat.job_type == JobType::Ai, ai);
            let pool = if ai {
                &regions.ai
            } else {
                &regions.transcoding
            };
            let region = pool.iter().find(|r| r.id == region_id).expect("region id");
            assert_eq!(stat.region, region.name);
        }
    }

    #[test]
    fn events_are_realistic() {
        let end = SystemTime::now();
        let options = Options {
            events: 20_000,
            orchestrators: 50,
            hours: 6.0,
            ai_share: 0.2,
            seed: 42,
        };
        let events = generate(&options, end);
        assert_eq!(events.len(), 20_000);
        let start = end - Duration::from_secs(6 * 3600);
        assert!(events.iter().all(|e| e.0 >= start && e.0 <= end));
        let earliest = events.iter().map(|e| e.0).min().unwrap();
        assert!(
            earliest < start + Duration::from_secs(600),
            "spread to the start"
        );

        let ai: Vec<_> = events.iter().filter(|e| e.3).collect();
        let share = ai.len() as f64 / events.len() as f64;
        assert!((0.18..0.22).contains(&share), "AI share {share}");
        let orchestrators: std::collections::BTreeSet<&str> =
            events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(orchestrators.len(), 50);
        assert!(orchestrators.iter().all(|o| o.len() == 42
            && o.starts_with("0x")
            && o[2..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())));
        let regions: std::collections::BTreeSet<i32> = events.iter().map(|e| e.2).collect();
        assert_eq!(regions.len(), 22 + 4, "every region gets events");

        let mut pipelines = std::collections::BTreeSet::new();
        let mut successes = 0.0;
        for e in &events {
            let v: Value = serde_json::from_str(&e.4).unwrap();
            let rtt = v["round_trip_time"].as_f64().unwrap();
            successes += v["success_rate"].as_f64().unwrap();
            if e.3 {
                assert!((0.2..=10.0).contains(&rtt), "{rtt}");
                pipelines.insert((
                    v["pipeline"].as_str().unwrap().to_string(),
                    v["model"].as_str().unwrap().to_string(),
                ));
            } else {
                assert!((0.5..=3.0).contains(&rtt), "{rtt}");
                let seg = v["seg_duration"].as_f64().unwrap();
                assert!((1.9..2.1).contains(&seg), "{seg}");
            }
        }
        assert_eq!(pipelines.len(), 12, "6 pipelines × 2 models");
        let success = successes / events.len() as f64;
        assert!(
            (0.85..0.92).contains(&success),
            "mean success_rate {success}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let end = SystemTime::now();
        let options = Options {
            events: 500,
            ..Options::default()
        };
        assert_eq!(generate(&options, end), generate(&options, end));
        let other = Options {
            seed: 2,
            ..options.clone()
        };
        assert_ne!(generate(&options, end), generate(&other, end));
    }

    #[test]
    fn without_ai_regions_or_share_every_event_is_transcoding() {
        let options = Options {
            events: 300,
            ai_share: 0.0,
            ..Options::default()
        };
        assert!(generate(&options, SystemTime::now()).iter().all(|e| !e.3));
        let mut regions = seed_regions();
        regions.ai.clear();
        let mut g = Generator::new(&Options::default(), regions, SystemTime::now()).unwrap();
        while let Some(e) = g.next_event() {
            assert!(!e.ai);
        }
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        for (options, want) in [
            (
                Options {
                    orchestrators: 0,
                    ..Options::default()
                },
                "--orchestrators",
            ),
            (
                Options {
                    hours: 0.0,
                    ..Options::default()
                },
                "--hours",
            ),
            (
                Options {
                    ai_share: 1.5,
                    ..Options::default()
                },
                "--ai-share",
            ),
        ] {
            let got = options.validate().unwrap_err();
            assert!(got.contains(want), "{got}");
        }
        let empty = Regions::default();
        assert!(Generator::new(&Options::default(), empty, SystemTime::now()).is_err());
    }
}
