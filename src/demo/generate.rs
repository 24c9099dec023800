//! Deterministic synthetic practice data.

use chrono::NaiveDate;

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// `sqlite://path` (created if missing), `mysql://…` or `postgres://…`.
    pub target_url: String,
    /// Number of patients; every other table scales from it.
    pub patients: u32,
    /// Seed of the random generator: the same seed, size and `as_of` give the same rows.
    pub seed: u64,
    /// The practice's "today": history lies before it, booked appointments after it.
    pub as_of: NaiveDate,
}

/// Row counts per table and the time taken.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub tables: Vec<(String, u64)>,
    pub elapsed: std::time::Duration,
}

/// Creates the practice schema in the target and fills it.
pub async fn generate(_opts: GenerateOptions) -> anyhow::Result<GenerateReport> {
    anyhow::bail!("demo generator not built yet")
}
