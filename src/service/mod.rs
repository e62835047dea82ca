pub mod cache;
pub mod images;
pub mod variants;
