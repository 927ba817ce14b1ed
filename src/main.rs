//! The `mnist-flow` command: train, sample, trajectory, path, bench, train-classifier,
//! evaluate, sweep. Errors end the process with one
//! line on stderr and a non-zero exit code.

mod cli;
mod commands;
mod evaluation;
mod sweep;

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .format_target(false)
        .init();
    let cli = cli::Cli::parse();
    if let Err(err) = commands::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
