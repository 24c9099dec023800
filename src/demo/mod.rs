//! The reference practice schema and its deterministic synthetic data generator.

pub mod generate;
pub mod schema;

pub use generate::{generate, GenerateOptions, GenerateReport};
