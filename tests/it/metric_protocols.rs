//! Metrics that line up: one metric listed twice under its own `name:` columns, the data's
//! own NLL taken on the likelihoods' points and in their unit, and `low_density`, the share of
//! samples below the true density's quantile, against its closed form.

use scorelab::dataset::Samples;
use scorelab::rng::Rng;

use crate::common::{resolve, resolve_error, SMALL_GMM};
use crate::metrics::measure;

fn with_eval(eval: &str) -> String {
    SMALL_GMM.replace("eval: [fd, mmd, mode_weights]", &format!("eval: {eval}"))
}

#[test]
fn a_metric_listed_twice_takes_the_names_given_as_its_columns() {
    let eval = "[mode_weights, {kind: mode_weights, assign: nearest, name: mode_weights_nearest}]";
    let trials = resolve(&with_eval(eval), &[]).unwrap();
    let columns: Vec<&str> = trials[0].metrics.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(columns, ["mode_weights", "mode_weights_nearest"]);
    let recorded = &trials[0].resolved["eval"][1];
    assert_eq!(recorded["name"], "mode_weights_nearest");
    assert_eq!(recorded["assign"], "nearest");
    // Without a name the second is refused, and the fix says how to keep both.
    let message = resolve_error(&with_eval("[fd, {kind: fd}]"), &[]);
    assert!(
        message.contains("listed twice") && message.contains("name:"),
        "{message}"
    );
    for (name, words) in [
        ("Bad-Name", "lower-case"),
        ("nfe", "another column"),
        ("mmd", "another column"),
    ] {
        let eval = format!("[fd, {{kind: fd, name: {name}}}]");
        let message = resolve_error(&with_eval(&eval), &[]);
        assert!(
            message.contains("eval[1].name") && message.contains(words),
            "{message}"
        );
    }
}

#[test]
fn the_datas_own_nll_takes_the_likelihoods_points_and_unit() {
    let eval = "[{kind: nll_ode, points: 300}, {kind: nll_true, of: held_out}]";
    let trials = resolve(&with_eval(eval), &[]).unwrap();
    let nll_true = &trials[0].resolved["eval"][1];
    assert_eq!(nll_true["points"], 300);
    assert_eq!(nll_true["per_dim"], true);
    // Of samples it stays per point over every sample, as it always recorded.
    let trials = resolve(&with_eval("[nll_true]"), &[]).unwrap();
    let nll_true = &trials[0].resolved["eval"][0];
    assert_eq!(nll_true["per_dim"], false);
    assert_eq!(nll_true["points"], serde_json::Value::Null);
    // A number written by hand is kept.
    let eval = "[{kind: nll_ode, points: 300}, {kind: nll_true, of: held_out, points: 20}]";
    let trials = resolve(&with_eval(eval), &[]).unwrap();
    assert_eq!(trials[0].resolved["eval"][1]["points"], 20);
}

/// 1-D N(0, 1) data: its log density is below the q-quantile exactly where |x| > z, with
/// z = Phi^-1(1 - q / 2). Samples N(0, s^2) fall there with probability 2 (1 - Phi(z / s)).
#[test]
fn low_density_is_the_share_below_the_datas_quantile() {
    let yaml = SMALL_GMM
        .replace("means: [[-5.0, -5.0], [5.0, 5.0]]", "means: [[0.0]]")
        .replace("stds: [1.0, 1.0]", "stds: [1.0]")
        .replace("weights: [0.8, 0.2]", "weights: [1.0]")
        .replace("eval: [fd, mmd, mode_weights]", "eval: [low_density]");
    let trials = resolve(&yaml, &[]).unwrap();
    let trial = &trials[0];
    let n = 200_000;
    let share = |std: f64| {
        let mut rng = Rng::from_seed(31);
        let samples = Samples::new(1, (0..n).map(|_| std * rng.normal()).collect());
        measure(
            trial.metrics[0].1.as_ref(),
            trial,
            &samples,
            &trial.held_out,
            0,
        )
    };
    // scipy: 2 * norm.sf(norm.isf(0.0005) / 1.5) = 0.0282581.
    for (std, expected) in [(1.0, 0.001), (1.5, 0.028_258_1)] {
        let standard_error = (expected * (1.0 - expected) / n as f64).sqrt();
        let got = share(std);
        assert!(
            (got - expected).abs() < 4.0 * standard_error,
            "std {std}: {got} against {expected}"
        );
    }
    let message = resolve_error(&with_eval("[{kind: low_density, quantile: 0.7}]"), &[]);
    assert!(message.contains("eval[0].quantile"), "{message}");
    let message = resolve_error(&with_eval("[{kind: low_density, draws: 500}]"), &[]);
    assert!(message.contains("eval[0].draws"), "{message}");
}
