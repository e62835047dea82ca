pub mod images;
pub mod variant_jobs;
pub mod variants;
