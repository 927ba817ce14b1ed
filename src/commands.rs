//! What each subcommand does, over the library.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};

use mnist_flow::data::dataset::{self, to_byte};
use mnist_flow::data::idx::{self, IMAGES_MAGIC, LABELS_MAGIC};
use mnist_flow::data::sampler::SamplerState;
use mnist_flow::data::{Dataset, Split};
use mnist_flow::eval::fit::{fit, FitSettings};
use mnist_flow::eval::weights as classifier_weights;
use mnist_flow::eval::ClassifierConfig;
use mnist_flow::model::{interop, trainable_params, UNet, UNetConfig};
use mnist_flow::path::CondOtPath;
use mnist_flow::sample::{sample, SampleSettings, Samples, DEFAULT_GUIDANCE, DEFAULT_INTERVAL};
use mnist_flow::solver::{Solver, TimeGrid};
use mnist_flow::train::trainer::{read_log, CHECKPOINT};
use mnist_flow::train::{
    Budget, Checkpoint, LrSchedule, Outcome, TimeSampling, TrainConfig, Trainer,
};
use mnist_flow::viz::{self, Chart, Panel, Series};

use crate::cli::{
    BenchArgs, Cli, Command, ExportArgs, ImportArgs, PathArgs, SampleArgs, SolverArgs, TrainArgs,
    TrainClassifierArgs, TrajectoryArgs,
};

/// Weights shipped with the repository.
pub const SHIPPED_WEIGHTS: &str = "weights/shipped.mfc";

pub fn run(cli: Cli) -> Result<()> {
    let device = device(&cli.device)?;
    match cli.command {
        Command::Train(args) => train(args, &device),
        Command::Sample(args) => sample_command(args, &device),
        Command::Trajectory(args) => trajectory(args, &device),
        Command::Path(args) => path_strip(args, &device),
        Command::Bench(args) => bench(args, &device),
        Command::TrainClassifier(args) => train_classifier(args, &device),
        Command::Evaluate(args) => crate::evaluation::evaluate(args, &device),
        Command::Sweep(args) => crate::sweep::sweep(args, &device),
        Command::Export(args) => export(args, &device),
        Command::Import(args) => import(args, &device),
    }
}

fn device(name: &str) -> Result<Device> {
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        other => bail!(
            "device '{other}' is not compiled in: rebuild with `--features {other}` \
             (this build has: {})",
            compiled_devices()
        ),
    }
}

fn compiled_devices() -> String {
    let all = [
        ("flex", cfg!(feature = "flex")),
        ("wgpu", cfg!(feature = "wgpu")),
        ("cuda", cfg!(feature = "cuda")),
    ];
    all.iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shipped MNIST directory.
fn default_data_dir() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    if beside.is_dir() {
        beside
    } else {
        PathBuf::from("data/mnist")
    }
}

/// Opens a split, verifying checksums: the built-in MNIST digests for the default
/// directory, a `SHA256SUMS` file for any other directory that has one.
pub(crate) fn open_split(data: Option<&Path>, split: Split) -> Result<Dataset> {
    let (dir, digests): (PathBuf, Option<HashMap<String, String>>) = match data {
        None => (default_data_dir(), Some(dataset::mnist_digests())),
        Some(dir) => (dir.to_path_buf(), dataset::digests_in(dir)),
    };
    if !dir.is_dir() {
        bail!("data directory {} does not exist", dir.display());
    }
    Ok(Dataset::open(&dir, split, digests.as_ref())?)
}

fn train(args: TrainArgs, device: &Device) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.preset));
    let train = open_split(args.data.as_deref(), Split::Train)?;
    let test = open_split(args.data.as_deref(), Split::Test)?;

    let mut trainer = if args.resume {
        refuse_fixed_settings(&args)?;
        let mut trainer = Trainer::resume(&train, &test, &out, device)
            .with_context(|| format!("cannot resume from {}", out.join(CHECKPOINT).display()))?;
        let budget = match (args.steps, args.minutes) {
            (Some(n), _) => Budget::Steps(n),
            (None, Some(m)) => Budget::Minutes(m),
            (None, None) => trainer.config().budget,
        };
        trainer.extend(budget, args.lr_schedule.as_deref().map(lr_schedule));
        trainer
    } else {
        if out.join(CHECKPOINT).exists() {
            bail!(
                "{} already holds a checkpoint: pass --resume to continue it, or choose --out",
                out.display()
            );
        }
        let config = train_config(&args)?;
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create run directory {}", out.display()))?;
        Trainer::new(config, &train, &test, &out, device)?
    };
    let budget = trainer.config().budget;
    let json = serde_json::to_string_pretty(trainer.config())?;
    mnist_flow::atomic::write(&out.join("config.json"), json.as_bytes())?;

    let params = trainable_params(&trainer.ema().clone());
    log::info!(
        "training '{}' ({params} parameters) on {} images into {} with budget {budget:?}",
        trainer.config().preset,
        train.len(),
        out.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the handler for Ctrl-C and SIGTERM")?;

    let outcome = match args.keep_every {
        None => run_with_progress(&mut trainer, budget, None, &stop)?,
        Some(every) => run_keeping_weights(&mut trainer, budget, every, &stop, &out)?,
    };
    write_weights(&trainer, &out.join("weights.mfc"))?;
    plot_losses(&out)?;
    if outcome == Outcome::Interrupted {
        log::info!(
            "interrupted at step {}: checkpoint saved; resume with --resume",
            trainer.step()
        );
        return Ok(());
    }

    let settings = SampleSettings {
        steps: args.sample_steps as usize,
        ..Default::default()
    };
    let labels: Vec<u8> = (0..100).map(|i| (i % 10) as u8).collect();
    let samples = sample(trainer.ema(), &labels, &settings, device)?;
    viz::grid(&samples.images, 28, 10, 2).save_png(&out.join("samples.png"))?;
    log::info!(
        "finished at step {}; wrote {}",
        trainer.step(),
        out.display()
    );
    Ok(())
}

fn lr_schedule(name: &str) -> LrSchedule {
    match name {
        "cosine" => LrSchedule::Cosine,
        _ => LrSchedule::Constant,
    }
}

/// A resumed run keeps the settings it was started with, except its budget and schedule.
fn refuse_fixed_settings(args: &TrainArgs) -> Result<()> {
    let given = [
        ("--batch-size", args.batch_size.is_some()),
        ("--lr", args.lr.is_some()),
        ("--time-sampling", args.time_sampling.is_some()),
        ("--label-dropout", args.label_dropout.is_some()),
        ("--ema-decay", args.ema_decay.is_some()),
        ("--eval-every", args.eval_every.is_some()),
        ("--eval-images", args.eval_images.is_some()),
        ("--checkpoint-every", args.checkpoint_every.is_some()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, on)| *on) {
        bail!(
            "{flag} cannot change on --resume: a resumed run keeps the settings in its \
             config.json (only --steps, --minutes and --lr-schedule may be given)"
        );
    }
    Ok(())
}

fn train_config(args: &TrainArgs) -> Result<TrainConfig> {
    let model = UNetConfig::preset(&args.preset).expect("clap restricts presets");
    let mut config = TrainConfig::for_preset(&args.preset, model);
    config.seed = args.seed;
    if let Some(b) = args.batch_size {
        config.batch_size = b as usize;
    }
    if let Some(lr) = args.lr {
        config.learning_rate = lr;
    }
    if let Some(name) = &args.lr_schedule {
        config.lr_schedule = lr_schedule(name);
    }
    if let Some(name) = &args.time_sampling {
        config.time_sampling = match name.as_str() {
            "logit-normal" => TimeSampling::LogitNormal,
            _ => TimeSampling::Uniform,
        };
    }
    if let Some(p) = args.label_dropout {
        config.label_dropout = p;
    }
    if let Some(d) = args.ema_decay {
        config.ema_decay = d;
    }
    if let Some(n) = args.eval_every {
        config.eval_every = n;
    }
    if let Some(n) = args.eval_images {
        config.eval_images = n as usize;
    }
    if let Some(n) = args.checkpoint_every {
        config.checkpoint_every = n;
    }
    if let Some(n) = args.steps {
        config.budget = Budget::Steps(n);
    } else if let Some(m) = args.minutes {
        config.budget = Budget::Minutes(m);
    }
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

/// Runs the trainer to `budget`, showing progress against `whole` steps when the budget is
/// one stretch of a longer run.
fn run_with_progress(
    trainer: &mut Trainer,
    budget: Budget,
    whole: Option<u64>,
    stop: &AtomicBool,
) -> Result<Outcome> {
    let terminal = std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::new(match budget {
        Budget::Steps(n) => whole.unwrap_or(n),
        Budget::Minutes(m) => (m * 60.0) as u64,
    });
    if terminal {
        let template = match budget {
            Budget::Steps(_) => "{bar:30} step {pos}/{len} {msg} eta {eta}",
            Budget::Minutes(_) => "{bar:30} {elapsed}/{len}s {msg} eta {eta}",
        };
        bar.set_style(indicatif::ProgressStyle::with_template(template).expect("valid template"));
        bar.set_position(trainer.step().min(bar.length().unwrap_or(0)));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let outcome = trainer.run(budget, stop, |row, total| {
        let heldout = row
            .heldout
            .map(|h| format!(" heldout {h:.4}"))
            .unwrap_or_default();
        let msg = format!(
            "loss {:.4}{heldout} {:.1} img/s",
            row.loss, row.images_per_sec
        );
        match budget {
            Budget::Steps(_) => bar.set_position(row.step),
            Budget::Minutes(_) => bar.set_position(started.elapsed().as_secs()),
        }
        bar.set_message(msg.clone());
        if !terminal && (row.step % 10 == 0 || row.heldout.is_some()) {
            let of = whole.or(total).map(|t| format!("/{t}")).unwrap_or_default();
            eprintln!("step {}{of} {msg} lr {:.2e}", row.step, row.learning_rate);
        }
    });
    bar.finish_and_clear();
    Ok(outcome?)
}

/// Trains to a step budget in stretches of `every` steps, writing the weights at the end of
/// each as `weights-step<N>.mfc`. The stretches change nothing about the run: its schedule
/// follows the configured budget, and the weights at step N are those of a run stopped there.
fn run_keeping_weights(
    trainer: &mut Trainer,
    budget: Budget,
    every: u64,
    stop: &AtomicBool,
    out: &Path,
) -> Result<Outcome> {
    let Budget::Steps(total) = budget else {
        bail!("--keep-every needs a budget in steps (--steps), not in minutes");
    };
    loop {
        let target = ((trainer.step() / every + 1) * every).min(total);
        let outcome = run_with_progress(trainer, Budget::Steps(target), Some(total), stop)?;
        if outcome == Outcome::Interrupted {
            return Ok(outcome);
        }
        write_weights(trainer, &out.join(format!("weights-step{target}.mfc")))?;
        if target >= total {
            return Ok(outcome);
        }
    }
}

/// Writes a weights file (config and EMA only), the file to ship or share, to `path` in the
/// run directory.
fn write_weights(trainer: &Trainer, path: &Path) -> Result<()> {
    let bytes = mnist_flow::train::checkpoint::module_bytes(trainer.ema());
    let dir = path.parent().unwrap_or(Path::new("."));
    let state = Checkpoint::load(&dir.join(CHECKPOINT))?.header;
    let weights = Checkpoint::new(
        trainer.config().clone(),
        trainer.step(),
        state.sampler,
        state.seconds,
        vec![("ema".to_string(), bytes)],
    );
    weights.save(path)?;
    Ok(())
}

fn plot_losses(out: &Path) -> Result<()> {
    let rows = read_log(&out.join(mnist_flow::train::trainer::LOSS_LOG));
    let train: Vec<(f64, f64)> = rows.iter().map(|r| (r.step as f64, r.loss)).collect();
    let smoothed = moving_average(&train, 25);
    let heldout: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.heldout.map(|h| (r.step as f64, h)))
        .collect();
    let chart = Chart {
        title: "flow-matching loss".into(),
        x_label: "step".into(),
        y_label: "mse".into(),
        log_y: true,
    };
    let series = vec![
        Series {
            name: "train (25-step mean)".into(),
            points: smoothed,
        },
        Series {
            name: "held-out (EMA)".into(),
            points: heldout,
        },
    ];
    chart.draw(&series).save_png(&out.join("loss.png"))?;
    Ok(())
}

fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    (0..points.len())
        .map(|i| {
            let from = i.saturating_sub(window - 1);
            let part = &points[from..=i];
            (
                points[i].0,
                part.iter().map(|p| p.1).sum::<f64>() / part.len() as f64,
            )
        })
        .collect()
}

pub(crate) fn load_model(weights: Option<&Path>, raw: bool, device: &Device) -> Result<UNet> {
    let path = match weights {
        Some(p) => p.to_path_buf(),
        None => {
            let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_WEIGHTS);
            if shipped.is_file() {
                shipped
            } else {
                PathBuf::from(SHIPPED_WEIGHTS)
            }
        }
    };
    if path.extension().is_some_and(|e| e == "safetensors") {
        if raw {
            bail!(
                "--raw needs a checkpoint, but {} holds one set of weights",
                path.display()
            );
        }
        return Ok(interop::load_safetensors(&path, device)?);
    }
    let checkpoint = Checkpoint::load(&path)?;
    let section = if raw { "model" } else { "ema" };
    Ok(checkpoint.model(section, device)?)
}

fn export(args: ExportArgs, device: &Device) -> Result<()> {
    let model = load_model(args.weights.as_deref(), args.raw, device)?;
    interop::save_safetensors(&model, &args.out)?;
    println!("wrote {}", args.out.display());
    if let Some(path) = &args.probe {
        interop::Probe::of(&model, device).save(path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn import(args: ImportArgs, device: &Device) -> Result<()> {
    let model = interop::load_notebook(&args.pth, args.key.as_deref(), device)?;
    let config = model.config().clone();
    let preset = if config == UNetConfig::reference() {
        "reference"
    } else {
        "reference (other widths)"
    };
    let weights = Checkpoint::new(
        TrainConfig::for_preset(preset, config.clone()),
        0,
        SamplerState {
            seed: 0,
            epoch: 0,
            position: 0,
        },
        0.0,
        vec![(
            "ema".to_string(),
            mnist_flow::train::checkpoint::module_bytes(&model),
        )],
    );
    weights.save(&args.out)?;
    println!(
        "wrote {}: channels {:?}, {} blocks per level, embedding {}, {} parameters",
        args.out.display(),
        config.channels,
        config.blocks,
        config.embed_dim,
        trainable_params(&model)
    );
    if let Some(path) = &args.probe {
        interop::Probe::of(&model, device).save(path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The solver settings for one solver name.
pub(crate) fn settings_for(
    args: &SolverArgs,
    name: &str,
    guidance: f64,
    seed: u64,
) -> SampleSettings {
    let cap = args.nfe.unwrap_or(args.max_nfe);
    let solver = Solver::fixed_step(name).unwrap_or(Solver::Dopri5 {
        rtol: args.rtol,
        atol: args.atol,
        max_nfe: cap,
    });
    let steps = match (args.nfe, solver.evaluations_per_step()) {
        (Some(nfe), Some(per)) => (nfe / per).max(1) as usize,
        _ => args.steps as usize,
    };
    let grid = TimeGrid::parse(&args.time_grid).expect("clap restricts time grids");
    SampleSettings {
        guidance,
        guidance_interval: args.guidance_interval.unwrap_or(DEFAULT_INTERVAL),
        solver,
        steps,
        grid,
        seed,
        batch_size: 256,
    }
}

pub(crate) fn describe(settings: &SampleSettings) -> String {
    match settings.solver {
        Solver::Dopri5 {
            rtol,
            atol,
            max_nfe,
        } => {
            format!("dopri5 (rtol {rtol:e}, atol {atol:e}, cap {max_nfe})")
        }
        solver => format!("{} {} steps", solver.name(), settings.steps),
    }
}

fn sample_command(args: SampleArgs, device: &Device) -> Result<()> {
    let model = load_model(args.weights.as_deref(), args.raw, device)?;
    let labels: Vec<u8> = if let Some(labels) = &args.labels {
        labels.0.clone()
    } else if let Some(n) = args.count {
        let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x4c41_4245_4c53);
        (0..n).map(|_| rng.random_range(0..10u8)).collect()
    } else {
        let per = args.per_class.unwrap_or(10) as usize;
        (0..10 * per).map(|i| (i % 10) as u8).collect()
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let cols = if labels.len() % 10 == 0 {
        10
    } else {
        labels.len().min(16)
    };
    let side = model.config().image_size;
    let (solvers, scales) = (&args.solver.solver, &args.guidance.0);

    let mut panels = Vec::new();
    for name in solvers {
        for &w in scales {
            let mut settings = settings_for(&args.solver, name, w, args.seed);
            settings.batch_size = args.batch_size as usize;
            let started = Instant::now();
            let samples = sample(&model, &labels, &settings, device)?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}, w = {w}: {} images, NFE {} per batch, network passes {} per batch, \
                 {:.2} s, {:.1} images/s",
                describe(&settings),
                labels.len(),
                samples.nfe / samples.batches,
                samples.network_passes / samples.batches,
                secs,
                labels.len() as f64 / secs
            );
            let title = match (solvers.len() > 1, scales.len() > 1) {
                (true, true) => format!("{name} w={w}"),
                (true, false) => format!("{name} nfe {}", samples.nfe / samples.batches),
                _ => format!("w = {w}"),
            };
            let stem = match (solvers.len() > 1, scales.len() > 1) {
                (false, false) => String::new(),
                (false, true) => format!("w{w}-"),
                (true, false) => format!("{name}-"),
                (true, true) => format!("{name}-w{w}-"),
            };
            write_idx(&args.out, &stem, &samples, side)?;
            panels.push(Panel {
                title,
                captions: Vec::new(),
                images: samples.images,
                cols,
            });
        }
    }
    let (name, picture) = match (solvers.len() > 1, scales.len() > 1) {
        (false, false) => ("samples.png", viz::grid(&panels[0].images, side, cols, 2)),
        (false, true) => ("guidance.png", viz::panels(&panels, side, 2)),
        (true, false) => ("solvers.png", viz::panels(&panels, side, 2)),
        (true, true) => ("panels.png", viz::panels(&panels, side, 2)),
    };
    picture.save_png(&args.out.join(name))?;
    println!("wrote {}", args.out.join(name).display());
    Ok(())
}

fn trajectory(args: TrajectoryArgs, device: &Device) -> Result<()> {
    let model = load_model(args.weights.as_deref(), false, device)?;
    if args.solver.solver.len() != 1 {
        bail!(
            "trajectory draws one solver at a time, found --solver {}",
            args.solver.solver.join(",")
        );
    }
    let labels = args.labels.0.clone();
    let settings = settings_for(
        &args.solver,
        &args.solver.solver[0],
        args.guidance,
        args.seed,
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let side = model.config().image_size;

    let noise = mnist_flow::sample::noise(labels.len(), side * side, args.seed);
    let start: Vec<Vec<u8>> = noise
        .chunks(side * side)
        .map(|p| p.iter().map(|&v| to_byte(v)).collect())
        .collect();
    let mut frames: Vec<(f64, Vec<Vec<u8>>)> = vec![(0.0, start)];
    let samples =
        mnist_flow::sample::sample_with(&model, &labels, &settings, device, |_, x, t| {
            frames.push((t, mnist_flow::sample::to_images(x.clone())));
        })?;
    println!(
        "{}, w = {}: NFE {}, network passes {}, {} frames",
        describe(&settings),
        args.guidance,
        samples.nfe,
        samples.network_passes,
        frames.len()
    );

    let caption: Vec<String> = labels.iter().map(|y| y.to_string()).collect();
    let cols = labels.len().min(10);
    let canvases: Vec<viz::Canvas> = frames
        .iter()
        .map(|(t, images)| {
            let panel = Panel {
                title: format!("t={t:.2} w={}", args.guidance),
                captions: caption.clone(),
                images: images.clone(),
                cols,
            };
            viz::panels(&[panel], side, 3)
        })
        .collect();
    let gif = viz::animation::gif(&canvases, 8, 150);
    mnist_flow::atomic::write(&args.out.join("trajectory.gif"), &gif)?;

    let columns = (args.columns as usize).min(frames.len());
    let picks: Vec<usize> = (0..columns)
        .map(|i| i * (frames.len() - 1) / (columns - 1).max(1))
        .collect();
    let mut strip = Vec::new();
    let mut strip_captions = Vec::new();
    for (row, label) in labels.iter().enumerate() {
        for &f in &picks {
            strip.push(frames[f].1[row].clone());
            strip_captions.push(if row + 1 == labels.len() {
                format!("t={:.2}", frames[f].0)
            } else {
                String::new()
            });
        }
        let _ = label;
    }
    let panel = Panel {
        title: format!(
            "{} w={} labels {}",
            describe(&settings),
            args.guidance,
            labels.iter().map(|y| y.to_string()).collect::<String>()
        ),
        captions: strip_captions,
        images: strip,
        cols: columns,
    };
    viz::panels(&[panel], side, 2).save_png(&args.out.join("trajectory.png"))?;
    println!(
        "wrote {} and {}",
        args.out.join("trajectory.gif").display(),
        args.out.join("trajectory.png").display()
    );
    Ok(())
}

fn write_idx(out: &Path, stem: &str, samples: &Samples, side: usize) -> Result<()> {
    let n = samples.images.len();
    let pixels: Vec<u8> = samples.images.concat();
    let images = idx::encode(IMAGES_MAGIC, &[n, side, side], &pixels);
    let labels = idx::encode(LABELS_MAGIC, &[n], &samples.labels);
    mnist_flow::atomic::write(&out.join(format!("{stem}images-idx3-ubyte")), &images)?;
    mnist_flow::atomic::write(&out.join(format!("{stem}labels-idx1-ubyte")), &labels)?;
    Ok(())
}

fn path_strip(args: PathArgs, device: &Device) -> Result<()> {
    let train = open_split(args.data.as_deref(), Split::Train)?;
    if args.index >= train.len() {
        bail!(
            "--index {} is out of range: the training set has {} images",
            args.index,
            train.len()
        );
    }
    let side = train.rows;
    let x1: Vec<f32> = train
        .image(args.index)
        .iter()
        .map(|&p| dataset::to_unit_range(p))
        .collect();
    let x0 = mnist_flow::sample::noise(1, side * side, args.seed);
    let mut images = Vec::new();
    let mut captions = Vec::new();
    for i in 0..args.times {
        let t = i as f64 / (args.times - 1) as f64;
        let tensor = |v: &[f32]| {
            Tensor::<4>::from_data(
                TensorData::new(v.to_vec(), [1, 1, side, train.cols]),
                device,
            )
        };
        let time = Tensor::<1>::from_floats([t as f32], device);
        let x_t = CondOtPath.sample(tensor(&x0), tensor(&x1), time).x_t;
        let values = x_t.try_into_vec_as::<f32>().expect("float tensor");
        images.push(values.iter().map(|&v| to_byte(v)).collect());
        captions.push(format!("t={t:.2}"));
    }
    let panel = Panel {
        title: format!("label {}", train.labels[args.index]),
        captions,
        images,
        cols: args.times as usize,
    };
    viz::panels(&[panel], side, 4).save_png(&args.out)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

fn bench(args: BenchArgs, device: &Device) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if !args.json {
        println!(
            "threads {threads}, train batch {}, sample batch {} (guided: {} rows per pass), \
             {} repeats",
            args.train_batch,
            args.sample_batch,
            2 * args.sample_batch,
            args.repeats
        );
    }
    for preset in &args.presets {
        let model = UNetConfig::preset(preset).expect("clap restricts presets");
        let mut config = TrainConfig::for_preset(preset, model.clone());
        config.batch_size = args.train_batch as usize;
        config.eval_every = u64::MAX;
        let side = model.image_size;
        let n = (args.train_batch as usize).max(16);
        let synthetic = Dataset {
            images: (0..n * side * side).map(|i| (i * 37 % 256) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: side,
            cols: side,
        };
        let dir = std::env::temp_dir().join(format!("mnist-flow-bench-{}", std::process::id()));
        let mut trainer = Trainer::new(config, &synthetic, &synthetic.head(16), &dir, device)?;
        reset_peak_memory();
        let mut train_secs = Vec::new();
        for i in 0..=args.repeats {
            let started = Instant::now();
            trainer.train_step()?;
            if i > 0 {
                train_secs.push(started.elapsed().as_secs_f64());
            }
        }

        let train_peak = peak_memory_mib();
        let ema = trainer.ema().clone();
        drop(trainer);
        reset_peak_memory();
        let labels: Vec<u8> = (0..args.sample_batch).map(|i| (i % 10) as u8).collect();
        // One guided step: guidance everywhere, so the step is a full batched pass.
        let settings = SampleSettings {
            steps: 1,
            guidance_interval: (0.0, 1.0),
            batch_size: labels.len(),
            ..Default::default()
        };
        let mut sample_secs = Vec::new();
        for i in 0..=args.repeats {
            let started = Instant::now();
            sample(&ema, &labels, &settings, device)?;
            if i > 0 {
                sample_secs.push(started.elapsed().as_secs_f64());
            }
        }
        let sample_peak = peak_memory_mib();
        let (tmin, tmed) = min_median(&mut train_secs);
        let (smin, smed) = min_median(&mut sample_secs);
        let params = trainable_params(&ema);
        // A training step: forward and backward (about twice the forward) over the batch; a
        // guided step: one forward pass over twice the batch.
        let flops = model.forward_flops() as f64;
        let train_gflops = 3.0 * flops * args.train_batch as f64 / tmed / 1e9;
        let sample_gflops = 2.0 * flops * args.sample_batch as f64 / smed / 1e9;
        if args.json {
            let line = serde_json::json!({
                "preset": preset,
                "params": params,
                "threads": threads,
                "train_batch": args.train_batch,
                "sample_batch": args.sample_batch,
                "train_step_s": { "min": tmin, "median": tmed },
                "guided_step_s": { "min": smin, "median": smed },
                "forward_flops_per_image": flops,
                "train_gflops": train_gflops,
                "guided_gflops": sample_gflops,
                "train_peak_mib": train_peak,
                "guided_peak_mib": sample_peak,
            });
            println!("{line}");
            continue;
        }
        let mib = |m: Option<f64>| m.map_or("?".to_string(), |m| format!("{m:.0}"));
        println!(
            "{preset:>9}: {params} params, {:.1} MFLOP/image forward\n           train step min \
             {:.3} s median {:.3} s = {:.1} images/s, {train_gflops:.1} GFLOP/s, peak {} MiB\n           \
             guided sampling step min {:.3} s median {:.3} s = {:.1} image-steps/s, \
             {sample_gflops:.1} GFLOP/s, peak {} MiB",
            flops / 1e6,
            tmin,
            tmed,
            args.train_batch as f64 / tmed,
            mib(train_peak),
            smin,
            smed,
            args.sample_batch as f64 / smed,
            mib(sample_peak),
        );
    }
    if args.solvers {
        bench_solvers(args.weights.as_deref(), args.sample_batch as usize, device)?;
    }
    Ok(())
}

/// Sampling throughput of each solver at fixed NFE with trained weights.
/// Starts a new peak of resident memory (Linux; elsewhere nothing happens).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident memory since the last reset, in MiB (Linux only).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench_solvers(weights: Option<&Path>, batch: usize, device: &Device) -> Result<()> {
    let model = load_model(weights, false, device)?;
    let labels: Vec<u8> = (0..batch).map(|i| (i % 10) as u8).collect();
    println!(
        "solvers: {batch} images a batch, guidance w = {DEFAULT_GUIDANCE} at every step \
         (one batched pass of {} rows per NFE)",
        2 * batch
    );
    let timed = |solver: Solver, steps: usize| -> Result<(u64, f64)> {
        let settings = SampleSettings {
            solver,
            steps,
            guidance_interval: (0.0, 1.0),
            batch_size: batch,
            ..Default::default()
        };
        let started = Instant::now();
        let samples = sample(&model, &labels, &settings, device)?;
        Ok((samples.nfe, started.elapsed().as_secs_f64()))
    };
    let solvers = [Solver::Euler, Solver::Midpoint, Solver::Heun, Solver::Rk4];
    for budget in [10u64, 20, 100] {
        for solver in solvers {
            let per = solver.evaluations_per_step().expect("fixed-step solver");
            let steps = (budget / per) as usize;
            let (nfe, secs) = timed(solver, steps)?;
            println!(
                "  {:>8} NFE {nfe:>3} ({steps:>3} steps): {secs:.2} s = {:.1} images/s",
                solver.name(),
                batch as f64 / secs
            );
        }
    }
    for tol in [1e-2, 1e-3] {
        let solver = Solver::Dopri5 {
            rtol: tol,
            atol: tol,
            max_nfe: 10_000,
        };
        let (nfe, secs) = timed(solver, 1)?;
        println!(
            "    dopri5 NFE {nfe:>3} (tolerance {tol:e}): {secs:.2} s = {:.1} images/s",
            batch as f64 / secs
        );
    }
    Ok(())
}

fn min_median(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2])
}

fn train_classifier(args: TrainClassifierArgs, device: &Device) -> Result<()> {
    let train = open_split(args.data.as_deref(), Split::Train)?;
    let test = open_split(args.data.as_deref(), Split::Test)?;
    let settings = FitSettings {
        epochs: args.epochs as usize,
        batch_size: args.batch_size as usize,
        learning_rate: args.lr,
        max_shift: args.max_shift as usize,
        seed: args.seed,
    };
    let config = ClassifierConfig {
        image_size: train.rows,
        ..Default::default()
    };
    config.validate().map_err(anyhow::Error::msg)?;
    if train.rows != train.cols {
        bail!(
            "the classifier needs square images, the data has {}×{}",
            train.rows,
            train.cols
        );
    }
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    log::info!("training the classifier: {settings:?}");
    let started = Instant::now();
    let mut last = 0.0;
    let net = fit(&config, &settings, &train, &test, device, |r| {
        last = r.test_accuracy;
        println!(
            "epoch {}/{}: loss {:.4}, test accuracy {:.2} % ({:.0} s)",
            r.epoch,
            settings.epochs,
            r.loss,
            100.0 * r.test_accuracy,
            started.elapsed().as_secs_f64()
        );
    });
    let dataset = match &args.data {
        None => "mnist".to_string(),
        Some(dir) => dir.display().to_string(),
    };
    classifier_weights::save(&net, &settings, last, &dataset, &args.out)?;
    println!(
        "wrote {} (test accuracy {:.2} %)",
        args.out.display(),
        100.0 * last
    );
    Ok(())
}
