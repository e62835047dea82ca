pub mod images;
pub mod installation;
pub mod variant_jobs;
pub mod variants;
