//! `cifar10`: CIFAR-10's binary batches from a folder (`data_batch_1.bin` … `data_batch_5.bin`,
//! or `test_batch.bin` for the test split; the contents of `cifar-10-binary.tar.gz`). Each
//! record is 1 label byte and 3072 pixel bytes: the red, green and blue planes of a 32 x 32
//! image, row-major. Loaded when the experiment is resolved; shape `[3, 32, 32]`, 10 classes.

use std::path::{Path, PathBuf};

use scorelab::config::{Params, RawParams};
use scorelab::dataset::Dataset;
use scorelab::images::{self, ImageDataset, ImageSet, LoadError, Split};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `cifar10`.
    pub struct Cifar10Params {
        /// Folder with the binary batches (or the `cifar-10-batches-bin` folder inside it),
        /// relative to the working directory.
        path: String = "data/cifar10".to_string(),
        /// `train` (the `data_batch_*.bin` present, at least one) or `test` (`test_batch.bin`).
        split: Split = Split::Train,
    }
}

/// Bytes per record: a label and a 3 x 32 x 32 image.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// CIFAR-10's classes.
pub const CLASSES: usize = 10;

fn names(split: Split) -> Vec<String> {
    match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".to_string()],
    }
}

/// The batch files of `split` present in `folder` (or in `folder/cifar-10-batches-bin`).
pub fn locate(folder: &Path, split: Split) -> Result<Vec<PathBuf>, LoadError> {
    let wanted = names(split);
    for dir in [folder.to_path_buf(), folder.join("cifar-10-batches-bin")] {
        let found: Vec<PathBuf> = wanted
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
    }
    let expected = match split {
        Split::Train => "data_batch_1.bin … data_batch_5.bin (any of them)",
        Split::Test => "test_batch.bin",
    };
    let place = if folder.is_dir() {
        format!("no CIFAR-10 batches in {}", folder.display())
    } else {
        format!("CIFAR-10 folder {} not found", folder.display())
    };
    Err(LoadError::new(
        format!("{place}: expected {expected}"),
        "put the binary CIFAR-10 batches (from cifar-10-binary.tar.gz) there or set `data.path`",
    ))
}

/// Appends the records of one batch file to `pixels` and `labels`.
pub fn parse_batch(
    bytes: &[u8],
    file: &Path,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<(), LoadError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(LoadError::new(
            format!(
                "{} has {} bytes, expected a non-zero multiple of {RECORD} \
                 (1 label byte + 3072 pixel bytes per record)",
                file.display(),
                bytes.len()
            ),
            "the file is truncated or not a CIFAR-10 binary batch: download it again",
        ));
    }
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if usize::from(record[0]) >= CLASSES {
            return Err(LoadError::new(
                format!(
                    "{} record {i} has label {}; CIFAR-10 labels are 0..9",
                    file.display(),
                    record[0]
                ),
                "give CIFAR-10's binary batches (CIFAR-100's have two label bytes)",
            ));
        }
        labels.push(u32::from(record[0]));
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(())
}

/// Reads the given batch files into one set.
pub fn read(files: &[PathBuf]) -> Result<ImageSet, LoadError> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| {
            LoadError::new(
                format!("cannot read {}: {e}", file.display()),
                "check the file is readable",
            )
        })?;
        parse_batch(&bytes, file, &mut pixels, &mut labels)?;
    }
    Ok(ImageSet {
        shape: [3, 32, 32],
        pixels,
        labels,
        classes: CLASSES,
    })
}

/// Reads the batches of `split` from `folder`.
pub fn load(folder: &Path, split: Split) -> Result<ImageSet, LoadError> {
    read(&locate(folder, split)?)
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = Cifar10Params::from_raw(raw)?;
    let invalid = |e: LoadError| raw.invalid("path", e.message, e.fix);
    let files = locate(Path::new(&params.path), params.split).map_err(invalid)?;
    let stamps: Vec<String> = files.iter().map(|f| images::stamp(f)).collect();
    let set = images::cached(format!("cifar10 {}", stamps.join(" ")), || {
        let set = read(&files)?;
        images::check_items(&set, &files[0])?;
        Ok(set)
    })
    .map_err(invalid)?;
    Ok(Built::new(Box::new(ImageDataset::new(set)), &params))
}

inventory::submit! {
    Plugin {
        name: "cifar10",
        about: "CIFAR-10 binary batches from a folder, labelled, [3, 32, 32]",
        params: Cifar10Params::docs,
        build: Builder::Dataset(build),
    }
}
