#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration-test binary (one link step): every module below runs the
//! real `kitteh` binary against real databases and a real HTTP server.

mod assets;
mod bad_input;
mod browser;
mod cache;
mod claims;
mod cli;
mod config;
mod dedup;
mod docs;
mod edge;
mod expiry;
mod fixtures;
mod forgery;
mod framing;
mod helpers;
mod hostile;
mod jobs;
mod listings;
mod logs;
mod migrations;
mod moderation;
mod operations;
mod plans;
mod previews;
mod races;
mod reports;
mod resize_jobs;
mod s3;
mod safety;
mod serve;
mod sharing;
mod storage;
mod uploads;
mod variants;
