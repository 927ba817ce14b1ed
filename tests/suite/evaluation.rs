//! The evaluator on real MNIST with the shipped classifier: real images score at the floor,
//! shuffled labels and noise are caught. Subsets keep it fast: 3,000 training and 1,000 test
//! images as the reference, 500 images scored.

use std::path::Path;

use burn::tensor::Device;
use mnist_flow::data::dataset::mnist_digests;
use mnist_flow::data::{Dataset, Split};
use mnist_flow::eval::score::Reference;
use mnist_flow::eval::weights;
use mnist_flow::eval::Classifier;
use rand::seq::SliceRandom;
use rand::SeedableRng;

struct Setup {
    net: Classifier,
    reference: Reference,
    /// Training images not in the reference's training subset.
    fresh: Dataset,
    device: Device,
}

fn slice(data: &Dataset, from: usize, to: usize) -> Dataset {
    let p = data.pixels();
    Dataset {
        images: data.images[from * p..to * p].to_vec(),
        labels: data.labels[from..to].to_vec(),
        rows: data.rows,
        cols: data.cols,
    }
}

fn setup() -> Setup {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let device = Device::default();
    let (_, net) = weights::load(&root.join("weights/classifier.mfcl"), &device).unwrap();
    let digests = mnist_digests();
    let dir = root.join("data/mnist");
    let train = Dataset::open(&dir, Split::Train, Some(&digests)).unwrap();
    let test = Dataset::open(&dir, Split::Test, Some(&digests)).unwrap();
    let reference = Reference::build(
        &net,
        &slice(&train, 0, 3000),
        &slice(&test, 0, 1000),
        &device,
    )
    .unwrap();
    Setup {
        net,
        reference,
        fresh: slice(&train, 10_000, 10_500),
        device,
    }
}

#[test]
fn real_images_score_like_real_images_and_damage_is_caught() {
    let s = setup();
    let side = s.fresh.rows;
    let real = s
        .reference
        .score(&s.net, &s.fresh.images, &s.fresh.labels, side, &s.device)
        .unwrap();
    assert!(
        real.accuracy >= 0.99,
        "accuracy on real images {}",
        real.accuracy
    );
    assert!(real.precision > 0.6 && real.recall > 0.6, "{real:?}");
    assert!(real.memorised < 0.05, "{real:?}");

    // The same images with their labels shuffled: right only by chance, about 1 in 10.
    let mut shuffled = s.fresh.labels.clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    shuffled.shuffle(&mut rng);
    let wrong = s
        .reference
        .score(&s.net, &s.fresh.images, &shuffled, side, &s.device)
        .unwrap();
    assert!(
        (0.04..0.18).contains(&wrong.accuracy),
        "accuracy with shuffled labels {}",
        wrong.accuracy
    );
    assert_eq!(wrong.fid, real.fid);

    // Uniform noise: far from every digit in feature space.
    let mut state = 12345u32;
    let noise: Vec<u8> = (0..s.fresh.images.len())
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    let junk = s
        .reference
        .score(&s.net, &noise, &s.fresh.labels, side, &s.device)
        .unwrap();
    assert!(
        junk.fid > 20.0 * real.fid.max(1e-3),
        "noise FID {} vs real {}",
        junk.fid,
        real.fid
    );
    assert!(junk.precision < 0.05, "{junk:?}");
}
