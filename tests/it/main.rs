//! Integration tests: the real server over HTTP against real SQLite, MariaDB and
//! PostgreSQL practice databases.

mod advanced;
mod api;
mod bad_input;
mod cli;
mod custom_catalog;
mod decrypt;
mod extraction;
mod helpers;
mod jobs;
mod receiver;
mod schedules;
mod schemathesis;
mod security;
mod webhook_examples;
mod webhook_reliability;
mod webhooks;
