//! `evaluate`: sample a model (or read samples), then score them against the real data with
//! the project's classifier, next to the floor that real images of the same count reach.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use rand::seq::index::sample as choose;
use rand::SeedableRng;
use serde::Serialize;

use mnist_flow::data::idx::{parse, read_bytes, sha256_hex, IMAGES_MAGIC, LABELS_MAGIC};
use mnist_flow::data::{Dataset, Split};
use mnist_flow::eval::score::{cache_path, Reference, Scores};
use mnist_flow::eval::weights as classifier_weights;
use mnist_flow::eval::Classifier;
use mnist_flow::sample::sample;

use crate::cli::EvaluateArgs;
use crate::commands::{describe, load_model, open_split, settings_for};

/// What `evaluate --json` prints.
#[derive(Debug, Serialize)]
struct Report {
    source: String,
    samples: Scores,
    floor: Scores,
}

/// The classifier, the real data and what is known of it: all that scoring needs.
pub(crate) struct Judge {
    pub net: Classifier,
    pub reference: Reference,
    pub train: Dataset,
    pub test: Dataset,
}

impl Judge {
    /// Loads the classifier, refuses one trained on other data than `data` (the shipped
    /// MNIST when `None`), and opens or builds the cached reference.
    pub fn open(
        classifier: &Path,
        cache: &Path,
        data: Option<&Path>,
        device: &Device,
    ) -> Result<Self> {
        let (header, net) = classifier_weights::load(classifier, device)?;
        let dataset = match data {
            None => "mnist".to_string(),
            Some(dir) => dir.display().to_string(),
        };
        if header.dataset != dataset {
            bail!(
                "{} was trained on '{}', the samples imitate '{dataset}': train a classifier \
                 on it (train-classifier --data {dataset} --out FILE) and pass --classifier FILE",
                classifier.display(),
                header.dataset
            );
        }
        let train = open_split(data, Split::Train)?;
        let test = open_split(data, Split::Test)?;
        let reference = reference(classifier, cache, &net, &train, &test, device)?;
        Ok(Self {
            net,
            reference,
            train,
            test,
        })
    }

    /// Scores byte images asked to show `labels`.
    pub fn score(&self, images: &[u8], labels: &[u8], device: &Device) -> Result<Scores> {
        let side = self.test.rows;
        Ok(self
            .reference
            .score(&self.net, images, labels, side, device)?)
    }

    /// The scores of `n` real training images: what a perfect generator would get at this
    /// `n`. Memorisation is measured on `n` test images instead (training images are their
    /// own nearest neighbours), which by construction gives about 1 %.
    pub fn floor(&self, n: usize, seed: u64, device: &Device) -> Result<Scores> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x464c_4f4f_52);
        let pick = |data: &Dataset, rng: &mut rand::rngs::StdRng| {
            let chosen = choose(rng, data.len(), n.min(data.len())).into_vec();
            let images: Vec<u8> = chosen
                .iter()
                .flat_map(|&i| data.image(i).to_vec())
                .collect();
            let labels: Vec<u8> = chosen.iter().map(|&i| data.labels[i]).collect();
            (images, labels)
        };
        let (images, labels) = pick(&self.train, &mut rng);
        let mut scores = self.score(&images, &labels, device)?;
        let (held_out, _) = pick(&self.test, &mut rng);
        scores.memorised = self.reference.memorised(&held_out, self.test.rows)?;
        Ok(scores)
    }
}

pub fn evaluate(args: EvaluateArgs, device: &Device) -> Result<()> {
    let judge = Judge::open(&args.classifier, &args.cache, args.data.as_deref(), device)?;
    let side = judge.test.rows;
    let (source, images, labels) = match &args.samples {
        Some(dir) => read_samples(dir, &args.prefix, side)?,
        None => draw_samples(&args, device)?,
    };
    let scores = judge.score(&images, &labels, device)?;
    let floor = judge.floor(labels.len(), args.seed, device)?;
    let report = Report {
        source,
        samples: scores,
        floor,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// The cached reference for this classifier and dataset, built and cached on first use.
fn reference(
    classifier_path: &Path,
    cache: &Path,
    net: &Classifier,
    train: &Dataset,
    test: &Dataset,
    device: &Device,
) -> Result<Reference> {
    let classifier = std::fs::read(classifier_path)
        .with_context(|| format!("cannot read {}", classifier_path.display()))?;
    let mut identity = classifier;
    identity.extend_from_slice(&train.images);
    identity.extend_from_slice(&test.images);
    let key = sha256_hex(&identity);
    let path = cache_path(cache, &key);
    if let Some(cached) = Reference::load_cached(&path, &key, train) {
        log::debug!("reference from {}", path.display());
        return Ok(cached);
    }
    log::info!("computing test features and the memorisation threshold (cached afterwards)");
    let built = Reference::build(net, train, test, device)?;
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create cache directory {}", cache.display()))?;
    built.save_cache(&path, &key)?;
    Ok(built)
}

fn draw_samples(args: &EvaluateArgs, device: &Device) -> Result<(String, Vec<u8>, Vec<u8>)> {
    if args.solver.solver.len() != 1 {
        bail!(
            "evaluate scores one solver at a time, found --solver {}",
            args.solver.solver.join(",")
        );
    }
    let model = load_model(args.weights.as_deref(), false, device)?;
    let settings = settings_for(
        &args.solver,
        &args.solver.solver[0],
        args.guidance,
        args.seed,
    );
    let per = args.per_class as usize;
    let labels: Vec<u8> = (0..10 * per).map(|i| (i % 10) as u8).collect();
    let samples = sample(&model, &labels, &settings, device)?;
    let weights = args
        .weights
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "shipped weights".into());
    let source = format!(
        "{weights}: {}, w = {}, NFE {} (network passes {}) per batch",
        describe(&settings),
        args.guidance,
        samples.nfe / samples.batches,
        samples.network_passes / samples.batches
    );
    Ok((source, samples.images.concat(), samples.labels))
}

fn read_samples(dir: &Path, prefix: &str, side: usize) -> Result<(String, Vec<u8>, Vec<u8>)> {
    let images_path = dir.join(format!("{prefix}images-idx3-ubyte"));
    let labels_path = dir.join(format!("{prefix}labels-idx1-ubyte"));
    let images = parse(&read_bytes(&images_path)?, IMAGES_MAGIC, &images_path)?;
    let labels = parse(&read_bytes(&labels_path)?, LABELS_MAGIC, &labels_path)?;
    let dataset = Dataset::from_arrays(images, &images_path, labels, &labels_path)?;
    if dataset.rows != side || dataset.cols != side {
        bail!(
            "{}: expected {side}×{side} images like the dataset's, found {}×{}",
            images_path.display(),
            dataset.rows,
            dataset.cols
        );
    }
    if dataset.len() < 2 {
        bail!(
            "{}: need at least 2 samples to score, found {}",
            images_path.display(),
            dataset.len()
        );
    }
    Ok((dir.display().to_string(), dataset.images, dataset.labels))
}

fn print_table(report: &Report) {
    let (s, f) = (&report.samples, &report.floor);
    println!("samples: {}", report.source);
    println!("{:<28} {:>12} {:>16}", "metric", "samples", "real (floor)");
    println!("{:<28} {:>12} {:>16}", "N", s.n, f.n);
    let pct = |v: f64| format!("{:.2} %", 100.0 * v);
    println!(
        "{:<28} {:>12} {:>16}",
        "class accuracy",
        pct(s.accuracy),
        pct(f.accuracy)
    );
    println!(
        "{:<28} {:>12.3} {:>16.3}",
        "FID (classifier features)", s.fid, f.fid
    );
    println!(
        "{:<28} {:>12.3} {:>16.3}",
        "precision (k = 3)", s.precision, f.precision
    );
    println!(
        "{:<28} {:>12.3} {:>16.3}",
        "recall (k = 3)", s.recall, f.recall
    );
    println!(
        "{:<28} {:>12} {:>16}",
        "memorised",
        pct(s.memorised),
        pct(f.memorised)
    );
    let per: Vec<String> = s
        .per_class
        .iter()
        .enumerate()
        .map(|(c, a)| format!("{c}: {:.1}", 100.0 * a))
        .collect();
    println!("accuracy per class (%): {}", per.join("  "));
}
