//! `image_folder`: PNG and JPEG files from a folder with one subfolder per class (subfolder
//! names sorted: the first is label 0). Every image is converted to grey or RGB and brought
//! to `size` x `size`: by default its centred square is cut out and resized with a triangle
//! (bilinear, area-averaging when shrinking) filter; `resize: stretch` resizes the whole image
//! instead. An image already of the target size is kept exactly. Loaded when the experiment
//! is resolved; shape `[channels, size, size]`.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::DynamicImage;
use scorelab::config::{Params, RawParams};
use scorelab::dataset::Dataset;
use scorelab::images::{self, ImageDataset, ImageSet, LoadError};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use serde::{Deserialize, Serialize};

/// How an image that is not `size` x `size` is brought to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// Cut out the centred square, then resize it (keeps the aspect ratio).
    Crop,
    /// Resize the whole image (distorts non-square images).
    Stretch,
}

params! {
    /// Parameters of `image_folder`.
    pub struct ImageFolderParams {
        /// Folder with one subfolder of PNG/JPEG files per class, relative to the working
        /// directory. Other files (without a .png, .jpg or .jpeg extension) are ignored.
        path: String = "data/images".to_string(),
        /// Side of the square images, in pixels (1 to 512).
        size: usize = 32 => 0..=scorelab::config::limits::MAX_SIDE,
        /// 1 (grey) or 3 (RGB).
        channels: usize = 3 => 0..=64,
        /// `crop` (centred square, then resize) or `stretch` (resize the whole image); the
        /// filter is a triangle (bilinear) one.
        resize: Resize = Resize::Crop,
    }
}

const FIX: &str = "put one subfolder of PNG/JPEG images per class there or set `data.path`";

fn is_image(path: &Path) -> bool {
    path.is_file()
        && path.extension().is_some_and(|e| {
            let e = e.to_string_lossy().to_ascii_lowercase();
            e == "png" || e == "jpg" || e == "jpeg"
        })
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read = std::fs::read_dir(dir)
        .map_err(|e| LoadError::new(format!("cannot read folder {}: {e}", dir.display()), FIX))?;
    let mut paths: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// The class names (sorted) and each class's image files (sorted), checked non-empty.
pub fn locate(folder: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, LoadError> {
    if !folder.is_dir() {
        return Err(LoadError::new(
            format!("image folder {} not found", folder.display()),
            FIX,
        ));
    }
    let classes: Vec<PathBuf> = entries(folder)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if classes.is_empty() {
        return Err(LoadError::new(
            format!(
                "{} has no class subfolders: expected one subfolder of PNG/JPEG files per class",
                folder.display()
            ),
            FIX,
        ));
    }
    let mut out = Vec::new();
    for class in classes {
        let files: Vec<PathBuf> = entries(&class)?
            .into_iter()
            .filter(|p| is_image(p))
            .collect();
        if files.is_empty() {
            return Err(LoadError::new(
                format!(
                    "class folder {} holds no PNG or JPEG files (.png, .jpg, .jpeg)",
                    class.display()
                ),
                "add images to it or remove it",
            ));
        }
        let name = class
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into());
        out.push((name, files));
    }
    Ok(out)
}

/// One image file as `channels x size x size` bytes (planes, row-major).
pub fn decode(
    file: &Path,
    size: usize,
    channels: usize,
    resize: Resize,
) -> Result<Vec<u8>, LoadError> {
    let decoded = image::io::Reader::open(file)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| {
            LoadError::new(
                format!("cannot read {}: {e}", file.display()),
                "check the file is readable",
            )
        })?
        .decode()
        .map_err(|e| {
            LoadError::new(
                format!(
                    "{} does not decode as a PNG or JPEG image: {e}",
                    file.display()
                ),
                "replace or remove the file",
            )
        })?;
    let image = match channels {
        1 => DynamicImage::ImageLuma8(decoded.to_luma8()),
        _ => DynamicImage::ImageRgb8(decoded.to_rgb8()),
    };
    let image = match resize {
        Resize::Crop => {
            let (w, h) = (image.width(), image.height());
            let side = w.min(h);
            image.crop_imm((w - side) / 2, (h - side) / 2, side, side)
        }
        Resize::Stretch => image,
    };
    let side = size as u32;
    let image = if (image.width(), image.height()) == (side, side) {
        image
    } else {
        image.resize_exact(side, side, FilterType::Triangle)
    };
    // Interleaved (HWC) bytes into planes (CHW).
    let hwc = image.into_bytes();
    let plane = size * size;
    let mut chw = vec![0u8; channels * plane];
    for (p, pixel) in hwc.chunks_exact(channels).enumerate() {
        for (c, &v) in pixel.iter().enumerate() {
            chw[c * plane + p] = v;
        }
    }
    Ok(chw)
}

/// Reads every class's images.
pub fn read(
    classes: &[(String, Vec<PathBuf>)],
    size: usize,
    channels: usize,
    resize: Resize,
) -> Result<ImageSet, LoadError> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (label, (_, files)) in classes.iter().enumerate() {
        for file in files {
            pixels.extend(decode(file, size, channels, resize)?);
            labels.push(label as u32);
        }
    }
    Ok(ImageSet {
        shape: [channels, size, size],
        pixels,
        labels,
        classes: classes.len(),
    })
}

/// Reads the image folder: classes from subfolder names, images brought to one size.
pub fn load(
    folder: &Path,
    size: usize,
    channels: usize,
    resize: Resize,
) -> Result<ImageSet, LoadError> {
    read(&locate(folder)?, size, channels, resize)
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = ImageFolderParams::from_raw(raw)?;
    if !(1..=512).contains(&params.size) {
        return Err(raw.invalid("size", "must be 1 to 512 pixels", "set e.g. `size: 32`"));
    }
    if params.channels != 1 && params.channels != 3 {
        return Err(raw.invalid(
            "channels",
            "must be 1 (grey) or 3 (RGB)",
            "set `channels: 1` or `channels: 3`",
        ));
    }
    let folder = Path::new(&params.path);
    let invalid = |e: LoadError| raw.invalid("path", e.message, e.fix);
    let classes = locate(folder).map_err(invalid)?;
    let stamps: Vec<String> = classes
        .iter()
        .flat_map(|(_, files)| files.iter().map(|f| images::stamp(f)))
        .collect();
    let key = format!(
        "image_folder {} {} {:?} {}",
        params.size,
        params.channels,
        params.resize,
        stamps.join(" ")
    );
    let set = images::cached(key, || {
        let set = read(&classes, params.size, params.channels, params.resize)?;
        images::check_items(&set, folder)?;
        Ok(set)
    })
    .map_err(invalid)?;
    Ok(Built::new(Box::new(ImageDataset::new(set)), &params))
}

inventory::submit! {
    Plugin {
        name: "image_folder",
        about: "PNG/JPEG images, one subfolder per class, resized to a square size",
        params: ImageFolderParams::docs,
        build: Builder::Dataset(build),
    }
}
