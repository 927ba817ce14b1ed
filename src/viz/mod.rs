//! Pictures: digit grids, titled panels, the probability-path strip and loss curves, drawn
//! with a built-in bitmap font and encoded as PNG without any system library.

pub mod animation;
pub mod canvas;
pub mod font;
pub mod grid;
pub mod plot;

pub use canvas::Canvas;
pub use grid::{grid, panels, Panel};
pub use plot::{Chart, Series};
