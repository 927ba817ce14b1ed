//! The `mnist-flow` command: train, sample, trajectory, path, bench, train-classifier,
//! evaluate, sweep, export, import. Errors end the process with one
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
        eprintln!("error: {}", one_line(&err));
        std::process::exit(1);
    }
}

/// The error and its causes on one line, leaving out a cause the message already quotes.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line = format!("{line}: {cause}");
        }
    }
    line
}
