//! The report's pictures, embedded or linked. While the pictures add up to little they are
//! embedded as data URIs, so the page stands alone and can be mailed; past that budget they
//! are linked by paths relative to the report (`plots/…`, `trials/<id>/samples.png`), so the
//! page stays small and the folder stays movable. A 2 000-trial sweep embedded every trial's
//! samples in a 169 MB page; linked, 3.5 MB.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use base64::Engine as _;

use super::text::escape;

/// How many bytes of PNG a report embeds at most (a third more as base64).
pub(super) const EMBED_BUDGET: u64 = 3 << 20;

/// Where a group of pictures goes: into the page, or beside it in the folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    Embed,
    Link,
}

/// The charts are embedded when they fit the budget, then the trials' pictures when they fit
/// what the charts left; a group that does not fit is linked whole, never split.
pub(super) fn placements(chart_bytes: u64, trial_bytes: u64) -> (Placement, Placement) {
    let charts = if chart_bytes <= EMBED_BUDGET {
        Placement::Embed
    } else {
        Placement::Link
    };
    let left = match charts {
        Placement::Embed => EMBED_BUDGET - chart_bytes,
        Placement::Link => EMBED_BUDGET,
    };
    let trials = if trial_bytes <= left {
        Placement::Embed
    } else {
        Placement::Link
    };
    (charts, trials)
}

/// The bytes of the files at `relative` paths under `root` (missing ones count nothing).
pub(super) fn total_bytes<'a>(root: &Path, relative: impl Iterator<Item = &'a str>) -> u64 {
    relative
        .filter_map(|r| fs::metadata(root.join(r)).ok())
        .map(|m| m.len())
        .sum()
}

/// The `<img>` of the PNG at `relative` (a `/`-separated path under `root`): its bytes as a
/// data URI, or a lazily loaded link to the file that opens it full size when clicked.
pub(super) fn picture(
    root: &Path,
    relative: &str,
    alt: &str,
    placement: Placement,
) -> Result<String, String> {
    match placement {
        Placement::Embed => {
            let path = root.join(relative);
            let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(format!(
                "<img alt=\"{}\" src=\"data:image/png;base64,{}\">",
                escape(alt),
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ))
        }
        Placement::Link => {
            let href = escape(&url_path(relative));
            Ok(format!(
                "<a href=\"{href}\"><img alt=\"{}\" loading=\"lazy\" src=\"{href}\"></a>",
                escape(alt)
            ))
        }
    }
}

/// A relative path as a URL path: every byte outside the unreserved set and `/` is
/// percent-encoded, so a trial folder named `sampler=heun grid=karras-…` (or one with `:`,
/// `#` or `?`) still resolves to itself.
pub(super) fn url_path(relative: &str) -> String {
    let mut out = String::with_capacity(relative.len());
    for byte in relative.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(byte as char)
            }
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_come_first_and_a_group_is_never_split() {
        use Placement::{Embed, Link};
        assert_eq!(placements(1 << 20, 1 << 20), (Embed, Embed));
        assert_eq!(placements(1 << 20, EMBED_BUDGET), (Embed, Link));
        assert_eq!(placements(EMBED_BUDGET + 1, EMBED_BUDGET), (Link, Embed));
        assert_eq!(placements(EMBED_BUDGET + 1, EMBED_BUDGET + 1), (Link, Link));
    }

    #[test]
    fn paths_are_percent_encoded_but_for_their_separators() {
        assert_eq!(
            url_path("trials/sampler=heun grid:karras#1/samples.png"),
            "trials/sampler%3Dheun%20grid%3Akarras%231/samples.png"
        );
        assert_eq!(url_path("plots/fd_vs_steps.png"), "plots/fd_vs_steps.png");
    }
}
