//! Kitteh: upload a picture, get a memorable name, served fast.

pub mod app;
pub mod assets;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod imaging;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod pages;
pub mod routes;
pub mod service;
pub mod storage;
