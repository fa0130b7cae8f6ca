use scorelab::registry::{self, Kind};

#[test]
fn every_kind_has_plugins_and_no_duplicates() {
    registry::check().expect("no duplicate names");
    for kind in Kind::ALL {
        assert!(!registry::plugins(kind).is_empty(), "no {kind} registered");
    }
    let datasets = registry::names(Kind::Dataset);
    for name in ["gmm", "swiss_roll", "moons", "checkerboard", "rings"] {
        assert!(datasets.contains(&name), "{name} missing from {datasets:?}");
    }
    let metrics = registry::names(Kind::Metric);
    for name in [
        "fd",
        "mmd",
        "sliced_wasserstein",
        "nll_true",
        "mode_weights",
    ] {
        assert!(metrics.contains(&name), "{name} missing from {metrics:?}");
    }
}

#[test]
fn unknown_name_lists_the_registered_ones_and_the_nearest() {
    let unknown = registry::find(Kind::Sampler, "anealed_langevin")
        .err()
        .expect("unknown");
    assert_eq!(unknown.suggestion, Some("annealed_langevin"));
    let fix = unknown.fix();
    assert!(fix.contains("did you mean `annealed_langevin`"), "{fix}");
    for name in registry::names(Kind::Sampler) {
        assert!(fix.contains(name), "{fix} lacks {name}");
    }
    let far = registry::find(Kind::Metric, "zzzzzz")
        .err()
        .expect("unknown");
    assert_eq!(far.suggestion, None);
    assert!(far.fix().contains("mode_weights"));
}

#[test]
fn every_parameter_is_documented_with_a_default() {
    for kind in Kind::ALL {
        for plugin in registry::plugins(kind) {
            assert!(
                !plugin.about.is_empty(),
                "{} has no description",
                plugin.name
            );
            for param in (plugin.params)() {
                assert!(
                    !param.doc.is_empty(),
                    "{}.{} has no doc",
                    plugin.name,
                    param.name
                );
                assert!(
                    !param.default.is_empty() && param.default != "?",
                    "{}.{} has no default",
                    plugin.name,
                    param.name
                );
            }
        }
    }
    let listing = scorelab::cli::plugin_listing(&Kind::ALL);
    for needle in [
        "annealed_langevin",
        "steps_per_level",
        "default 100",
        "sigma_max",
        "\"auto\"",
        "batch_size",
    ] {
        assert!(
            listing.contains(needle),
            "listing lacks {needle}:\n{listing}"
        );
    }
}
