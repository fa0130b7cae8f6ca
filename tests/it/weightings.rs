//! The SDE-family loss weightings (likelihood, edm, min_snr, snr) against their closed forms:
//! likelihood weighting as d sigma^2 / dt on ve, vp and sub_vp, EDM's lambda, Min-SNR's cap
//! and the snr offset. Their resolution and bad values are tested with the schedules in
//! sde_schedules.rs.

use std::sync::Arc;

use crate::common::{resolve, SMALL_GMM};
use crate::sde_schedules::{beta, big_b, close};
use scorelab::schedule::Schedule;
use scorelab::weighting::Weighting;

/// The weighting `overrides` resolve to on the small mixture, with the schedule it weighs.
fn weighting(overrides: &[&str]) -> (Arc<dyn Weighting>, Arc<dyn Schedule>) {
    let trials = resolve(SMALL_GMM, overrides).unwrap();
    (trials[0].weighting.clone(), trials[0].schedule.clone())
}

#[test]
fn weightings_match_their_closed_forms() {
    let (likelihood, ve) = weighting(&["schedule=ve", "weighting=likelihood"]);
    let (_, vp) = weighting(&["schedule=vp"]);
    let (_, sub_vp) = weighting(&["schedule=sub_vp"]);
    let (edm, _) = weighting(&["weighting=edm"]);
    let (min_snr, _) = weighting(&["weighting=min_snr"]);
    let (snr, _) = weighting(&["weighting=snr"]);
    let (snr0, _) = weighting(&["weighting=snr", "weighting.offset=0"]);
    for sigma in [0.02, 0.1, 0.4472, 0.5, 1.0, 3.0, 40.0] {
        // Likelihood weighting = d sigma^2 / dt: 2 sigma^2 ln(sigma_max / sigma_min) on VE,
        // beta(t) e^{B(t)} on VP, 2 beta(t) sinh(B(t)) on sub-VP.
        let expected = 2.0 * sigma * sigma * (50.0f64 / 0.01).ln();
        assert!(
            close(likelihood.lambda(sigma, ve.as_ref()), expected, 1e-10),
            "ve {sigma}"
        );
        let t = vp.t_of_sigma(sigma);
        let expected = beta(t) * big_b(t).exp();
        assert!(
            close(likelihood.lambda(sigma, vp.as_ref()), expected, 1e-9),
            "vp {sigma}"
        );
        let t = sub_vp.t_of_sigma(sigma);
        let expected = 2.0 * beta(t) * big_b(t).sinh();
        assert!(
            close(likelihood.lambda(sigma, sub_vp.as_ref()), expected, 1e-9),
            "sub_vp {sigma}"
        );

        let s2 = sigma * sigma;
        let expected = s2 * s2 * (s2 + 0.25) / (0.25 * s2);
        assert!(
            close(edm.lambda(sigma, ve.as_ref()), expected, 1e-12),
            "edm {sigma}"
        );
        assert!(close(
            min_snr.lambda(sigma, ve.as_ref()),
            s2.min(5.0 * s2 * s2),
            1e-12
        ));
        assert!(close(snr.lambda(sigma, ve.as_ref()), s2 + s2 * s2, 1e-12));
        assert!(
            close(snr0.lambda(sigma, ve.as_ref()), s2, 1e-12),
            "offset 0 is sigma_squared"
        );
    }
    // Min-SNR's cap binds below sigma = 1/sqrt(gamma): lambda = gamma sigma^4 there.
    assert!(close(min_snr.lambda(0.1, ve.as_ref()), 5e-4, 1e-12));
    assert!(close(min_snr.lambda(1.0, ve.as_ref()), 1.0, 1e-12));
}

/// Without a `weighting:` section a trial trains with its schedule's own (EDM's for `edm`,
/// lambda = sigma^2 for the rest), recorded as if written; an `oracle` needs none.
#[test]
fn weighting_is_optional_and_defaults_to_the_schedules_own() {
    let without = crate::common::replace_line(SMALL_GMM, "weighting:", "");
    assert!(!without.contains("weighting"), "{without}");
    for (schedule, natural) in [
        ("geometric", "sigma_squared"),
        ("vp", "sigma_squared"),
        ("edm", "edm"),
    ] {
        let schedule_override = format!("schedule={schedule}");
        let implicit = resolve(&without, &[&schedule_override]).unwrap();
        let written = format!("weighting={natural}");
        let explicit = resolve(SMALL_GMM, &[&schedule_override, &written]).unwrap();
        assert_eq!(implicit[0].resolved["weighting"]["kind"], natural);
        assert_eq!(implicit[0].id, explicit[0].id, "{schedule}");
    }
    let oracle = resolve(&without, &["network=oracle"]).unwrap();
    assert_eq!(oracle[0].resolved["weighting"]["kind"], "sigma_squared");
}
