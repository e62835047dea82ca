pub mod cache;
pub mod images;
pub mod transfer;
pub mod variants;
