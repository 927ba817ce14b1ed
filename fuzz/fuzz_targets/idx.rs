//! Arbitrary bytes as the content of an IDX file, plain or gzip: inflated, then parsed as
//! images and as labels. Any panic, and any allocation past libFuzzer's limits, is a finding.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mnist_flow::data::idx::{decompress, parse, IMAGES_MAGIC, LABELS_MAGIC};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzzed");
    let Ok(content) = decompress(data.to_vec(), path) else {
        return;
    };
    for magic in [IMAGES_MAGIC, LABELS_MAGIC] {
        if let Ok(array) = parse(&content, magic, path) {
            assert_eq!(array.dims.iter().product::<usize>(), array.data.len());
        }
    }
});
