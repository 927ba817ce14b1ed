//! # mnist-flow
//!
//! Class-conditional flow matching on MNIST-format digits, sampled with classifier-free
//! guidance. The data flows one way:
//!
//! - training: [`data`] → [`path`] (CondOT) → [`model`] (U-Net velocity field) → [`train`];
//! - sampling: noise → [`solver`] integrating [`guidance`] over the model → images, drawn by
//!   [`viz`].

#![warn(missing_docs)]

pub mod atomic;
pub mod data;
pub mod eval;
pub mod guidance;
pub mod model;
pub mod path;
pub mod record;
pub mod sample;
pub mod seed;
pub mod solver;
pub mod train;
pub mod viz;
