pub mod images;
pub mod variants;
