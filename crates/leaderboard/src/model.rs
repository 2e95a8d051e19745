//! The serde types of the contract.

use serde::Serialize;

/// A region as `/api/regions` lists it; a region with two job types is two of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    /// The row's `regions.id`, which events reference.
    #[serde(skip)]
    pub key: i32,
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Regions<'a> {
    pub regions: &'a [Region],
}

/// One pipeline of `/api/pipelines`: its models and regions, distinct and sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pipeline {
    pub id: String,
    pub models: Vec<String>,
    pub regions: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pipelines {
    pub pipelines: Vec<Pipeline>,
}

/// The answer of `/api/top_ai_score`, fields in the order the Explorer's example shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopAiScore {
    pub region: String,
    pub orchestrator: String,
    pub value: f64,
    pub model: String,
    pub pipeline: String,
}

/// `/api/aggregated_stats`: orchestrator → region → scores, keys sorted.
pub type Leaderboard =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, crate::score::Score>>;

/// One bucket of `/api/score_history`: its start (Unix seconds), how many scored tests it
/// holds, and its scores as `/api/aggregated_stats` gives them for that bucket alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub t: i64,
    pub tests: i64,
    pub success_rate: f64,
    pub round_trip_score: f64,
    pub score: f64,
}

/// `/api/score_history`: orchestrator → region → points in time order, keys sorted.
pub type ScoreHistory =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<Point>>>;
