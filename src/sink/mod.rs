//! Outputs for recognition results: files and pictures people read or look at.

pub mod plot;
pub mod records;
