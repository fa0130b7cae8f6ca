//! Round trips of the event writer and reader.

use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

use super::error::TensorBoardError;
use super::event::{Event, What};
use super::reader::{event_files, read_events, EventValue};
use super::record::{frame_record, masked_crc};
use super::writer::EventWriter;

/// A PNG header for a `width` x `height` RGB image; enough for these tests,
/// which only move bytes around.
fn fake_png(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0]);
    png
}

fn only_file(dir: &Path) -> PathBuf {
    let files = event_files(dir).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[test]
fn crc32c_and_mask_match_known_values() {
    let crc = crc32c::crc32c(b"123456789");
    assert_eq!(crc, 0xE306_9283);
    // Spelled out as TFRecord's documentation writes it, to check `rotate_right`.
    #[allow(clippy::manual_rotate)]
    let expected = ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8);
    assert_eq!(masked_crc(b"123456789"), expected);
    // Computed separately in Python from the formula above.
    assert_eq!(expected, 0xC78A_B0E5);
}

#[test]
fn scalars_and_images_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = EventWriter::create(dir.path()).unwrap();
    assert_eq!(only_file(dir.path()), writer.path());
    assert!(read_events(writer.path()).unwrap().is_empty());

    let png = fake_png(40, 20);
    writer.add_scalar("loss/train", 0.5, 1);
    writer.add_scalar("loss/train", 0.25, 2);
    writer.add_png("samples", &png, 40, 20, 2);
    writer.flush().unwrap();
    writer.add_scalar("eval/mmd", -3.0, 7);
    writer.flush().unwrap();

    let events = read_events(&only_file(dir.path())).unwrap();
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.step, e.tag.as_str(), e.value.clone()))
        .collect();
    let image = EventValue::Image {
        width: 40,
        height: 20,
        png,
    };
    assert_eq!(
        got,
        vec![
            (1, "loss/train", EventValue::Scalar(0.5)),
            (2, "loss/train", EventValue::Scalar(0.25)),
            (2, "samples", image),
            (7, "eval/mmd", EventValue::Scalar(-3.0)),
        ]
    );
    assert!(events.iter().all(|e| e.wall_time > 1.0e9));
}

#[test]
fn corrupted_byte_is_a_crc_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = EventWriter::create(dir.path()).unwrap();
    writer.add_scalar("x", 1.0, 0);
    writer.flush().unwrap();
    let mut bytes = fs::read(writer.path()).unwrap();

    // Flip a bit in the last record's data (its last byte is just before the CRC).
    let data_byte = bytes.len() - 5;
    bytes[data_byte] ^= 0x01;
    fs::write(writer.path(), &bytes).unwrap();
    let err = read_events(writer.path()).unwrap_err();
    assert!(
        matches!(err, TensorBoardError::Crc { part: "data", .. }),
        "{err}"
    );

    // A damaged length header is caught by its own CRC.
    bytes[data_byte] ^= 0x01;
    bytes[0] ^= 0x01;
    fs::write(writer.path(), &bytes).unwrap();
    let err = read_events(writer.path()).unwrap_err();
    assert!(
        matches!(
            err,
            TensorBoardError::Crc {
                part: "length",
                offset: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = EventWriter::create(dir.path()).unwrap();
    writer.add_scalar("x", 1.0, 0);
    writer.flush().unwrap();
    let bytes = fs::read(writer.path()).unwrap();
    fs::write(writer.path(), &bytes[..bytes.len() - 2]).unwrap();
    let err = read_events(writer.path()).unwrap_err();
    assert!(matches!(err, TensorBoardError::Truncated { .. }), "{err}");
}

#[test]
fn first_record_must_be_the_file_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.out.tfevents.0.test");
    let mut bytes = Vec::new();
    let event = Event {
        wall_time: 0.0,
        step: 0,
        what: Some(What::FileVersion("brain.Event:1".to_owned())),
    };
    frame_record(&mut bytes, &event.encode_to_vec());
    fs::write(&path, &bytes).unwrap();
    let err = read_events(&path).unwrap_err();
    assert!(matches!(err, TensorBoardError::Format { .. }), "{err}");

    fs::write(&path, b"").unwrap();
    assert!(read_events(&path).is_err());
}

#[test]
fn unwritable_folder_fails_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"not a folder").unwrap();
    let err = EventWriter::create(&blocker.join("tb")).unwrap_err();
    assert!(matches!(err, TensorBoardError::Io { .. }), "{err}");
    assert!(err.to_string().contains("file"), "{err}");
}

#[test]
fn writers_in_the_same_second_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let mut writers: Vec<EventWriter> = (0..3)
        .map(|_| EventWriter::create(dir.path()).unwrap())
        .collect();
    for (step, writer) in writers.iter_mut().enumerate() {
        writer.add_scalar("x", 1.0, step as i64);
        writer.flush().unwrap();
    }
    let files = event_files(dir.path()).unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
    for (step, writer) in writers.iter().enumerate() {
        let events = read_events(writer.path()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].step, step as i64);
    }
}

#[test]
fn event_files_ignores_other_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), b"").unwrap();
    fs::create_dir(dir.path().join("tfevents_dir")).unwrap();
    let writer = EventWriter::create(dir.path()).unwrap();
    assert_eq!(
        event_files(dir.path()).unwrap(),
        vec![writer.path().to_owned()]
    );
}
