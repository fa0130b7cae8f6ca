//! Image files: `mnist`, `cifar10` and `image_folder` read back exactly what a test wrote in
//! their formats, split their items without overlap, and name the file and what was expected
//! when a file is missing or bad.

use std::io::Write;
use std::path::Path;

use scorelab::dataset::Samples;
use scorelab::images::{unit, ImageDataset, LoadError, Split};
use scorelab::plugins::datasets::image_folder::{self, Resize};
use scorelab::plugins::datasets::{cifar10, mnist};

use crate::common::{resolve, resolve_error};
use crate::image_data::experiment;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub(crate) fn idx_images(n: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [2051, n, rows, cols] {
        out.extend((word as u32).to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(2049u32.to_be_bytes());
    out.extend((labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// Item i's pixel p: distinct across items and positions (mod 256).
fn pattern(n: usize, d: usize) -> Vec<u8> {
    (0..n * d)
        .map(|k| ((k / d) * 37 + (k % d) * 7) as u8)
        .collect()
}

fn assert_item(samples: &Samples, row: usize, bytes: &[u8]) {
    let expected: Vec<f64> = bytes.iter().map(|&p| f64::from(p) / 127.5 - 1.0).collect();
    assert_eq!(samples.row(row), expected.as_slice(), "item {row}");
}

/// A folder with 3 training images (plain files) and 4 test images (gzipped).
fn mnist_folder() -> (tempfile::TempDir, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let train = pattern(3, 784);
    let test = pattern(4, 784)
        .iter()
        .map(|p| p.wrapping_add(100))
        .collect::<Vec<_>>();
    let p = dir.path();
    std::fs::write(
        p.join("train-images-idx3-ubyte"),
        idx_images(3, 28, 28, &train),
    )
    .unwrap();
    std::fs::write(p.join("train-labels-idx1-ubyte"), idx_labels(&[7, 0, 9])).unwrap();
    std::fs::write(
        p.join("t10k-images-idx3-ubyte.gz"),
        gzip(&idx_images(4, 28, 28, &test)),
    )
    .unwrap();
    std::fs::write(
        p.join("t10k-labels-idx1-ubyte.gz"),
        gzip(&idx_labels(&[1, 2, 3, 4])),
    )
    .unwrap();
    (dir, train, test)
}

#[test]
fn mnist_reads_plain_and_gzipped_idx_exactly() {
    let (dir, train, test) = mnist_folder();
    let set = mnist::load(dir.path(), Split::Train, false).unwrap();
    assert_eq!(
        (set.shape, set.labels.clone(), set.classes),
        ([1, 28, 28], vec![7, 0, 9], 10)
    );
    let all = ImageDataset::new(set.into()).images().samples(&[0, 1, 2]);
    for i in 0..3 {
        assert_item(&all, i, &train[i * 784..(i + 1) * 784]);
    }
    assert_eq!(all.labels(), Some(&[7, 0, 9][..]));

    let set = mnist::load(dir.path(), Split::Test, false).unwrap();
    assert_eq!(set.labels, vec![1, 2, 3, 4]);
    assert_eq!(set.pixels, test);

    let padded = mnist::load(dir.path(), Split::Train, true).unwrap();
    assert_eq!(padded.shape, [1, 32, 32]);
    let item = padded.item(1);
    for r in 0..32 {
        for c in 0..32 {
            let inside = (2..30).contains(&r) && (2..30).contains(&c);
            let expected = if inside {
                train[784 + (r - 2) * 28 + (c - 2)]
            } else {
                0
            };
            assert_eq!(item[r * 32 + c], expected, "({r}, {c})");
        }
    }
}

#[test]
fn mnist_through_the_registry_splits_without_overlap() {
    let (dir, _, test) = mnist_folder();
    let data = format!(
        "{{kind: mnist, path: '{}', split: test}}",
        dir.path().display()
    );
    let trials = resolve(&experiment(&data, 2, 2), &[]).unwrap();
    let (training, held_out) = (&trials[0].training_data, &trials[0].held_out);
    assert_eq!(training.shape(), &[1, 28, 28]);
    assert_eq!((training.len(), held_out.len()), (2, 2));
    assert_eq!(trials[0].dataset.classes(), 5);
    // Together they are the 4 test images, each with its own label, none twice.
    let mut seen = Vec::new();
    for set in [training, held_out] {
        for (i, &label) in set.labels().unwrap().iter().enumerate() {
            let k = label as usize - 1;
            assert_item(set, i, &test[k * 784..(k + 1) * 784]);
            seen.push(k);
        }
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3]);

    // Asking for more than there is: the held-out set keeps all but one item.
    let trials = resolve(&experiment(&data, 10, 10), &[]).unwrap();
    assert_eq!(
        (trials[0].training_data.len(), trials[0].held_out.len()),
        (1, 3)
    );
}

fn message(result: Result<impl std::fmt::Debug, LoadError>) -> String {
    result.expect_err("expected an error").to_string()
}

#[test]
fn mnist_bad_files_name_the_path_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let missing = message(mnist::load(&p.join("nowhere"), Split::Train, false));
    assert!(
        missing.contains("nowhere") && missing.contains("not found"),
        "{missing}"
    );
    let missing = message(mnist::load(p, Split::Train, false));
    assert!(
        missing.contains("train-images-idx3-ubyte(.gz) not found"),
        "{missing}"
    );
    assert!(missing.contains("`data.path`"), "{missing}");

    let images = p.join("train-images-idx3-ubyte");
    let labels = p.join("train-labels-idx1-ubyte");
    std::fs::write(&labels, idx_labels(&[1, 2])).unwrap();
    // Wrong magic: a label file's magic number on an image file.
    let mut bytes = idx_images(2, 28, 28, &pattern(2, 784));
    bytes[..4].copy_from_slice(&2049u32.to_be_bytes());
    std::fs::write(&images, &bytes).unwrap();
    let wrong = message(mnist::load(p, Split::Train, false));
    assert!(wrong.contains(&images.display().to_string()), "{wrong}");
    assert!(
        wrong.contains("magic number 2049, expected 2051"),
        "{wrong}"
    );
    // Truncated: the header promises two images, one and a half follow.
    let mut bytes = idx_images(2, 28, 28, &pattern(2, 784));
    bytes.truncate(16 + 784 + 392);
    std::fs::write(&images, &bytes).unwrap();
    let short = message(mnist::load(p, Split::Train, false));
    assert!(short.contains(&images.display().to_string()), "{short}");
    assert!(short.contains("1192 bytes, expected 1584"), "{short}");
    // A broken gzip stream.
    std::fs::remove_file(&images).unwrap();
    let gz = p.join("train-images-idx3-ubyte.gz");
    let mut zipped = gzip(&idx_images(2, 28, 28, &pattern(2, 784)));
    zipped.truncate(zipped.len() / 2);
    std::fs::write(&gz, zipped).unwrap();
    let broken = message(mnist::load(p, Split::Train, false));
    assert!(
        broken.contains(&gz.display().to_string()) && broken.contains("gzip"),
        "{broken}"
    );
    // Counts that disagree.
    std::fs::write(&gz, gzip(&idx_images(3, 28, 28, &pattern(3, 784)))).unwrap();
    let counts = message(mnist::load(p, Split::Train, false));
    assert!(
        counts.contains("3 images but") && counts.contains("2 labels"),
        "{counts}"
    );

    // Through the registry: a config error on `data.path` that names the file.
    let data = format!("{{kind: mnist, path: '{}'}}", p.join("absent").display());
    let error = resolve_error(&experiment(&data, 2, 2), &[]);
    assert!(
        error.contains("`data.path`") && error.contains("absent"),
        "{error}"
    );
}

// ---------- cifar10 ----------

fn cifar_batch(labels: &[u8], salt: u8) -> (Vec<u8>, Vec<u8>) {
    let pixels = pattern(labels.len(), 3072)
        .iter()
        .map(|p| p.wrapping_add(salt))
        .collect::<Vec<_>>();
    let mut file = Vec::new();
    for (i, &label) in labels.iter().enumerate() {
        file.push(label);
        file.extend_from_slice(&pixels[i * 3072..(i + 1) * 3072]);
    }
    (file, pixels)
}

#[test]
fn cifar10_reads_batches_exactly_and_names_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (first, first_pixels) = cifar_batch(&[3, 9, 0], 0);
    let (third, third_pixels) = cifar_batch(&[5], 11);
    std::fs::write(p.join("data_batch_1.bin"), first).unwrap();
    std::fs::write(p.join("data_batch_3.bin"), third).unwrap();
    let set = cifar10::load(p, Split::Train).unwrap();
    assert_eq!((set.shape, set.classes), ([3, 32, 32], 10));
    assert_eq!(set.labels, vec![3, 9, 0, 5]);
    let samples = ImageDataset::new(set.into()).images().samples(&[2, 3]);
    // Planes in file order: red, green, blue.
    assert_item(&samples, 0, &first_pixels[2 * 3072..]);
    assert_item(&samples, 1, &third_pixels);
    assert_eq!(samples.row(0)[1024], unit(first_pixels[2 * 3072 + 1024]));

    let missing = message(cifar10::load(p, Split::Test));
    assert!(
        missing.contains(&p.display().to_string()) && missing.contains("test_batch.bin"),
        "{missing}"
    );
    let bad = p.join("test_batch.bin");
    std::fs::write(&bad, vec![0u8; 3073 * 2 + 5]).unwrap();
    let length = message(cifar10::load(p, Split::Test));
    assert!(length.contains(&bad.display().to_string()), "{length}");
    assert!(
        length.contains("6151 bytes") && length.contains("multiple of 3073"),
        "{length}"
    );
    let (mut labelled, _) = cifar_batch(&[1, 2], 0);
    labelled[3073] = 12;
    std::fs::write(&bad, labelled).unwrap();
    let label = message(cifar10::load(p, Split::Test));
    assert!(label.contains("record 1 has label 12"), "{label}");

    let data = format!("{{kind: cifar10, path: '{}'}}", p.display());
    let trials = resolve(&experiment(&data, 2, 2), &[]).unwrap();
    assert_eq!(trials[0].training_data.shape(), &[3, 32, 32]);
    assert_eq!(
        (trials[0].training_data.len(), trials[0].held_out.len()),
        (2, 2)
    );
    assert_eq!(trials[0].dataset.classes(), 10);
}

// ---------- image_folder ----------

fn png(path: &Path, width: u32, height: u32, rgb: &[u8]) {
    image::RgbImage::from_raw(width, height, rgb.to_vec())
        .unwrap()
        .save(path)
        .unwrap();
}

/// CHW planes of interleaved RGB bytes.
fn planes(rgb: &[u8]) -> Vec<u8> {
    (0..3)
        .flat_map(|c| rgb.iter().skip(c).step_by(3).copied())
        .collect()
}

#[test]
fn image_folder_reads_classes_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for class in ["cat", "dog"] {
        std::fs::create_dir(root.join(class)).unwrap();
    }
    let images: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            pattern(1, 48)
                .iter()
                .map(|p| p.wrapping_add(60 * i))
                .collect()
        })
        .collect();
    png(&root.join("dog/a.png"), 4, 4, &images[0]);
    png(&root.join("dog/b.png"), 4, 4, &images[1]);
    png(&root.join("cat/x.png"), 4, 4, &images[2]);
    // 8 wide, 4 high: the centred 4 x 4 square is columns 2..6.
    let wide: Vec<u8> = (0..8 * 4 * 3).map(|k| (k * 5) as u8).collect();
    png(&root.join("cat/y.png"), 8, 4, &wide);
    std::fs::write(root.join("cat/notes.txt"), "ignored").unwrap();
    // A flat-coloured JPEG: lossy, so compared loosely.
    image::RgbImage::from_pixel(4, 4, image::Rgb([200, 40, 90]))
        .save(root.join("dog/c.jpg"))
        .unwrap();

    let set = image_folder::load(root, 4, 3, Resize::Crop).unwrap();
    assert_eq!((set.shape, set.classes), ([3, 4, 4], 2));
    assert_eq!(
        set.labels,
        vec![0, 0, 1, 1, 1],
        "cat = 0, dog = 1; files sorted"
    );
    assert_eq!(set.item(0), planes(&images[2]).as_slice());
    let centre: Vec<u8> = (0..4)
        .flat_map(|row| wide[(row * 8 + 2) * 3..(row * 8 + 6) * 3].to_vec())
        .collect();
    assert_eq!(set.item(1), planes(&centre).as_slice());
    assert_eq!(set.item(2), planes(&images[0]).as_slice());
    assert_eq!(set.item(3), planes(&images[1]).as_slice());
    let jpeg = set.item(4);
    for (c, want) in [200u8, 40, 90].iter().enumerate() {
        assert!(
            jpeg[c * 16..(c + 1) * 16]
                .iter()
                .all(|v| v.abs_diff(*want) <= 6),
            "{jpeg:?}"
        );
    }

    // Grey, and a resize: a flat image stays flat; the wide one stretched keeps its size.
    let grey = image_folder::load(root, 2, 1, Resize::Stretch).unwrap();
    assert_eq!(grey.shape, [1, 2, 2]);
    let luma =
        image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(4, 4, images[2].clone()).unwrap())
            .to_luma8();
    let small = image::imageops::resize(&luma, 2, 2, image::imageops::FilterType::Triangle);
    assert_eq!(grey.item(0), small.as_raw().as_slice());
    let flat = grey.item(4)[0];
    assert!(grey.item(4).iter().all(|v| v.abs_diff(flat) <= 2));

    let data = format!(
        "{{kind: image_folder, path: '{}', size: 4}}",
        root.display()
    );
    let trials = resolve(&experiment(&data, 3, 2), &[]).unwrap();
    assert_eq!(trials[0].training_data.shape(), &[3, 4, 4]);
    assert_eq!(trials[0].dataset.classes(), 2);
    let held = &trials[0].held_out;
    for (i, label) in held.labels().unwrap().iter().enumerate() {
        assert!(*label < 2);
        assert!(held.row(i).iter().all(|v| (-1.0..=1.0).contains(v)));
    }
}

#[test]
fn image_folder_errors_name_the_folder_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let missing = message(image_folder::load(&root.join("gone"), 4, 3, Resize::Crop));
    assert!(
        missing.contains("gone") && missing.contains("not found"),
        "{missing}"
    );
    let empty = message(image_folder::load(root, 4, 3, Resize::Crop));
    assert!(empty.contains("no class subfolders"), "{empty}");
    std::fs::create_dir(root.join("a")).unwrap();
    let none = message(image_folder::load(root, 4, 3, Resize::Crop));
    assert!(
        none.contains(&root.join("a").display().to_string()) && none.contains("no PNG or JPEG"),
        "{none}"
    );
    png(&root.join("a/ok.png"), 2, 2, &[0; 12]);
    std::fs::write(root.join("a/broken.png"), b"not an image").unwrap();
    let broken = message(image_folder::load(root, 4, 3, Resize::Crop));
    assert!(
        broken.contains(&root.join("a/broken.png").display().to_string()),
        "{broken}"
    );
    assert!(broken.contains("does not decode"), "{broken}");
    std::fs::remove_file(root.join("a/broken.png")).unwrap();
    // One image cannot be split into training and held-out sets.
    let data = format!(
        "{{kind: image_folder, path: '{}', size: 4}}",
        root.display()
    );
    let one = resolve_error(&experiment(&data, 2, 2), &[]);
    assert!(
        one.contains("`data.path`") && one.contains("at least 2"),
        "{one}"
    );
}
