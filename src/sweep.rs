//! `sweep`: `evaluate` over a grid of solvers, NFE budgets and guidance scales. One CSV row
//! per point, written as it goes, so that a rerun skips the points already done; then plots
//! of FID and accuracy against the guidance scale and of FID against the NFE.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;

use mnist_flow::sample::{sample, SampleSettings, DEFAULT_INTERVAL};
use mnist_flow::solver::{Solver, TimeGrid};
use mnist_flow::viz::{Chart, Series};

use crate::cli::SweepArgs;
use crate::commands::load_model;
use crate::evaluation::Judge;

const HEADER: &str =
    "solver,nfe_budget,steps,nfe,network_passes,guidance,n,accuracy,fid,precision,recall,memorised,seconds,interval";

/// One finished point of the grid.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    solver: String,
    nfe_budget: u64,
    guidance: f64,
    accuracy: f64,
    fid: f64,
    nfe: u64,
    /// `a-b`: where guidance was applied.
    interval: String,
}

pub fn sweep(args: SweepArgs, device: &Device) -> Result<()> {
    let judge = Judge::open(&args.classifier, &args.cache, None, device)?;
    let model = load_model(args.weights.as_deref(), false, device)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let csv = args.out.join("sweep.csv");

    let (lo, hi) = args.guidance_interval.unwrap_or(DEFAULT_INTERVAL);
    let interval = format!("{lo}-{hi}");
    let mut lines = read_lines(&csv)?;
    let done: HashSet<String> = lines.iter().map(|l| point_key(l)).collect();
    let per = args.per_class as usize;
    let labels: Vec<u8> = (0..10 * per).map(|i| (i % 10) as u8).collect();
    let base = judge.floor(labels.len(), args.seed, device)?;
    println!(
        "floor for N = {}: FID {:.3}, accuracy {:.2} %",
        labels.len(),
        base.fid,
        100.0 * base.accuracy
    );

    for name in &args.solvers {
        for &budget in &args.nfe {
            for &w in &args.guidance.0 {
                let key = format!("{name},{budget},{w},{interval}");
                if done.contains(&key) {
                    continue;
                }
                let solver = Solver::fixed_step(name).expect("clap restricts sweep solvers");
                let per_step = solver.evaluations_per_step().expect("fixed-step solver");
                let settings = SampleSettings {
                    guidance: w,
                    guidance_interval: (lo, hi),
                    solver,
                    steps: (budget / per_step).max(1) as usize,
                    grid: TimeGrid::Uniform,
                    seed: args.seed,
                    ..Default::default()
                };
                let started = Instant::now();
                let samples = sample(&model, &labels, &settings, device)?;
                let images = samples.images.concat();
                let scores = judge.score(&images, &labels, device)?;
                let secs = started.elapsed().as_secs_f64();
                let line = format!(
                    "{name},{budget},{},{},{},{w},{},{:.6},{:.6},{:.6},{:.6},{:.6},{secs:.1},{interval}",
                    settings.steps,
                    samples.nfe / samples.batches,
                    samples.network_passes / samples.batches,
                    scores.n,
                    scores.accuracy,
                    scores.fid,
                    scores.precision,
                    scores.recall,
                    scores.memorised
                );
                println!("{line}");
                lines.push(line);
                write_lines(&csv, &lines)?;
            }
        }
    }
    let points: Vec<Point> = lines
        .iter()
        .filter_map(|l| parse_point(l))
        .filter(|p| p.interval == interval)
        .collect();
    plot(&args, &points, base.fid, (lo, hi))?;
    println!(
        "wrote {} and plots in {}",
        csv.display(),
        args.out.display()
    );
    Ok(())
}

/// `solver,nfe_budget,guidance,interval` of a CSV line: what identifies a point.
fn point_key(line: &str) -> String {
    let f: Vec<&str> = line.split(',').collect();
    match (f.first(), f.get(1), f.get(5), f.get(13)) {
        (Some(s), Some(n), Some(w), Some(i)) => match w.parse::<f64>() {
            Ok(w) => format!("{s},{n},{w},{i}"),
            Err(_) => String::new(),
        },
        _ => String::new(),
    }
}

fn parse_point(line: &str) -> Option<Point> {
    let f: Vec<&str> = line.split(',').collect();
    Some(Point {
        solver: f.first()?.to_string(),
        nfe_budget: f.get(1)?.parse().ok()?,
        nfe: f.get(3)?.parse().ok()?,
        guidance: f.get(5)?.parse().ok()?,
        accuracy: f.get(7)?.parse().ok()?,
        fid: f.get(8)?.parse().ok()?,
        interval: f.get(13)?.to_string(),
    })
}

/// The data lines of an existing CSV (none if there is no file yet).
fn read_lines(path: &Path) -> Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut lines = text.lines();
            if lines.next() != Some(HEADER) {
                anyhow::bail!(
                    "{}: expected a sweep CSV starting with '{HEADER}': remove it or choose --out",
                    path.display()
                );
            }
            Ok(lines
                .filter(|l| parse_point(l).is_some())
                .map(String::from)
                .collect())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = format!("{HEADER}\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    mnist_flow::atomic::write(path, text.as_bytes())?;
    Ok(())
}

fn plot(args: &SweepArgs, points: &[Point], floor_fid: f64, interval: (f64, f64)) -> Result<()> {
    let applied = if interval == (0.0, 1.0) {
        String::new()
    } else {
        format!(", t in [{}, {}]", interval.0, interval.1)
    };
    let by_solver =
        |keep: &dyn Fn(&Point) -> bool, x: &dyn Fn(&Point) -> f64, y: &dyn Fn(&Point) -> f64| {
            let mut series = Vec::new();
            for name in &args.solvers {
                let mut pts: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| &p.solver == name && keep(p))
                    .map(|p| (x(p), y(p)))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                if !pts.is_empty() {
                    series.push(Series {
                        name: name.clone(),
                        points: pts,
                    });
                }
            }
            series
        };
    let with_floor = |mut series: Vec<Series>| {
        let xs: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        if lo.is_finite() {
            series.push(Series {
                name: "real images (floor)".into(),
                points: vec![(lo, floor_fid), (hi, floor_fid)],
            });
        }
        series
    };
    let at_nfe = |p: &Point| p.nfe_budget == args.plot_nfe;
    let at_w = |p: &Point| (p.guidance - args.plot_guidance).abs() < 1e-9;
    let chart = |title: String, x: &str, y: &str, log_y: bool| Chart {
        title,
        x_label: x.into(),
        y_label: y.into(),
        log_y,
    };
    chart(
        format!("FID vs guidance at NFE {}{applied}", args.plot_nfe),
        "guidance scale w",
        "FID",
        true,
    )
    .draw(&with_floor(by_solver(&at_nfe, &|p| p.guidance, &|p| p.fid)))
    .save_png(&args.out.join("fid-vs-guidance.png"))?;
    chart(
        format!("accuracy vs guidance at NFE {}{applied}", args.plot_nfe),
        "guidance scale w",
        "accuracy %",
        false,
    )
    .draw(&by_solver(&at_nfe, &|p| p.guidance, &|p| {
        100.0 * p.accuracy
    }))
    .save_png(&args.out.join("accuracy-vs-guidance.png"))?;
    chart(
        format!("FID vs NFE at w = {}{applied}", args.plot_guidance),
        "NFE",
        "FID",
        true,
    )
    .draw(&with_floor(by_solver(&at_w, &|p| p.nfe as f64, &|p| p.fid)))
    .save_png(&args.out.join("fid-vs-nfe.png"))?;
    Ok(())
}
