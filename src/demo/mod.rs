//! The reference practice schema and its deterministic synthetic data generator.

mod bank;
mod billing;
mod booking;
mod calendar;
mod catalogue;
mod clinical;
mod clock;
mod encode;
mod expenses;
mod fake;
pub mod generate;
mod history;
mod items;
mod ledger;
mod names;
mod people;
mod plans;
mod practice;
mod refdata;
pub mod schema;
mod setup;
mod tables;
mod writer;

#[cfg(test)]
mod tests;

pub use generate::{generate, GenerateOptions, GenerateReport};
