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
