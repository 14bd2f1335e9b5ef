//! Views of a call: the half-block renderer, the ratatui call screen, and the
//! headless JSON-lines view.

pub mod app;
pub mod halfblock;
pub mod headless;
pub mod video;
pub mod view;
