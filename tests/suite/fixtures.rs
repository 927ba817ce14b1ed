//! Tiny synthetic MNIST-format datasets written to temporary directories.

use std::path::Path;

use mnist_flow::data::idx::{encode, IMAGES_MAGIC, LABELS_MAGIC};
use mnist_flow::data::Dataset;

/// `n` 28×28 images: a bright bar whose position depends on the label, on a dark ground.
pub fn synthetic(n: usize) -> Dataset {
    let side = 28;
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let mut images = vec![0u8; n * side * side];
    for (i, &y) in labels.iter().enumerate() {
        let row = 3 + 2 * y as usize;
        for col in 4..24 {
            images[i * side * side + row * side + col] = 255;
            images[i * side * side + (row + 1) * side + col] = 200;
        }
    }
    Dataset {
        images,
        labels,
        rows: side,
        cols: side,
    }
}

/// Writes a dataset as the four IDX files (plain) into `dir`, training and test alike.
pub fn write_dataset(dir: &Path, data: &Dataset) {
    std::fs::create_dir_all(dir).unwrap();
    let images = encode(
        IMAGES_MAGIC,
        &[data.len(), data.rows, data.cols],
        &data.images,
    );
    let labels = encode(LABELS_MAGIC, &[data.len()], &data.labels);
    for split in ["train", "t10k"] {
        std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), &images).unwrap();
        std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
    }
}
