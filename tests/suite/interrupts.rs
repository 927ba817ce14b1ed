//! Killing `train` anywhere loses nothing: SIGKILL at random moments (checkpoint writes
//! included) and resuming reaches the weights of an uninterrupted run bit for bit, and
//! SIGTERM and SIGINT save and exit cleanly.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use mnist_flow::train::trainer::CHECKPOINT;
use mnist_flow::train::Checkpoint;
use rand::{Rng, SeedableRng};

use crate::fixtures::{synthetic, write_dataset};

const STEPS: &str = "100";

/// `train` of a small run that checkpoints after every step, so that many kills land in or
/// near a checkpoint write.
fn start(data: &Path, run: &Path, resume: bool) -> Child {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--steps",
        STEPS,
        "--sample-steps",
        "1",
    ];
    if resume {
        args.push("--resume");
    } else {
        args.extend([
            "--batch-size",
            "8",
            "--eval-every",
            "7",
            "--eval-images",
            "8",
            "--checkpoint-every",
            "1",
        ]);
    }
    Command::new(env!("CARGO_BIN_EXE_mnist-flow"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Every parameter of the raw and the EMA weights of a finished run's checkpoint, in order.
fn state(run: &Path) -> Vec<f32> {
    struct Values(Vec<f32>);
    impl ModuleVisitor for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().try_into_vec_as::<f32>().unwrap());
        }
    }
    let device = Device::default();
    let checkpoint = Checkpoint::load(&run.join(CHECKPOINT)).unwrap();
    assert_eq!(checkpoint.header.step, STEPS.parse::<u64>().unwrap());
    let mut values = Values(Vec::new());
    for section in ["model", "ema"] {
        checkpoint
            .model(section, &device)
            .unwrap()
            .visit(&mut values);
    }
    values.0
}

/// `step,train_loss` of each logged step. (The held-out loss is also logged at the step where
/// a run stops, so it depends on where the run was interrupted.)
fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("loss.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn a_run_killed_at_random_moments_resumes_to_the_uninterrupted_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, &synthetic(24));

    let straight = tmp.path().join("straight");
    let started = Instant::now();
    let out = start(&data, &straight, false).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full = started.elapsed();

    let killed = tmp.path().join("killed");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let total: f64 = STEPS.parse().unwrap();
    let (mut attempts, mut kills, mut with_checkpoint) = (0, 0, 0);
    loop {
        let done = match Checkpoint::load(&killed.join(CHECKPOINT)) {
            Ok(checkpoint) => Some(checkpoint.header.step as f64),
            Err(_) => None,
        };
        let mut child = start(&data, &killed, done.is_some());
        if attempts < 10 {
            attempts += 1;
            // Anywhere in the first 60 % of what is left of the run (start-up included), so
            // that nearly every kill lands before the run ends by itself.
            let left = 1.0 - done.unwrap_or(0.0) / total;
            let wait = rng.random_range(0.02..0.6) * left * full.as_secs_f64();
            std::thread::sleep(Duration::from_secs_f64(wait));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                if killed.join(CHECKPOINT).exists() {
                    with_checkpoint += 1;
                    Checkpoint::load(&killed.join(CHECKPOINT)).unwrap_or_else(|e| {
                        panic!("a kill left an unreadable checkpoint after {kills} kills: {e}")
                    });
                }
                continue;
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        break;
    }
    eprintln!("{kills} kills landed, {with_checkpoint} of them after the first checkpoint");
    assert!(
        kills >= 8,
        "only {kills} of 10 kills landed before the run ended"
    );
    assert!(
        with_checkpoint >= 2,
        "only {with_checkpoint} kills left a checkpoint"
    );
    let (a, b) = (state(&killed), state(&straight));
    assert_eq!(a.len(), b.len());
    let differing = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert_eq!(
        differing,
        0,
        "after {kills} kills {differing} of {} parameters differ from the uninterrupted run",
        a.len()
    );
    assert_eq!(losses(&killed), losses(&straight));
}

#[test]
fn sigterm_and_sigint_save_and_exit_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, &synthetic(24));
    for name in ["TERM", "INT"] {
        let run = tmp.path().join(name);
        let child = start(&data, &run, false);
        // Wait for the first checkpoint, so that the signal arrives while training.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !run.join(CHECKPOINT).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(&child, name);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "SIG{name}: {stderr}");
        assert!(
            stderr.contains("interrupted at step"),
            "SIG{name}: {stderr}"
        );
        let checkpoint = Checkpoint::load(&run.join(CHECKPOINT)).unwrap();
        assert!(checkpoint.header.step < STEPS.parse::<u64>().unwrap());
        assert!(run.join("weights.mfc").is_file());
    }
}
