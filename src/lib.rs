//! CipherStream: one HTTP API to extract practice-management data as NDJSON, JSON,
//! CSV or Parquet, streamed or as encrypted background jobs.

pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod dialect;
pub mod export;
pub mod http;
pub mod jobs;
pub mod meta;
pub mod source;
pub mod storage;
pub mod tenancy;
pub mod value;
pub mod webhooks;

pub use app::Application;
pub use config::Config;
