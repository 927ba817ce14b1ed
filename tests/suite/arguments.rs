//! Every command-line value is checked before any work starts: for each flag, a malformed, an
//! out-of-range and a missing value each give one `error:` line naming the flag and a
//! non-zero exit.

use std::process::Command;

/// `(subcommand, flag, bad values)`. An empty value list still tries the missing value.
const TABLE: &[(&str, &str, &[&str])] = &[
    ("train", "--preset", &["tiny"]),
    ("train", "--steps", &["abc", "0", "-5", "1.5"]),
    ("train", "--minutes", &["abc", "0", "-1", "nan", "inf"]),
    ("train", "--batch-size", &["x", "0", "65537"]),
    ("train", "--lr", &["x", "0", "-0.1", "inf"]),
    ("train", "--lr-schedule", &["linear"]),
    ("train", "--label-dropout", &["x", "1", "-0.1", "1.5"]),
    ("train", "--ema-decay", &["x", "1", "-0.5"]),
    ("train", "--seed", &["x", "-1"]),
    ("train", "--device", &["tpu"]),
    ("train", "--eval-every", &["x", "0"]),
    ("train", "--eval-images", &["x", "0", "10001"]),
    ("train", "--checkpoint-every", &["x", "0"]),
    ("train", "--keep-every", &["x", "0", "-3"]),
    ("train", "--sample-steps", &["x", "0", "10001"]),
    ("train", "--data", &[]),
    ("train", "--out", &[]),
    ("sample", "--labels", &["", "12a", "3,10", "3,,4"]),
    ("sample", "--per-class", &["x", "0", "10001"]),
    ("sample", "--count", &["x", "0"]),
    ("sample", "--guidance", &["x", "-1", "-1,2", "1,,2", "nan"]),
    ("sample", "--solver", &["leapfrog"]),
    ("sample", "--steps", &["x", "0", "10001"]),
    ("sample", "--nfe", &["x", "0"]),
    ("sample", "--rtol", &["x", "0", "-1"]),
    ("sample", "--atol", &["x", "0"]),
    ("sample", "--max-nfe", &["x", "6"]),
    (
        "sample",
        "--guidance-interval",
        &["x", "0.5", "0.8,0.2", "-0.1,1", "0,1.5"],
    ),
    ("sample", "--time-grid", &["log"]),
    ("sample", "--batch-size", &["x", "0"]),
    ("sample", "--weights", &[]),
    ("sample", "--out", &[]),
    ("trajectory", "--labels", &["x"]),
    ("trajectory", "--guidance", &["x", "-2", "1,3"]),
    ("trajectory", "--columns", &["x", "1", "101"]),
    ("path", "--index", &["x", "-1"]),
    ("path", "--times", &["x", "1", "51"]),
    ("bench", "--presets", &["huge"]),
    ("bench", "--repeats", &["x", "0", "1001"]),
    ("bench", "--train-batch", &["x", "0"]),
    ("bench", "--sample-batch", &["x", "0"]),
    ("train-classifier", "--epochs", &["x", "0", "1001"]),
    ("train-classifier", "--batch-size", &["x", "0"]),
    ("train-classifier", "--lr", &["x", "0"]),
    ("train-classifier", "--max-shift", &["x", "9"]),
    ("evaluate", "--per-class", &["x", "1", "10001"]),
    ("evaluate", "--guidance", &["x", "-1"]),
    ("evaluate", "--classifier", &[]),
    ("evaluate", "--samples", &[]),
    ("evaluate", "--cache", &[]),
    ("sweep", "--solvers", &["dopri5", "x"]),
    ("sweep", "--nfe", &["x", "0", "10001"]),
    ("sweep", "--guidance", &["x", "-1", "2,-3"]),
    ("sweep", "--guidance-interval", &["1,0"]),
    ("sweep", "--plot-guidance", &["x", "-1"]),
    ("sweep", "--plot-nfe", &["x", "0"]),
    ("sweep", "--per-class", &["x", "1"]),
    ("export", "--out", &[]),
    ("export", "--probe", &[]),
    ("import", "--pth", &[]),
    ("import", "--key", &[]),
    ("import", "--out", &[]),
    ("import", "--probe", &[]),
];

fn refuses(args: &[&str], flag: &str) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_mnist-flow"))
        .args(args)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or("");
    if out.status.success() {
        return Err(format!("{args:?} was accepted"));
    }
    if !first.starts_with("error:") || !first.contains(flag) {
        return Err(format!(
            "{args:?}: the first line does not name {flag}: {first}"
        ));
    }
    if !out.stdout.is_empty() {
        return Err(format!("{args:?} printed to stdout before failing"));
    }
    Ok(())
}

#[test]
fn every_flag_refuses_malformed_out_of_range_and_missing_values() {
    let mut failures = Vec::new();
    let mut tried = 0;
    for &(command, flag, values) in TABLE {
        for value in values {
            tried += 1;
            if let Err(e) = refuses(&[command, flag, value], flag) {
                failures.push(e);
            }
        }
        tried += 1;
        if let Err(e) = refuses(&[command, flag], flag) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {tried} bad values got through:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
