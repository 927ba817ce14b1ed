//! The integration suite, one test binary: data files, training and checkpoints, and the
//! command line end to end. Everything runs offline on tiny synthetic data.

mod arguments;
mod cli;
mod data_files;
mod evaluation;
mod fixtures;
mod interop;
mod interrupts;
mod output_paths;
mod robustness;
mod training;
