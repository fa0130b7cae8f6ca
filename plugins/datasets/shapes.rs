//! `shapes`: procedural labelled images, the default image benchmark (small enough to train on
//! 2 cores). Each item is one shape (disc, square, triangle, ring or cross; the label is its
//! index in `shapes`) at a random position and size, in a random colour (one grey level when
//! `channels: 1`) on a plain or noisy background of another random colour, in [-1, 1].
//!
//! Geometry, in pixels: a half-extent r uniform in [0.2, 0.4] x size, the centre uniform where
//! the shape's 2r x 2r box fits. Disc: radius r. Square: half side 0.8 r. Triangle: apex
//! (0, -r), base corners (±r, r) from the centre. Ring: radii 0.5 r and r. Cross: two bars of
//! half length r and half width 0.3 r. The foreground differs from the background by at least
//! 0.5 in one channel (in every channel when grey). Edges are anti-aliased by sampling each
//! pixel on an `antialias` x `antialias` grid. Every item is drawn from the generator passed
//! to `sample`, so a seed fixes the images.
//!
//! The pixels are continuous by default. `quantise: true` rounds each to the nearest of 256
//! levels k / 127.5 - 1 (the bytes an 8-bit image file would hold, read as `mnist` and
//! `cifar10` read theirs), so the data are quantised and `nll_ode` and `elbo` also report
//! bits per dimension.

use scorelab::config::{Params, RawParams};
use scorelab::dataset::{Dataset, Quantisation, Samples};
use scorelab::images::unit;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use serde::{Deserialize, Serialize};

/// A shape class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Disc,
    Square,
    Triangle,
    Ring,
    Cross,
}

impl Shape {
    /// Whether the point (dx, dy) from the centre, for a shape of half-extent r, is inside.
    pub fn contains(self, dx: f64, dy: f64, r: f64) -> bool {
        match self {
            Shape::Disc => dx * dx + dy * dy <= r * r,
            Shape::Square => dx.abs() <= 0.8 * r && dy.abs() <= 0.8 * r,
            Shape::Triangle => dy <= r && dx.abs() <= (dy + r) / 2.0,
            Shape::Ring => {
                let d2 = dx * dx + dy * dy;
                d2 <= r * r && d2 >= 0.25 * r * r
            }
            Shape::Cross => {
                let (ax, ay) = (dx.abs(), dy.abs());
                let w = 0.3 * r;
                (ax <= r && ay <= w) || (ax <= w && ay <= r)
            }
        }
    }
}

/// The background behind the shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Background {
    /// One colour.
    Plain,
    /// One colour plus independent uniform noise per pixel and channel.
    Noise,
}

params! {
    /// Parameters of `shapes`.
    pub struct ShapesParams {
        /// The classes, in label order: any of disc, square, triangle, ring, cross.
        shapes: Vec<Shape> = vec![Shape::Disc, Shape::Square, Shape::Triangle, Shape::Ring, Shape::Cross],
        /// Side of the square images, in pixels (8 to 64; 16 and 32 are the usual ones).
        size: usize = 16 => 0..=scorelab::config::limits::MAX_SIDE,
        /// 1 (grey) or 3 (RGB).
        channels: usize = 1 => 0..=64,
        /// `plain` or `noise` (uniform noise of amplitude `background_noise` on the background).
        background: Background = Background::Plain,
        /// Half-width of the uniform background noise, in [-1, 1] units (0 to 1).
        background_noise: f64 = 0.1,
        /// Anti-aliasing: each pixel's coverage is sampled on an n x n grid (1 = hard edges, up to 8).
        antialias: usize = 4 => 0..=64,
        /// Round every pixel to the nearest of 256 levels in [-1, 1] (8-bit, as image files hold them), so likelihoods also report bits/dim; false keeps continuous pixels.
        quantise: bool = false,
    }
}

/// The smallest difference between a foreground and a background level, in [-1, 1] units.
pub const CONTRAST: f64 = 0.5;

/// One item's random choices (everything but the background noise).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The label: index of the shape in `shapes`.
    pub label: u32,
    pub shape: Shape,
    /// Centre (x to the right, y down) and half-extent, in pixels.
    pub cx: f64,
    pub cy: f64,
    pub r: f64,
    /// One level per channel, in [-1, 1].
    pub foreground: Vec<f64>,
    pub background: Vec<f64>,
}

pub struct Shapes {
    params: ShapesParams,
}

/// A level at least `CONTRAST` away from `other`, uniform over the allowed part of [-1, 1].
fn contrasting(other: f64, rng: &mut Rng) -> f64 {
    let below = (other - CONTRAST + 1.0).max(0.0);
    let above = (1.0 - other - CONTRAST).max(0.0);
    let u = rng.uniform() * (below + above);
    if u < below {
        -1.0 + u
    } else {
        other + CONTRAST + (u - below)
    }
}

impl Shapes {
    /// Checks the parameters; on failure, the key, the problem and the fix.
    pub fn new(params: ShapesParams) -> Result<Shapes, (&'static str, String, String)> {
        let fail = |key, message: &str, fix: &str| Err((key, message.to_string(), fix.to_string()));
        if params.shapes.is_empty() {
            return fail(
                "shapes",
                "lists no shapes",
                "list e.g. `shapes: [disc, square]`",
            );
        }
        for (i, s) in params.shapes.iter().enumerate() {
            if params.shapes[..i].contains(s) {
                return fail(
                    "shapes",
                    &format!("lists `{s:?}` twice").to_lowercase(),
                    "list each shape once",
                );
            }
        }
        if !(8..=64).contains(&params.size) {
            return fail(
                "size",
                "must be 8 to 64 pixels",
                "set `size: 16` or `size: 32`",
            );
        }
        if params.channels != 1 && params.channels != 3 {
            return fail(
                "channels",
                "must be 1 (grey) or 3 (RGB)",
                "set `channels: 1` or `channels: 3`",
            );
        }
        if !(0.0..=1.0).contains(&params.background_noise) {
            return fail(
                "background_noise",
                "must be 0 to 1",
                "set e.g. `background_noise: 0.1`",
            );
        }
        if !(1..=8).contains(&params.antialias) {
            return fail("antialias", "must be 1 to 8", "set e.g. `antialias: 4`");
        }
        Ok(Shapes { params })
    }

    /// Draws one item's class, geometry and colours.
    pub fn item(&self, rng: &mut Rng) -> Item {
        let label = rng.below(self.params.shapes.len());
        let size = self.params.size as f64;
        let r = size * (0.2 + 0.2 * rng.uniform());
        let cx = r + (size - 2.0 * r) * rng.uniform();
        let cy = r + (size - 2.0 * r) * rng.uniform();
        let (foreground, background) = if self.params.channels == 1 {
            let b = 2.0 * rng.uniform() - 1.0;
            (vec![contrasting(b, rng)], vec![b])
        } else {
            let background: Vec<f64> = (0..3).map(|_| 2.0 * rng.uniform() - 1.0).collect();
            let mut foreground: Vec<f64> = (0..3).map(|_| 2.0 * rng.uniform() - 1.0).collect();
            let k = rng.below(3);
            foreground[k] = contrasting(background[k], rng);
            (foreground, background)
        };
        Item {
            label: label as u32,
            shape: self.params.shapes[label],
            cx,
            cy,
            r,
            foreground,
            background,
        }
    }

    /// The item's pixels, `[C, size, size]` planes; `rng` draws the background noise.
    pub fn render(&self, item: &Item, rng: &mut Rng) -> Vec<f64> {
        let (c, n, k) = (
            self.params.channels,
            self.params.size,
            self.params.antialias,
        );
        let plane = n * n;
        let mut out = vec![0.0; c * plane];
        let noisy = self.params.background == Background::Noise;
        let amplitude = self.params.background_noise;
        for i in 0..n {
            for j in 0..n {
                let coverage = self.coverage(item, i, j, k);
                for ch in 0..c {
                    let mut bg = item.background[ch];
                    if noisy {
                        bg = (bg + amplitude * (2.0 * rng.uniform() - 1.0)).clamp(-1.0, 1.0);
                    }
                    let value = coverage * item.foreground[ch] + (1.0 - coverage) * bg;
                    out[ch * plane + i * n + j] = if self.params.quantise {
                        unit(Quantisation::BYTES.nearest_code(value) as u8)
                    } else {
                        value
                    };
                }
            }
        }
        out
    }

    /// Share of pixel (row i, column j) inside the item's shape, from a k x k grid of points.
    fn coverage(&self, item: &Item, i: usize, j: usize, k: usize) -> f64 {
        let (x0, y0) = (j as f64, i as f64);
        // Pixels outside the shape's box are not sampled.
        if x0 + 1.0 < item.cx - item.r
            || x0 > item.cx + item.r
            || y0 + 1.0 < item.cy - item.r
            || y0 > item.cy + item.r
        {
            return 0.0;
        }
        let mut inside = 0;
        for a in 0..k {
            for b in 0..k {
                let x = x0 + (b as f64 + 0.5) / k as f64;
                let y = y0 + (a as f64 + 0.5) / k as f64;
                if item.shape.contains(x - item.cx, y - item.cy, item.r) {
                    inside += 1;
                }
            }
        }
        inside as f64 / (k * k) as f64
    }
}

impl Dataset for Shapes {
    fn dim(&self) -> usize {
        self.params.channels * self.params.size * self.params.size
    }

    fn shape(&self) -> Vec<usize> {
        vec![self.params.channels, self.params.size, self.params.size]
    }

    fn classes(&self) -> usize {
        self.params.shapes.len()
    }

    fn quantisation(&self) -> Option<Quantisation> {
        self.params.quantise.then_some(Quantisation::BYTES)
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Samples {
        let mut data = Vec::with_capacity(n * self.dim());
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let item = self.item(rng);
            data.extend(self.render(&item, rng));
            labels.push(item.label);
        }
        Samples::with_shape(&self.shape(), data).with_labels(labels)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Dataset> {
    let params = ShapesParams::from_raw(raw)?;
    let shapes = Shapes::new(params.clone())
        .map_err(|(key, message, fix)| raw.invalid(key, message, fix))?;
    let mut built = Built::<dyn Dataset>::new(Box::new(shapes), &params);
    // Continuous shapes are recorded as before `quantise` existed, so their trial ids stay.
    if let (false, Some(map)) = (params.quantise, built.params.as_object_mut()) {
        map.remove("quantise");
    }
    Ok(built)
}

inventory::submit! {
    Plugin {
        name: "shapes",
        about: "Procedural labelled images: discs, squares, triangles, rings, crosses (16x16 grey by default)",
        params: ShapesParams::docs,
        build: Builder::Dataset(build),
    }
}
