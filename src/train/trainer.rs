//! The training loop: batches from shuffled epochs, the flow-matching loss, AdamW, the
//! weight EMA, a held-out loss on a fixed test subset, checkpoints and resumption.
//!
//! Every random draw of step `s` comes from a generator seeded by `(seed, s)`, and the data
//! order from the sampler's saved state, so a resumed run takes the same steps as one that
//! was never interrupted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;

use super::checkpoint::{module_bytes, optimizer_bytes, Checkpoint, CheckpointError};
use super::config::{Budget, LrSchedule, TimeSampling, TrainConfig};
use super::{ema, loss};
use crate::data::{Dataset, EpochSampler};
use crate::model::UNet;

/// File name of the checkpoint inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.mfc";
/// File name of the loss log inside a run directory.
pub const LOSS_LOG: &str = "loss.csv";

/// Errors that end a run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    #[error("loss is {loss} at step {step}: training stopped; the last good checkpoint is kept")]
    NonFinite {
        /// The step whose loss was not finite.
        step: u64,
        /// The value.
        loss: f32,
    },
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The loss log could not be written.
    #[error(transparent)]
    Log(#[from] crate::atomic::WriteError),
    /// Settings that cannot be used.
    #[error("invalid training settings: {0}")]
    Config(String),
}

/// One row of the loss log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRow {
    /// Steps taken after this row's step.
    pub step: u64,
    /// Training loss of the step.
    pub loss: f64,
    /// Held-out loss of the EMA weights, on evaluation steps.
    pub heldout: Option<f64>,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Training throughput of the step.
    pub images_per_sec: f64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The budget was spent.
    Finished,
    /// A stop was requested (Ctrl-C); a checkpoint was saved.
    Interrupted,
}

/// A run in progress.
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    model: UNet,
    ema: UNet,
    optim: ModuleOptimizer,
    sampler: EpochSampler,
    step: u64,
    seconds: f64,
    images: Tensor<4>,
    labels: Vec<u8>,
    pixels: usize,
    heldout: Dataset,
    log: Vec<LogRow>,
    dir: PathBuf,
}

impl Trainer {
    /// A fresh run writing into `dir`.
    pub fn new(
        config: TrainConfig,
        train: &Dataset,
        test: &Dataset,
        dir: &Path,
        device: &Device,
    ) -> Result<Self, TrainError> {
        config.validate().map_err(TrainError::Config)?;
        check_size(&config, train)?;
        let autodiff = device.clone().autodiff();
        let model = config.model.init_seeded(config.seed, &autodiff);
        let ema = model.valid();
        let optim = optimizer(&config);
        let sampler = EpochSampler::new(train.len(), config.seed);
        Ok(Self::assemble(
            config, device, model, ema, optim, sampler, train, test, dir,
        ))
    }

    /// Continues the run whose checkpoint is in `dir`.
    pub fn resume(
        train: &Dataset,
        test: &Dataset,
        dir: &Path,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let checkpoint = Checkpoint::load(&dir.join(CHECKPOINT))?;
        let config = checkpoint.header.config.clone();
        config.validate().map_err(TrainError::Config)?;
        check_size(&config, train)?;
        let autodiff = device.clone().autodiff();
        let model = checkpoint.model("model", &autodiff)?;
        let ema = checkpoint.model("ema", device)?;
        let state = checkpoint.section("optimizer")?;
        let optim = optimizer(&config)
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(state.to_vec()))
            .map_err(|e| CheckpointError::Architecture {
                path: checkpoint.path.clone(),
                name: "optimizer".into(),
                detail: format!("{e}"),
            })?;
        let sampler = EpochSampler::resume(train.len(), checkpoint.header.sampler);
        let mut trainer =
            Self::assemble(config, device, model, ema, optim, sampler, train, test, dir);
        trainer.step = checkpoint.header.step;
        trainer.seconds = checkpoint.header.seconds;
        trainer.log = read_log(&dir.join(LOSS_LOG))
            .into_iter()
            .filter(|r| r.step <= trainer.step)
            .collect();
        log::debug!("resuming {} at step {}", dir.display(), trainer.step);
        Ok(trainer)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        config: TrainConfig,
        device: &Device,
        model: UNet,
        ema: UNet,
        optim: ModuleOptimizer,
        sampler: EpochSampler,
        train: &Dataset,
        test: &Dataset,
        dir: &Path,
    ) -> Self {
        let side = train.rows;
        let data = TensorData::new(train.scaled_pixels(), [train.len(), 1, side, side]);
        let images = Tensor::<4>::from_data(data, &device.clone().autodiff());
        Self {
            heldout: test.head(config.eval_images),
            config,
            device: device.clone(),
            model,
            ema,
            optim,
            sampler,
            step: 0,
            seconds: 0.0,
            images,
            labels: train.labels.clone(),
            pixels: train.pixels(),
            log: Vec::new(),
            dir: dir.to_path_buf(),
        }
    }

    /// Changes where a resumed run stops and how its learning rate moves from here on: a
    /// longer `--steps` budget with a cosine schedule anneals a run that was trained at a
    /// constant rate.
    pub fn extend(&mut self, budget: Budget, schedule: Option<LrSchedule>) {
        self.config.budget = budget;
        if let Some(schedule) = schedule {
            self.config.lr_schedule = schedule;
        }
    }

    /// The run's settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The EMA weights (used for sampling).
    pub fn ema(&self) -> &UNet {
        &self.ema
    }

    /// The loss log so far.
    pub fn log(&self) -> &[LogRow] {
        &self.log
    }

    /// Trains until the budget is spent or `stop` is raised, calling `report` after each
    /// step. Saves a checkpoint every `checkpoint_every` steps and at the end.
    pub fn run(
        &mut self,
        budget: Budget,
        stop: &AtomicBool,
        mut report: impl FnMut(&LogRow, Option<u64>),
    ) -> Result<Outcome, TrainError> {
        let started = Instant::now();
        let total = match budget {
            Budget::Steps(n) => Some(n),
            Budget::Minutes(_) => None,
        };
        loop {
            let done = match budget {
                Budget::Steps(n) => self.step >= n,
                Budget::Minutes(m) => started.elapsed().as_secs_f64() >= m * 60.0,
            };
            if done {
                if let Some(last) = self.log.last_mut() {
                    if last.heldout.is_none() {
                        last.heldout = Some(heldout_loss(
                            &self.ema,
                            &self.heldout,
                            self.config.seed,
                            &self.device,
                        ));
                    }
                }
                self.save()?;
                return Ok(Outcome::Finished);
            }
            if stop.load(Ordering::SeqCst) {
                self.save()?;
                return Ok(Outcome::Interrupted);
            }

            let row = self.train_step()?;
            report(&row, total);
            if self.step % self.config.checkpoint_every == 0 {
                self.save()?;
            }
        }
    }

    /// One optimiser step, the EMA update and, on evaluation steps, the held-out loss.
    pub fn train_step(&mut self) -> Result<LogRow, TrainError> {
        let started = Instant::now();
        let batch = self.sampler.next_batch(self.config.batch_size);
        let labels: Vec<u8> = batch.iter().map(|&i| self.labels[i]).collect();
        let mut rng = step_rng(self.config.seed, self.step);
        let draws = loss::draw(
            &labels,
            self.pixels,
            self.config.label_dropout,
            self.config.time_sampling,
            &mut rng,
        );

        let autodiff = self.device.clone().autodiff();
        let index: Vec<i64> = batch.iter().map(|&i| i as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [batch.len()]), &autodiff);
        let x1 = self.images.clone().select(0, index);

        let loss = loss::flow_matching_loss(&self.model, x1, &draws, &autodiff);
        let value: f32 = loss.clone().into_scalar();
        if !value.is_finite() {
            return Err(TrainError::NonFinite {
                step: self.step + 1,
                loss: value,
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let learning_rate = self.config.learning_rate_at(self.step);
        self.model = self.optim.step(learning_rate, self.model.clone(), grads);

        let d = ema::warmed_decay(self.config.ema_decay, self.step);
        self.ema = ema::update(self.ema.clone(), &self.model, d);
        self.step += 1;
        let secs = started.elapsed().as_secs_f64();
        self.seconds += secs;

        let heldout = (self.step % self.config.eval_every == 0).then(|| self.heldout_loss());
        let row = LogRow {
            step: self.step,
            loss: value as f64,
            heldout,
            learning_rate,
            images_per_sec: batch.len() as f64 / secs,
        };
        self.log.push(row);
        Ok(row)
    }

    /// The flow-matching loss of the EMA weights on the fixed held-out subset, with fixed
    /// noise and times and no label dropout.
    pub fn heldout_loss(&self) -> f64 {
        heldout_loss(&self.ema, &self.heldout, self.config.seed, &self.device)
    }

    /// Writes the loss log and the checkpoint.
    pub fn save(&self) -> Result<(), TrainError> {
        let sections = vec![
            ("model".to_string(), module_bytes(&self.model)),
            ("ema".to_string(), module_bytes(&self.ema)),
            ("optimizer".to_string(), optimizer_bytes(&self.optim)),
        ];
        let state = self.sampler.state();
        let checkpoint = Checkpoint::new(
            self.config.clone(),
            self.step,
            state,
            self.seconds,
            sections,
        );
        // The log first: a kill between the two writes leaves rows past the checkpoint, which
        // a resume drops, rather than a checkpoint whose rows are missing.
        write_log(&self.dir.join(LOSS_LOG), &self.log)?;
        checkpoint.save(&self.dir.join(CHECKPOINT))?;
        Ok(())
    }
}

/// The held-out flow-matching loss of `model` on `data` with draws fixed by `seed`.
pub fn heldout_loss(model: &UNet, data: &Dataset, seed: u64, device: &Device) -> f64 {
    const CHUNK: usize = 250;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x4845_4c44_4f55_54);
    let side = data.rows;
    let mut total = 0.0;
    for start in (0..data.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(data.len());
        let part = Dataset {
            images: data.images[start * data.pixels()..end * data.pixels()].to_vec(),
            labels: data.labels[start..end].to_vec(),
            rows: side,
            cols: side,
        };
        // The held-out loss keeps uniform times whatever the training draws, so that runs with
        // different time sampling are compared on the same measure.
        let draws = loss::draw(
            &part.labels,
            part.pixels(),
            0.0,
            TimeSampling::Uniform,
            &mut rng,
        );
        let x1 = TensorData::new(part.scaled_pixels(), [part.len(), 1, side, side]);
        let x1 = Tensor::<4>::from_data(x1, device);
        let value: f32 = loss::flow_matching_loss(model, x1, &draws, device).into_scalar();
        total += value as f64 * part.len() as f64;
    }
    total / data.len() as f64
}

fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .init()
}

fn check_size(config: &TrainConfig, train: &Dataset) -> Result<(), TrainError> {
    if train.rows != config.model.image_size || train.cols != config.model.image_size {
        return Err(TrainError::Config(format!(
            "the model expects {0}×{0} images, the data has {1}×{2}",
            config.model.image_size, train.rows, train.cols
        )));
    }
    Ok(())
}

/// The generator of step `step`'s random draws.
pub fn step_rng(seed: u64, step: u64) -> rand::rngs::StdRng {
    let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step.wrapping_add(0x5851_F42D);
    rand::rngs::StdRng::seed_from_u64(mixed)
}

const LOG_HEADER: &str = "step,train_loss,heldout_loss,learning_rate,images_per_sec";

fn write_log(path: &Path, rows: &[LogRow]) -> Result<(), TrainError> {
    let mut text = String::from(LOG_HEADER);
    text.push('\n');
    for r in rows {
        let heldout = r.heldout.map(|h| format!("{h:.6}")).unwrap_or_default();
        text.push_str(&format!(
            "{},{:.6},{},{:.6e},{:.1}\n",
            r.step, r.loss, heldout, r.learning_rate, r.images_per_sec
        ));
    }
    Ok(crate::atomic::write(path, text.as_bytes())?)
}

/// Reads a loss log written by a run; unreadable rows are skipped.
pub fn read_log(path: &Path) -> Vec<LogRow> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Some(LogRow {
                step: f.first()?.parse().ok()?,
                loss: f.get(1)?.parse().ok()?,
                heldout: f.get(2)?.parse().ok(),
                learning_rate: f.get(3)?.parse().ok()?,
                images_per_sec: f.get(4)?.parse().ok()?,
            })
        })
        .collect()
}
