//! What Kitteh does, without HTTP: uploading, finding, serving and deleting
//! images (`images`), making their sizes in the background (`sizes`),
//! readiness and stored gauges (`health`), the shared decode memory
//! budget (`budget`), the installation's identity (`installation`), the serving caches (`cache`),
//! copying between storage backends (`transfer`) and the orphan sweep
//! (`sweep`). Every call returns `service::Error` on failure.

pub mod budget;
pub mod cache;
pub mod error;
pub mod health;
pub mod images;
pub mod installation;
pub mod model;
pub mod moderation;
pub mod rate;
pub mod removals;
pub mod sizes;
pub mod sweep;
pub mod transfer;
pub mod upkeep;
pub mod uploads;

pub use error::{Error, Result};
