//! `mnist`: MNIST (or any dataset in its IDX format, e.g. Fashion-MNIST) read from a folder:
//! `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`, or the `t10k-*` pair for the test
//! split, each plain or gzipped. Loaded when the experiment is resolved; items are kept as
//! bytes and converted to [-1, 1] when drawn. Shape `[1, rows, cols]` (28 x 28 for MNIST);
//! the number of classes is the largest label + 1 (10 for MNIST).

use std::path::{Path, PathBuf};

use scorelab::config::{Params, RawParams};
use scorelab::dataset::Dataset;
use scorelab::images::{self, ImageDataset, ImageSet, LoadError, Split};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};

params! {
    /// Parameters of `mnist`.
    pub struct MnistParams {
        /// Folder with the IDX files, relative to the working directory.
        path: String = "data/mnist".to_string(),
        /// `train` (the `train-*` files) or `test` (the `t10k-*` files).
        split: Split = Split::Train,
        /// Pad each image with background (pixel 0) to 32 x 32: 2 pixels a side for 28 x 28.
        pad_to_32: bool = false,
    }
}

/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub const LABELS_MAGIC: u32 = 2049;

const FIX: &str = "put the MNIST IDX files there (gzipped or not) or set `data.path`";

fn header(bytes: &[u8], words: usize, file: &Path) -> Result<Vec<u32>, LoadError> {
    if bytes.len() < 4 * words {
        return Err(LoadError::new(
            format!(
                "{} is truncated: {} bytes, shorter than its {}-byte IDX header",
                file.display(),
                bytes.len(),
                4 * words
            ),
            "download the file again",
        ));
    }
    Ok(bytes[..4 * words]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn check_magic(found: u32, expected: u32, what: &str, file: &Path) -> Result<(), LoadError> {
    if found != expected {
        return Err(LoadError::new(
            format!(
                "{} is not an IDX {what} file: magic number {found}, expected {expected}",
                file.display()
            ),
            format!("give the {what} file (`*-{what}-idx*-ubyte`, gzipped or not)"),
        ));
    }
    Ok(())
}

fn check_length(bytes: &[u8], expected: usize, counts: &str, file: &Path) -> Result<(), LoadError> {
    if bytes.len() != expected {
        return Err(LoadError::new(
            format!(
                "{} has {} bytes, expected {expected} for {counts}",
                file.display(),
                bytes.len()
            ),
            "the file is truncated or damaged: download it again",
        ));
    }
    Ok(())
}

/// Parses an IDX image file: (count, rows, cols, pixels).
pub fn parse_images(
    bytes: &[u8],
    file: &Path,
) -> Result<(usize, usize, usize, Vec<u8>), LoadError> {
    let h = header(bytes, 4, file)?;
    check_magic(h[0], IMAGES_MAGIC, "images", file)?;
    let (n, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    if rows == 0 || cols == 0 {
        return Err(LoadError::new(
            format!("{} declares {rows} x {cols} images", file.display()),
            "give an IDX image file with non-empty images",
        ));
    }
    let counts = format!("{n} images of {rows} x {cols} after a 16-byte header");
    let expected = n
        .checked_mul(rows * cols)
        .and_then(|v| v.checked_add(16))
        .ok_or_else(|| {
            LoadError::new(
                format!("{} declares {counts}: too large", file.display()),
                "the header is damaged: download the file again",
            )
        })?;
    check_length(bytes, expected, &counts, file)?;
    Ok((n, rows, cols, bytes[16..].to_vec()))
}

/// Parses an IDX label file.
pub fn parse_labels(bytes: &[u8], file: &Path) -> Result<Vec<u32>, LoadError> {
    let h = header(bytes, 2, file)?;
    check_magic(h[0], LABELS_MAGIC, "labels", file)?;
    let n = h[1] as usize;
    check_length(
        bytes,
        8 + n,
        &format!("{n} labels after an 8-byte header"),
        file,
    )?;
    Ok(bytes[8..].iter().map(|&b| u32::from(b)).collect())
}

/// Where the file `{prefix}-{what}-idx{dims}-ubyte` is in `folder`: its usual name, the
/// `{prefix}-{what}.idx{dims}-ubyte` spelling some mirrors use, each with or without `.gz`.
pub fn locate(folder: &Path, prefix: &str, what: &str, dims: u32) -> Result<PathBuf, LoadError> {
    let name = format!("{prefix}-{what}-idx{dims}-ubyte");
    let dotted = format!("{prefix}-{what}.idx{dims}-ubyte");
    let candidates: Vec<PathBuf> = [&name, &dotted]
        .iter()
        .flat_map(|n| [folder.join(n), folder.join(format!("{n}.gz"))])
        .collect();
    images::first_existing(&candidates).ok_or_else(|| {
        LoadError::new(
            format!("{}(.gz) not found", folder.join(&name).display()),
            FIX,
        )
    })
}

fn prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "t10k",
    }
}

/// Reads the image and label files of `split` from `folder`.
pub fn load(folder: &Path, split: Split, pad_to_32: bool) -> Result<ImageSet, LoadError> {
    let (images_file, labels_file) = files(folder, split)?;
    read(&images_file, &labels_file, pad_to_32)
}

fn files(folder: &Path, split: Split) -> Result<(PathBuf, PathBuf), LoadError> {
    if !folder.is_dir() {
        return Err(LoadError::new(
            format!("MNIST folder {} not found", folder.display()),
            FIX,
        ));
    }
    Ok((
        locate(folder, prefix(split), "images", 3)?,
        locate(folder, prefix(split), "labels", 1)?,
    ))
}

fn read(images_file: &Path, labels_file: &Path, pad_to_32: bool) -> Result<ImageSet, LoadError> {
    let (n, rows, cols, pixels) = parse_images(&images::read_maybe_gz(images_file)?, images_file)?;
    let labels = parse_labels(&images::read_maybe_gz(labels_file)?, labels_file)?;
    if labels.len() != n {
        return Err(LoadError::new(
            format!(
                "{} holds {n} images but {} holds {} labels",
                images_file.display(),
                labels_file.display(),
                labels.len()
            ),
            "give the image and label files of one split",
        ));
    }
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let set = ImageSet {
        shape: [1, rows, cols],
        pixels,
        labels,
        classes,
    };
    if pad_to_32 {
        pad(&set, 32, images_file)
    } else {
        Ok(set)
    }
}

/// The images centred on a `size` x `size` canvas of background (pixel 0).
fn pad(set: &ImageSet, size: usize, file: &Path) -> Result<ImageSet, LoadError> {
    let [_, rows, cols] = set.shape;
    if rows > size || cols > size {
        return Err(LoadError::new(
            format!(
                "`pad_to_32` needs images of at most {size} x {size}; {} holds {rows} x {cols}",
                file.display()
            ),
            "set `pad_to_32: false`",
        ));
    }
    let (top, left) = ((size - rows) / 2, (size - cols) / 2);
    let mut pixels = vec![0u8; set.len() * size * size];
    for (i, canvas) in pixels.chunks_exact_mut(size * size).enumerate() {
        for (r, row) in set.item(i).chunks_exact(cols).enumerate() {
            let start = (top + r) * size + left;
            canvas[start..start + cols].copy_from_slice(row);
        }
    }
    Ok(ImageSet {
        shape: [1, size, size],
        pixels,
        labels: set.labels.clone(),
        classes: set.classes,
    })
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = MnistParams::from_raw(raw)?;
    let folder = Path::new(&params.path);
    let invalid = |e: LoadError| raw.invalid("path", e.message, e.fix);
    let (images_file, labels_file) = files(folder, params.split).map_err(invalid)?;
    let key = format!(
        "mnist {} {} {}",
        images::stamp(&images_file),
        images::stamp(&labels_file),
        params.pad_to_32
    );
    let set = images::cached(key, || {
        let set = read(&images_file, &labels_file, params.pad_to_32)?;
        images::check_items(&set, &images_file)?;
        Ok(set)
    })
    .map_err(invalid)?;
    Ok(Built::new(Box::new(ImageDataset::new(set)), &params))
}

inventory::submit! {
    Plugin {
        name: "mnist",
        about: "MNIST-format IDX files from a folder (gzipped or not), labelled, [1, 28, 28]",
        params: MnistParams::docs,
        build: Builder::Dataset(build),
    }
}
