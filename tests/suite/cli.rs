//! The `mnist-flow` command end to end on tiny synthetic IDX files, and its refusals.

use std::path::Path;
use std::process::{Command, Output};

use mnist_flow::data::idx::{parse, read_bytes, IMAGES_MAGIC, LABELS_MAGIC};

use crate::fixtures::{synthetic, write_dataset};

fn mnist_flow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mnist-flow"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn train_tiny(data: &Path, run: &Path, steps: &str) -> Output {
    mnist_flow(&[
        "train",
        "--preset",
        "small",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--steps",
        steps,
        "--batch-size",
        "8",
        "--eval-every",
        "2",
        "--eval-images",
        "8",
        "--checkpoint-every",
        "2",
        "--sample-steps",
        "2",
    ])
}

#[test]
fn train_then_sample_leaves_files_that_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run, out) = (
        tmp.path().join("data"),
        tmp.path().join("run"),
        tmp.path().join("s"),
    );
    write_dataset(&data, &synthetic(20));

    let trained = train_tiny(&data, &run, "3");
    assert!(
        trained.status.success(),
        "train failed: {}",
        stderr(&trained)
    );
    for file in [
        "checkpoint.mfc",
        "weights.mfc",
        "config.json",
        "loss.csv",
        "loss.png",
        "samples.png",
    ] {
        assert!(run.join(file).is_file(), "{file} missing after training");
    }
    let log = std::fs::read_to_string(run.join("loss.csv")).unwrap();
    assert_eq!(log.lines().count(), 4, "header and three steps: {log}");
    assert!(log
        .lines()
        .nth(2)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .parse::<f64>()
        .is_ok());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["preset"], "small");

    let resumed = train_tiny(&data, &run, "4");
    assert!(
        stderr(&resumed).contains("already holds a checkpoint"),
        "{}",
        stderr(&resumed)
    );
    let mut args: Vec<&str> = vec![
        "train",
        "--resume",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--steps",
        "5",
        "--sample-steps",
        "1",
        "--batch-size",
        "4",
    ];
    let refused = mnist_flow(&args);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--batch-size cannot change on --resume"),
        "{}",
        stderr(&refused)
    );
    args.truncate(args.len() - 2);
    args.extend(["--lr-schedule", "cosine"]);
    let resumed = mnist_flow(&args);
    assert!(
        resumed.status.success(),
        "resume failed: {}",
        stderr(&resumed)
    );
    let log = std::fs::read_to_string(run.join("loss.csv")).unwrap();
    assert_eq!(
        log.lines().count(),
        6,
        "the resumed run adds steps 4 and 5: {log}"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["budget"]["steps"], 5, "the extended budget is saved");
    assert_eq!(config["lr_schedule"], "cosine");
    args.clear();

    let weights = run.join("weights.mfc");
    let sampled = mnist_flow(&[
        "sample",
        "--weights",
        weights.to_str().unwrap(),
        "--labels",
        "0719",
        "--steps",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        sampled.status.success(),
        "sample failed: {}",
        stderr(&sampled)
    );
    let stdout = String::from_utf8_lossy(&sampled.stdout);
    // Guidance applies on [0.3, 1] by default: the step at t = 0 is a single conditional pass,
    // the steps at 1/3 and 2/3 are guided (two halves each).
    assert!(
        stdout.contains("NFE 3") && stdout.contains("network passes 5"),
        "{stdout}"
    );
    let images = read_bytes(&out.join("images-idx3-ubyte")).unwrap();
    let images = parse(&images, IMAGES_MAGIC, Path::new("images")).unwrap();
    assert_eq!(images.dims, vec![4, 28, 28]);
    let labels = read_bytes(&out.join("labels-idx1-ubyte")).unwrap();
    assert_eq!(
        parse(&labels, LABELS_MAGIC, Path::new("labels"))
            .unwrap()
            .data,
        vec![0, 7, 1, 9]
    );
    assert!(out.join("samples.png").is_file());

    let panels = mnist_flow(&[
        "sample",
        "--weights",
        weights.to_str().unwrap(),
        "--per-class",
        "1",
        "--steps",
        "2",
        "--guidance",
        "1,3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        panels.status.success(),
        "guidance figure failed: {}",
        stderr(&panels)
    );
    assert!(out.join("guidance.png").is_file());
    assert!(out.join("w3-images-idx3-ubyte").is_file());

    let solvers = mnist_flow(&[
        "sample",
        "--weights",
        weights.to_str().unwrap(),
        "--labels",
        "05",
        "--nfe",
        "4",
        "--solver",
        "euler,heun,rk4",
        "--time-grid",
        "dense-end",
        "--guidance-interval",
        "0.2,1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        solvers.status.success(),
        "solver panels failed: {}",
        stderr(&solvers)
    );
    let stdout = String::from_utf8_lossy(&solvers.stdout);
    for needle in [
        "euler 4 steps",
        "heun 2 steps",
        "rk4 1 steps",
        "NFE 4 per batch",
    ] {
        assert!(stdout.contains(needle), "missing '{needle}' in {stdout}");
    }
    assert!(out.join("solvers.png").is_file() && out.join("rk4-images-idx3-ubyte").is_file());

    let traj = tmp.path().join("traj");
    let animated = mnist_flow(&[
        "trajectory",
        "--weights",
        weights.to_str().unwrap(),
        "--labels",
        "38",
        "--steps",
        "3",
        "--solver",
        "midpoint",
        "--out",
        traj.to_str().unwrap(),
    ]);
    assert!(
        animated.status.success(),
        "trajectory failed: {}",
        stderr(&animated)
    );
    let gif = std::fs::read(traj.join("trajectory.gif")).unwrap();
    assert!(gif.starts_with(b"GIF89a"));
    assert!(traj.join("trajectory.png").is_file());
}

#[test]
fn the_path_strip_is_drawn() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, &synthetic(3));
    let png = tmp.path().join("path.png");
    let out = mnist_flow(&[
        "path",
        "--data",
        data.to_str().unwrap(),
        "--index",
        "2",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(png.is_file());
}

#[test]
fn bad_arguments_exit_non_zero_with_a_clear_message() {
    let cases: [(&[&str], &str); 12] = [
        (&["sample", "--solver", "leapfrog"], "leapfrog"),
        (&["sample", "--guidance-interval", "0.8,0.2"], "interval"),
        (&["sample", "--time-grid", "log"], "log"),
        (&["sample", "--steps", "10", "--nfe", "10"], "--nfe"),
        (&["train", "--steps", "-5"], "-5"),
        (&["train", "--steps", "0"], "0"),
        (&["train", "--label-dropout", "1.5"], "[0, 1)"),
        (&["sample", "--labels", "12a"], "digits 0-9"),
        (&["sample", "--guidance", "1,x"], "guidance scales"),
        (
            &["sample", "--weights", "/nonexistent/w.mfc"],
            "/nonexistent/w.mfc",
        ),
        (
            &["train", "--data", "/nonexistent/data"],
            "/nonexistent/data",
        ),
        (&["train", "--preset", "huge"], "huge"),
    ];
    for (args, needle) in cases {
        let out = mnist_flow(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            err.contains(needle),
            "{args:?}: message should mention '{needle}': {err}"
        );
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn label_twelve_is_refused() {
    let out = mnist_flow(&["sample", "--labels", "3,12"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("label 12 is outside the classes 0-9"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_corrupt_weights_file_is_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.mfc");
    std::fs::write(&bad, b"MNFLOWCK\x01\0\0\0garbage").unwrap();
    let out = mnist_flow(&[
        "sample",
        "--weights",
        bad.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.mfc") && err.lines().count() == 1, "{err}");
    assert!(!tmp.path().join("o").join("samples.png").exists());
}

#[test]
fn kept_weights_are_those_of_a_run_stopped_there() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, &synthetic(20));
    let (long, short) = (tmp.path().join("long"), tmp.path().join("short"));
    let quick = |out: &Path, steps: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", text(&data), "--out", text(out)];
        args.extend(["--steps", steps, "--batch-size", "4", "--eval-images", "4"]);
        args.extend(["--sample-steps", "1"]);
        args.extend(extra);
        let done = mnist_flow(&args);
        assert!(done.status.success(), "{}", stderr(&done));
    };
    quick(&long, "4", &["--keep-every", "2"]);
    quick(&short, "2", &[]);

    let device = burn::tensor::Device::default();
    // The network's velocity on a fixed input stands for its weights.
    let velocity = |path: &Path| -> Vec<f32> {
        let checkpoint = mnist_flow::train::Checkpoint::load(path).unwrap();
        let model = checkpoint.model("ema", &device).unwrap();
        let probe = mnist_flow::model::interop::Probe::of(&model, &device);
        probe.v.val().into_data().try_to_vec().unwrap()
    };
    let same = |a: &str, b: &Path| velocity(&long.join(a)) == velocity(b);
    assert!(same("weights-step2.mfc", &short.join("weights.mfc")));
    assert!(same("weights-step4.mfc", &long.join("weights.mfc")));
    assert!(!same("weights-step2.mfc", &long.join("weights-step4.mfc")));

    let out = mnist_flow(&[
        "train",
        "--data",
        text(&data),
        "--minutes",
        "1",
        "--keep-every",
        "2",
    ]);
    assert!(!out.status.success());
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn the_notebook_network_imports_into_a_file_that_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let pth =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notebook/notebook-tiny.pth");
    let weights = tmp.path().join("notebook.mfc");
    let out = mnist_flow(&[
        "import",
        "--pth",
        pth.to_str().unwrap(),
        "--out",
        weights.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = mnist_flow(&[
        "sample",
        "--weights",
        weights.to_str().unwrap(),
        "--labels",
        "07",
        "--steps",
        "2",
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tmp.path().join("o").join("samples.png").is_file());

    let out = mnist_flow(&[
        "import",
        "--pth",
        "/nonexistent/notebook.pth",
        "--out",
        weights.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

#[test]
fn the_shipped_weights_sample_without_any_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("s");
    let out = mnist_flow(&[
        "sample",
        "--labels",
        "07",
        "--steps",
        "3",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Guidance applies on [0.3, 1] by default: the step at t = 0 is a single conditional pass,
    // the steps at 1/3 and 2/3 are guided (two halves each).
    assert!(
        stdout.contains("NFE 3") && stdout.contains("network passes 5"),
        "{stdout}"
    );
    let labels = read_bytes(&out_dir.join("labels-idx1-ubyte")).unwrap();
    let labels = parse(&labels, LABELS_MAGIC, Path::new("labels")).unwrap();
    assert_eq!(labels.data, vec![0, 7]);
    let images = read_bytes(&out_dir.join("images-idx3-ubyte")).unwrap();
    let images = parse(&images, IMAGES_MAGIC, Path::new("images")).unwrap();
    assert_eq!(images.dims, vec![2, 28, 28]);
    assert!(out_dir.join("samples.png").is_file());
}

#[test]
fn a_sweep_writes_its_points_and_plots_and_a_rerun_skips_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let cache = tmp.path().join("cache");
    let run = || {
        mnist_flow(&[
            "sweep",
            "--solvers",
            "euler",
            "--nfe",
            "2",
            "--guidance",
            "1,3",
            "--plot-nfe",
            "2",
            "--plot-guidance",
            "3",
            "--per-class",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
        ])
    };
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // w = 1 is the plain conditional velocity: one pass an evaluation instead of two.
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[1].starts_with("euler,2,2,2,2,1,20,"), "{csv}");
    // At w = 3 the step at t = 0 lies before the default guidance interval [0.3, 1].
    assert!(rows[2].starts_with("euler,2,2,2,3,3,20,"), "{csv}");
    assert!(rows[2].ends_with(",0.3-1"), "{csv}");
    for plot in [
        "fid-vs-guidance.png",
        "accuracy-vs-guidance.png",
        "fid-vs-nfe.png",
    ] {
        assert!(out.join(plot).is_file(), "{plot}");
    }

    let again = run();
    assert!(again.status.success(), "{}", stderr(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(!stdout.contains("euler,2,"), "points were redone: {stdout}");
    assert_eq!(std::fs::read_to_string(out.join("sweep.csv")).unwrap(), csv);
}

#[test]
fn samples_of_other_data_need_a_classifier_trained_on_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, &synthetic(20));
    let out = mnist_flow(&["evaluate", "--data", data.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("trained on 'mnist'") && err.contains("train-classifier --data"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
