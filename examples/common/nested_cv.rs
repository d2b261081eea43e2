//! The nested cross-validation model shared by the `crossval` example and
//! the bench CLI's `crossval` workload: synthetic ridge-regression data,
//! the `#[delayed]` steps, and the loops that build the graph.

use rdask::prelude::*;
/// Columns of the synthetic design matrix.
pub const FEATURES: usize = 10;
/// Seed of the data generator: the same flags give the same data everywhere.
pub const SEED: u64 = 0x5EED_CAFE;
/// The ridge penalties searched by the inner loop.
pub const ALPHAS: [f64; 8] = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0];

/// SplitMix64: a tiny, good-enough deterministic generator (no `rand` crate).
pub struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so `ln` below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Rows of features (row-major) and their targets. Deliberately not `Clone`:
/// the graph hands it around by reference, so no copy can sneak in. Serde:
/// the steps can run in worker processes and on a cluster, and be cached.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Dataset {
    p: usize,
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Dataset {
    fn rows(&self) -> usize {
        self.y.len()
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.p..(i + 1) * self.p]
    }

    /// Rows `range` and the rest, as two new datasets.
    fn split_off(&self, range: std::ops::Range<usize>) -> (Dataset, Dataset) {
        let empty = || Dataset {
            p: self.p,
            x: Vec::new(),
            y: Vec::new(),
        };
        let (mut rest, mut part) = (empty(), empty());
        for i in 0..self.rows() {
            let to = if range.contains(&i) {
                &mut part
            } else {
                &mut rest
            };
            to.x.extend_from_slice(self.row(i));
            to.y.push(self.y[i]);
        }
        (rest, part)
    }
}

/// A fitted linear model: `y = w . x + b`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Model {
    w: Vec<f64>,
    b: f64,
}

/// Correlated features (three latent factors plus a little noise each) and
/// a noisy linear target: collinear enough for the ridge penalty to matter.
// `cache`: with `--cache DIR`, a second run finds these instead of running.
#[delayed(cache)]
pub fn make_data(rows: usize, p: usize, seed: u64) -> Dataset {
    let mut rng = SplitMix64(seed);
    let loadings: Vec<[f64; 3]> = (0..p)
        .map(|_| [rng.normal(), rng.normal(), rng.normal()])
        .collect();
    let coef: Vec<f64> = (0..p)
        .map(|j| if j % 3 == 0 { rng.normal() * 2.0 } else { 0.0 })
        .collect();
    // Noise with a third of the signal's variance: the best possible R^2 is 0.75.
    let signal_var: f64 = (0..3)
        .map(|f| {
            loadings
                .iter()
                .zip(&coef)
                .map(|(l, c)| l[f] * c)
                .sum::<f64>()
                .powi(2)
        })
        .sum::<f64>()
        + 0.01 * coef.iter().map(|c| c * c).sum::<f64>();
    let noise = (signal_var / 3.0).sqrt();
    let (mut x, mut y) = (Vec::with_capacity(rows * p), Vec::with_capacity(rows));
    for _ in 0..rows {
        let z = [rng.normal(), rng.normal(), rng.normal()];
        let start = x.len();
        for l in &loadings {
            x.push(l[0] * z[0] + l[1] * z[1] + l[2] * z[2] + 0.1 * rng.normal());
        }
        let signal: f64 = x[start..].iter().zip(&coef).map(|(a, b)| a * b).sum();
        y.push(signal + 3.0 + noise * rng.normal());
    }
    Dataset { p, x, y }
}

/// Fold `i` of `k` (contiguous rows; the rows are i.i.d., so no shuffle is
/// needed) as `(train, test)`. One task per fold, shared by every alpha.
#[delayed(cache)]
pub fn split_fold(data: &Dataset, k: usize, i: usize) -> (Dataset, Dataset) {
    let n = data.rows();
    data.split_off(i * n / k..(i + 1) * n / k)
}

/// Ridge regression by the normal equations on centered data:
/// `(Xc'Xc + alpha I) w = Xc'yc`, solved by Cholesky; the intercept is not
/// penalized. Fallible only in theory (the matrix is positive definite for
/// `alpha > 0`), which shows that `Result` return types fail the graph.
#[delayed(cache)]
pub fn fit(train: &Dataset, alpha: f64) -> Result<Model, String> {
    let (n, p) = (train.rows(), train.p);
    let mut mean_x = vec![0.0; p];
    for i in 0..n {
        for (m, v) in mean_x.iter_mut().zip(train.row(i)) {
            *m += v;
        }
    }
    mean_x.iter_mut().for_each(|m| *m /= n as f64);
    let mean_y = train.y.iter().sum::<f64>() / n as f64;

    let mut a = vec![0.0; p * p];
    let mut rhs = vec![0.0; p];
    let mut xc = vec![0.0; p];
    for i in 0..n {
        for ((c, v), m) in xc.iter_mut().zip(train.row(i)).zip(&mean_x) {
            *c = v - m;
        }
        let yc = train.y[i] - mean_y;
        for j in 0..p {
            rhs[j] += xc[j] * yc;
            for l in 0..=j {
                a[j * p + l] += xc[j] * xc[l];
            }
        }
    }
    for j in 0..p {
        a[j * p + j] += alpha;
    }
    let w = cholesky_solve(&mut a, &rhs, p)
        .ok_or_else(|| format!("ridge system not positive definite (alpha = {alpha})"))?;
    let b = mean_y - w.iter().zip(&mean_x).map(|(w, m)| w * m).sum::<f64>();
    Ok(Model { w, b })
}

/// Solves `A x = b` for symmetric positive definite `A` (lower triangle of
/// `a`, row-major, overwritten by its Cholesky factor L); `None` if `A` is
/// not positive definite.
pub fn cholesky_solve(a: &mut [f64], b: &[f64], p: usize) -> Option<Vec<f64>> {
    for j in 0..p {
        for i in j..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                a[j * p + j] = s.sqrt();
            } else {
                a[i * p + j] = s / a[j * p + j];
            }
        }
    }
    // L z = b, then L' x = z.
    let mut z = b.to_vec();
    for i in 0..p {
        for k in 0..i {
            z[i] -= a[i * p + k] * z[k];
        }
        z[i] /= a[i * p + i];
    }
    for i in (0..p).rev() {
        for k in i + 1..p {
            z[i] -= a[k * p + i] * z[k];
        }
        z[i] /= a[i * p + i];
    }
    Some(z)
}

/// R^2 of `model` on `test` (1 is perfect, 0 is no better than the mean).
#[delayed(cache)]
pub fn score(model: &Model, test: &Dataset) -> f64 {
    let mean_y = test.y.iter().sum::<f64>() / test.rows() as f64;
    let (mut sse, mut sst) = (0.0, 0.0);
    for i in 0..test.rows() {
        let pred: f64 = model.b
            + model
                .w
                .iter()
                .zip(test.row(i))
                .map(|(w, x)| w * x)
                .sum::<f64>();
        sse += (test.y[i] - pred).powi(2);
        sst += (test.y[i] - mean_y).powi(2);
    }
    1.0 - sse / sst
}

#[delayed]
pub fn mean(xs: Vec<f64>) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The alpha with the best mean inner score (the smallest on a tie).
#[delayed]
pub fn best_alpha(alphas: Vec<f64>, scores: Vec<f64>) -> f64 {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    alphas[best]
}

/// The lazy outputs of one nested cross-validation.
pub struct NestedCv {
    best_alphas: Vec<Delayed<f64>>,
    outer_scores: Vec<Delayed<f64>>,
    final_score: Delayed<f64>,
}

impl NestedCv {
    /// Every output in one list, so one `compute` runs them all (shared
    /// work once).
    pub fn outputs(&self) -> Vec<Delayed<f64>> {
        let mut all = self.best_alphas.clone();
        all.extend(self.outer_scores.iter().cloned());
        all.push(self.final_score.clone());
        all
    }
}

/// The whole algorithm as plain loops; nothing runs here.
pub fn nested_cv(rows: usize, k: usize) -> NestedCv {
    let data = make_data(rows, FEATURES, SEED);
    let mut best_alphas = Vec::new();
    let mut outer_scores = Vec::new();
    for i in 0..k {
        let (train, test) = split_fold(&data, k, i).split();
        let inner: Vec<_> = (0..k).map(|j| split_fold(&train, k, j).split()).collect();
        let alpha_scores: Vec<_> = ALPHAS
            .iter()
            .map(|&alpha| {
                let scores: Vec<_> = inner
                    .iter()
                    .map(|(itrain, itest)| score(fit(itrain, alpha), itest))
                    .collect();
                mean(scores)
            })
            .collect();
        let alpha = best_alpha(ALPHAS.to_vec(), alpha_scores);
        let model = fit(&train, &alpha);
        outer_scores.push(score(model, &test));
        best_alphas.push(alpha);
    }
    let final_score = mean(&outer_scores[..]);
    NestedCv {
        best_alphas,
        outer_scores,
        final_score,
    }
}
