//! Command-line settings, checked where they enter: every value is parsed and range-checked
//! by clap before any work starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use mnist_flow::sample::{DEFAULT_GUIDANCE, DEFAULT_SOLVER, DEFAULT_STEPS};

/// Class-conditional flow matching on MNIST-format digits.
#[derive(Debug, Parser)]
#[command(name = "mnist-flow", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Compute device: flex (CPU), wgpu or cuda (the last two need the cargo feature).
    #[arg(long, global = true, default_value = "flex", value_parser = ["flex", "wgpu", "cuda"])]
    pub device: String,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model and leave a run directory.
    Train(TrainArgs),
    /// Draw samples from weights or a checkpoint.
    Sample(SampleArgs),
    /// Animate a batch of digits forming from noise (GIF and PNG strip).
    Trajectory(TrajectoryArgs),
    /// Draw the probability path of one training image from noise to data.
    Path(PathArgs),
    /// Print training and sampling throughput.
    Bench(BenchArgs),
    /// Train the evaluator's digit classifier.
    TrainClassifier(TrainClassifierArgs),
    /// Score samples: class accuracy, FID, precision/recall, memorisation.
    Evaluate(EvaluateArgs),
    /// Evaluate over a grid of solvers, NFE budgets and guidance scales; CSV and plots.
    Sweep(SweepArgs),
    /// Write weights as safetensors for PyTorch, with the configuration in the metadata.
    Export(ExportArgs),
    /// Read the notebook's PyTorch weights (.pth) into a `reference` network and write them
    /// as an mnist-flow weights file.
    Import(ImportArgs),
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The notebook network's `state_dict`, as `torch.save` wrote it.
    #[arg(long)]
    pub pth: PathBuf,
    /// The entry holding the `state_dict`, when the file is a dictionary of several things
    /// (e.g. `model_state_dict`).
    #[arg(long)]
    pub key: Option<String>,
    /// The weights file to write (`sample --weights` and the other commands read it).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write a fixed input and the network's velocity there (safetensors: x, t, y, v).
    #[arg(long)]
    pub probe: Option<PathBuf>,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Weights or checkpoint file (default: the shipped weights).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Export the raw weights of a checkpoint instead of its EMA.
    #[arg(long)]
    pub raw: bool,
    /// The safetensors file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write a fixed input and the network's velocity there (safetensors: x, t, y, v),
    /// to check another implementation against.
    #[arg(long)]
    pub probe: Option<PathBuf>,
}

/// `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model preset: small (default), medium, full16, full24, full32 or reference.
    #[arg(long, default_value = "small", value_parser = ["small", "medium", "full16", "full24", "full32", "reference"])]
    pub preset: String,
    /// Stop after this many optimiser steps in all (default 7000: about 10 minutes for the
    /// default preset on 2 CPU cores).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "minutes", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Stop after this many minutes of training instead.
    #[arg(long, allow_negative_numbers = true, value_parser = positive_f64)]
    pub minutes: Option<f64>,
    /// Images per step.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub batch_size: Option<u64>,
    /// Peak learning rate.
    #[arg(long, allow_negative_numbers = true, value_parser = positive_f64)]
    pub lr: Option<f64>,
    /// Learning rate after the warm-up: constant (default) or cosine (down to a tenth of the
    /// peak at the last step of a --steps budget).
    #[arg(long, value_parser = ["constant", "cosine"])]
    pub lr_schedule: Option<String>,
    /// Training times: uniform (default) or logit-normal (t = sigmoid(n), n ~ N(0, 1): more
    /// of them mid-path).
    #[arg(long, value_parser = ["uniform", "logit-normal"])]
    pub time_sampling: Option<String>,
    /// Probability of dropping a label, in [0, 1).
    #[arg(long, allow_negative_numbers = true, value_parser = unit_interval)]
    pub label_dropout: Option<f64>,
    /// Target EMA decay, in [0, 1).
    #[arg(long, allow_negative_numbers = true, value_parser = unit_interval)]
    pub ema_decay: Option<f64>,
    /// Seed of everything random.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Held-out loss every N steps.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub eval_every: Option<u64>,
    /// Test images in the held-out subset.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub eval_images: Option<u64>,
    /// Checkpoint every N steps.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Also keep the weights every N steps as weights-step<N>.mfc (step budgets only), to
    /// evaluate how quality grows with training.
    #[arg(long, allow_negative_numbers = true, conflicts_with = "minutes", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_every: Option<u64>,
    /// Directory of MNIST-format IDX files (default: the shipped MNIST).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run directory (default runs/<preset>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in the output directory from its checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Euler steps of the sample sheet drawn at the end.
    #[arg(long, allow_negative_numbers = true, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub sample_steps: u64,
}

/// `sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Weights or checkpoint file (default: the shipped weights).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Use the raw weights of a checkpoint instead of its EMA.
    #[arg(long)]
    pub raw: bool,
    /// Labels to draw: digits (e.g. 0123456789) or a comma-separated list (e.g. 3,1,4).
    #[arg(long, value_parser = digit_string, conflicts_with_all = ["per_class", "count"])]
    pub labels: Option<Labels>,
    /// Samples per class (default 10).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=10000), conflicts_with = "count")]
    pub per_class: Option<u64>,
    /// This many samples with random labels.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=100000))]
    pub count: Option<u64>,
    /// Guidance scale(s), comma-separated; several draw one panel per scale.
    #[arg(long, allow_hyphen_values = true, default_value_t = Scales(vec![DEFAULT_GUIDANCE]), value_parser = guidance_list)]
    pub guidance: Scales,
    #[command(flatten)]
    pub solver: SolverArgs,
    /// Seed of the starting noise and of random labels.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Images per network batch.
    #[arg(long, allow_negative_numbers = true, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub batch_size: u64,
    /// Output directory.
    #[arg(long, default_value = "samples")]
    pub out: PathBuf,
}

/// How to integrate: shared by `sample` and `trajectory`.
#[derive(Debug, Args)]
pub struct SolverArgs {
    /// ODE solver(s), comma-separated: euler, midpoint, heun, rk4, dopri5. Several draw one
    /// panel per solver from the same noise.
    #[arg(long, default_value = DEFAULT_SOLVER, value_delimiter = ',',
          value_parser = ["euler", "midpoint", "heun", "rk4", "dopri5"])]
    pub solver: Vec<String>,
    /// Steps of a fixed-step solver.
    #[arg(long, allow_negative_numbers = true, default_value_t = DEFAULT_STEPS as u64, conflicts_with = "nfe",
          value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub steps: u64,
    /// Evaluations of the guided velocity to spend instead of --steps (fixed-step solvers
    /// take NFE / evaluations-per-step steps; dopri5 takes it as its cap).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=100000))]
    pub nfe: Option<u64>,
    /// Relative tolerance of dopri5.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3, value_parser = positive_f64)]
    pub rtol: f64,
    /// Absolute tolerance of dopri5.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3, value_parser = positive_f64)]
    pub atol: f64,
    /// Evaluation cap of dopri5 (unless --nfe gives one).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(7..=1000000))]
    pub max_nfe: u64,
    /// Apply guidance only for t in [a, b] and the conditional velocity elsewhere (default
    /// 0.3,1; 0,1 guides everywhere).
    #[arg(long, allow_hyphen_values = true, value_parser = interval)]
    pub guidance_interval: Option<(f64, f64)>,
    /// Spacing of the steps: uniform, or dense-end (steps shrink towards t = 1).
    #[arg(long, default_value = "uniform", value_parser = ["uniform", "dense-end"])]
    pub time_grid: String,
}

/// `trajectory`.
#[derive(Debug, Args)]
pub struct TrajectoryArgs {
    /// Weights or checkpoint file (default: the shipped weights).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Labels to draw: digits (e.g. 0123456789) or a comma-separated list.
    #[arg(long, default_value = "0123456789", value_parser = digit_string)]
    pub labels: Labels,
    /// Guidance scale.
    #[arg(long, allow_negative_numbers = true, default_value_t = DEFAULT_GUIDANCE, value_parser = one_scale)]
    pub guidance: f64,
    #[command(flatten)]
    pub solver: SolverArgs,
    /// Seed of the starting noise.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Columns (times) in the PNG strip.
    #[arg(long, allow_negative_numbers = true, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=100))]
    pub columns: u64,
    /// Output directory.
    #[arg(long, default_value = "trajectory")]
    pub out: PathBuf,
}

/// `path`.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// Directory of MNIST-format IDX files (default: the shipped MNIST).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Index of the training image.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub index: usize,
    /// Number of times between 0 and 1 (inclusive).
    #[arg(long, allow_negative_numbers = true, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..=50))]
    pub times: u64,
    /// Seed of the noise.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Output PNG.
    #[arg(long, default_value = "path.png")]
    pub out: PathBuf,
}

/// `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Presets to measure, comma-separated.
    #[arg(long, default_value = "small,reference", value_delimiter = ',',
          value_parser = ["small", "medium", "full16", "full24", "full32", "reference"])]
    pub presets: Vec<String>,
    /// Timed repetitions of each measurement (after one warm-up).
    #[arg(long, allow_negative_numbers = true, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub repeats: u64,
    /// Training batch size.
    #[arg(long, allow_negative_numbers = true, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub train_batch: u64,
    /// Images per sampling batch (each guided step evaluates twice as many rows).
    #[arg(long, allow_negative_numbers = true, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub sample_batch: u64,
    /// Print one JSON object per preset instead (step times in seconds).
    #[arg(long, conflicts_with = "solvers")]
    pub json: bool,
    /// Also measure every solver at NFE 10, 20 and 100 (and dopri5 at two tolerances) with
    /// trained weights.
    #[arg(long)]
    pub solvers: bool,
    /// Weights for --solvers (default: the shipped weights).
    #[arg(long, requires = "solvers")]
    pub weights: Option<PathBuf>,
}

/// `train-classifier`.
#[derive(Debug, Args)]
pub struct TrainClassifierArgs {
    /// Passes over the training set.
    #[arg(long, allow_negative_numbers = true, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub epochs: u64,
    /// Images per step.
    #[arg(long, allow_negative_numbers = true, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub batch_size: u64,
    /// Peak learning rate (warm-up, then cosine decay to zero).
    #[arg(long, allow_negative_numbers = true, default_value_t = 2e-3, value_parser = positive_f64)]
    pub lr: f64,
    /// Largest random shift of the augmentation, in pixels.
    #[arg(long, allow_negative_numbers = true, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=8))]
    pub max_shift: u64,
    /// Seed of weights, order and augmentation.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Directory of MNIST-format IDX files (default: the shipped MNIST).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where to write the classifier.
    #[arg(long, default_value = "weights/classifier.mfcl")]
    pub out: PathBuf,
}

/// `evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Weights or checkpoint to sample from (default: the shipped weights).
    #[arg(long, conflicts_with = "samples")]
    pub weights: Option<PathBuf>,
    /// Score existing samples instead: a directory holding an IDX pair as `sample` writes it.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// File-name prefix of the IDX pair in --samples (e.g. w3- for one scale of a sweep).
    #[arg(long, default_value = "", requires = "samples")]
    pub prefix: String,
    /// The classifier whose features the metrics use.
    #[arg(long, default_value = "weights/classifier.mfcl")]
    pub classifier: PathBuf,
    /// Samples per class to draw when sampling.
    #[arg(long, allow_negative_numbers = true, default_value_t = 100, value_parser = clap::value_parser!(u64).range(2..=10000))]
    pub per_class: u64,
    /// Guidance scale.
    #[arg(long, allow_negative_numbers = true, default_value_t = DEFAULT_GUIDANCE, value_parser = one_scale)]
    pub guidance: f64,
    #[command(flatten)]
    pub solver: SolverArgs,
    /// Seed of the starting noise (and of the real subset behind the floor).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Directory of the MNIST-format dataset the samples imitate (default: the shipped MNIST).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Directory for what does not depend on the samples (test features, thresholds).
    #[arg(long, default_value = "runs/eval-cache")]
    pub cache: PathBuf,
}

/// `sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Weights or checkpoint to sample from (default: the shipped weights).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Solvers, comma-separated (fixed-step ones).
    #[arg(long, default_value = "euler,midpoint,heun,rk4", value_delimiter = ',',
          value_parser = ["euler", "midpoint", "heun", "rk4"])]
    pub solvers: Vec<String>,
    /// Evaluation budgets, comma-separated.
    #[arg(long, allow_negative_numbers = true, default_value = "10,20,50,100", value_delimiter = ',',
          value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub nfe: Vec<u64>,
    /// Guidance scales, comma-separated.
    #[arg(long, allow_hyphen_values = true, default_value = "1,2,3,4,5", value_parser = guidance_list)]
    pub guidance: Scales,
    /// Apply guidance only for t in [a, b] at every point (default 0.3,1; 0,1 guides
    /// everywhere).
    #[arg(long, allow_hyphen_values = true, value_parser = interval)]
    pub guidance_interval: Option<(f64, f64)>,
    /// The scale whose points make the FID-vs-NFE plot (default: the sampler's default scale).
    #[arg(long, allow_negative_numbers = true, default_value_t = DEFAULT_GUIDANCE, value_parser = one_scale)]
    pub plot_guidance: f64,
    /// The NFE whose points make the plots against the guidance scale (default: the default
    /// solver's step count).
    #[arg(long, allow_negative_numbers = true, default_value_t = DEFAULT_STEPS as u64, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub plot_nfe: u64,
    /// Samples per class at each point.
    #[arg(long, allow_negative_numbers = true, default_value_t = 100, value_parser = clap::value_parser!(u64).range(2..=10000))]
    pub per_class: u64,
    /// The classifier whose features the metrics use.
    #[arg(long, default_value = "weights/classifier.mfcl")]
    pub classifier: PathBuf,
    /// Seed of the starting noise (the same at every point).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
    pub seed: u64,
    /// Output directory: sweep.csv and the plots.
    #[arg(long, default_value = "runs/sweep")]
    pub out: PathBuf,
    /// Directory for what does not depend on the samples.
    #[arg(long, default_value = "runs/eval-cache")]
    pub cache: PathBuf,
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(v) => Err(format!("expected a positive number, found {v}")),
        Err(_) => Err(format!("expected a positive number, found '{s}'")),
    }
}

fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a number in [0, 1), found '{s}'")),
    }
}

/// Labels given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels(pub Vec<u8>);

/// Guidance scales given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Scales(pub Vec<f64>);

impl std::fmt::Display for Scales {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|w| w.to_string()).collect();
        write!(f, "{}", parts.join(","))
    }
}

fn digit_string(s: &str) -> Result<Labels, String> {
    if s.trim().is_empty() {
        return Err("expected at least one label".into());
    }
    let label = |part: &str| match part.trim().parse::<i64>() {
        Ok(v) if (0..=9).contains(&v) => Ok(v as u8),
        Ok(v) => Err(format!("label {v} is outside the classes 0-9")),
        Err(_) => Err(format!(
            "expected labels as digits 0-9 (e.g. 0123 or 3,1,4), found '{s}'"
        )),
    };
    let labels = if s.contains(',') {
        s.split(',')
            .map(label)
            .collect::<Result<Vec<u8>, String>>()?
    } else {
        s.chars()
            .map(|c| label(&c.to_string()))
            .collect::<Result<Vec<u8>, String>>()?
    };
    Ok(Labels(labels))
}

fn one_scale(s: &str) -> Result<f64, String> {
    match guidance_list(s)?.0.as_slice() {
        [w] => Ok(*w),
        _ => Err(format!("expected one guidance scale, found '{s}'")),
    }
}

fn interval(s: &str) -> Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split(',').collect();
    let bad = || format!("expected an interval a,b with 0 <= a <= b <= 1, found '{s}'");
    let [a, b] = parts.as_slice() else {
        return Err(bad());
    };
    let (a, b) = (
        a.trim().parse::<f64>().map_err(|_| bad())?,
        b.trim().parse::<f64>().map_err(|_| bad())?,
    );
    if (0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&b) && a <= b {
        Ok((a, b))
    } else {
        Err(bad())
    }
}

fn guidance_list(s: &str) -> Result<Scales, String> {
    let scales = s
        .split(',')
        .map(|part| match part.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && (0.0..=100.0).contains(&v) => Ok(v),
            _ => Err(format!(
                "expected guidance scales in [0, 100] like 1,3,5, found '{part}'"
            )),
        })
        .collect::<Result<Vec<f64>, String>>()?;
    Ok(Scales(scales))
}
