//! Nothing is written through a link planted inside the results folder: a link where the
//! sweep keeps one of its folders is replaced by a real folder (the link's target is left
//! as it was), as links at `trials/<id>`, `tb/<id>` and the tables already are.

use std::fs;

use crate::common::{sweep, write, SMALL_GMM};

#[test]
fn links_planted_at_the_sweeps_folders_are_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", SMALL_GMM);
    let results = dir.path().join("results");
    let folder = results.join("exp");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&folder).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep.txt"), "untouched").unwrap();
    let planted = ["plots", "tb", "models", "features", "trials"];
    for name in planted {
        std::os::unix::fs::symlink(&outside, folder.join(name)).unwrap();
    }
    let report = sweep(&file, &[], &results).unwrap();
    assert_eq!(report.failed, 0);
    let outside_now: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        outside_now,
        vec!["keep.txt"],
        "nothing written through a link"
    );
    for name in ["plots", "tb", "models", "trials"] {
        let meta = fs::symlink_metadata(folder.join(name)).unwrap();
        assert!(meta.is_dir() && !meta.file_type().is_symlink(), "{name}");
    }
    assert!(folder.join("plots").join("loss_curves.png").is_file());
}
