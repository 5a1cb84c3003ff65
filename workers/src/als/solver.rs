//! Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with conjugate-gradient updates (Takács,
//! Pilászy & Tikk 2011; the `implicit` library's CPU solver): minimises
//! Σ c_ui (p_ui − x_u·y_i)² + λ(‖X‖² + ‖Y‖²) with p = 1 on observed pairs and c = 1 elsewhere.
//! Each sweep fixes one side and updates every row of the other with a few CG steps, starting
//! from its previous value, using YᵀY + λI computed once per sweep plus the row's own entries:
//! no users × courses matrix, memory O(nnz + (users + courses) · rank), f32 throughout.

use super::parallel::for_each_chunk;
use super::sparse::Csr;
use crate::seeded::Rng;

/// Row-major factors, one `rank`-long row per user or course.
#[derive(Clone, Debug, PartialEq)]
pub struct Factors {
    pub rank: usize,
    pub data: Vec<f32>,
}

impl Factors {
    /// Uniform in [0, 0.01), as `implicit` starts.
    fn random(rows: usize, rank: usize, rng: &mut Rng) -> Self {
        let data = (0..rows * rank).map(|_| rng.unit() as f32 * 0.01).collect();
        Self { rank, data }
    }

    pub fn rows(&self) -> usize {
        self.data.len() / self.rank.max(1)
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.rank..(r + 1) * self.rank]
    }

    /// Little-endian f32s, row after row: the bundle's factor files.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.data.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    pub fn from_le_bytes(rank: usize, bytes: &[u8]) -> Option<Self> {
        if rank == 0 || !bytes.len().is_multiple_of(4 * rank) {
            return None;
        }
        let data = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(Self { rank, data })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub rank: usize,
    pub iterations: usize,
    pub regularization: f32,
    /// λ times the row's entry count (weighted-λ, as Spark) rather than λ for every row.
    pub scale_regularization: bool,
    /// CG steps per row and sweep (`implicit` uses 3).
    pub cg_steps: usize,
    pub threads: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub users: Factors,
    pub items: Factors,
}

/// Rows per unit of work: at most 256, and at least 64 units per thread, so that a few very
/// heavy rows (the most popular courses) do not leave threads idle.
fn block_rows(rows: usize, threads: usize) -> usize {
    (rows / (threads.max(1) * 64)).clamp(1, 256)
}

/// Fits factors to `confidence` (users × courses, values c_ui ≥ 1). The same inputs and seed give
/// bit-identical factors, whatever the thread count. `progress` hears each finished iteration.
pub fn fit(
    confidence: &Csr,
    settings: &Settings,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Model {
    let transposed = confidence.transpose();
    let mut rng = Rng(seed);
    let mut users = Factors::random(confidence.rows(), settings.rank, &mut rng);
    let mut items = Factors::random(confidence.columns, settings.rank, &mut rng);
    for iteration in 0..settings.iterations {
        sweep(&mut users, confidence, &items, settings);
        sweep(&mut items, &transposed, &users, settings);
        progress(iteration + 1);
    }
    Model { users, items }
}

/// Updates every row of `solved` against the fixed `other` side.
fn sweep(solved: &mut Factors, entries: &Csr, other: &Factors, settings: &Settings) {
    let rank = settings.rank;
    let (shared, per_entry) = if settings.scale_regularization {
        (0.0, settings.regularization)
    } else {
        (settings.regularization, 0.0)
    };
    let gram = regularized_gram(other, shared, settings.threads);
    let block_rows = block_rows(solved.rows(), settings.threads);
    for_each_chunk(
        &mut solved.data,
        block_rows * rank,
        settings.threads,
        |block, rows| {
            let work = Block {
                first_row: block * block_rows,
                entries,
                other,
                gram: &gram,
                per_entry,
                steps: settings.cg_steps,
            };
            solve_block(&work, rows);
        },
    );
}

/// The rows of one unit of work and what they are solved against.
struct Block<'a> {
    first_row: usize,
    entries: &'a Csr,
    other: &'a Factors,
    gram: &'a [f32],
    per_entry: f32,
    steps: usize,
}

/// Solves a block with the widest vectors the CPU has. The eight-lane sums give the same bits
/// at any width (no fused multiply-add), so factors do not depend on the machine's features.
fn solve_block(work: &Block, rows: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just found to support AVX2.
        return unsafe { solve_block_avx2(work, rows) };
    }
    solve_block_portable(work, rows);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2")]
fn solve_block_avx2(work: &Block, rows: &mut [f32]) {
    solve_block_portable(work, rows);
}

#[inline(always)]
fn solve_block_portable(work: &Block, rows: &mut [f32]) {
    let rank = work.other.rank;
    let mut scratch = Scratch::new(rank);
    for (offset, x) in rows.chunks_exact_mut(rank).enumerate() {
        let entries = work.entries.row(work.first_row + offset);
        let system = System {
            gram: work.gram,
            // A row without entries keeps a little: its system is never singular.
            own_regularization: work.per_entry * entries.0.len().max(1) as f32,
        };
        conjugate_gradient(x, entries, work.other, &system, work.steps, &mut scratch);
    }
}

/// YᵀY + λI (f32, row-major), summed in f64 over fixed blocks added in order.
fn regularized_gram(factors: &Factors, regularization: f32, threads: usize) -> Vec<f32> {
    const GRAM_BLOCK: usize = 4096;
    let rank = factors.rank;
    let blocks = factors.rows().div_ceil(GRAM_BLOCK).max(1);
    let mut partials = vec![0f64; blocks * rank * rank];
    for_each_chunk(&mut partials, rank * rank, threads, |block, partial| {
        let end = ((block + 1) * GRAM_BLOCK).min(factors.rows());
        let mut row64 = vec![0f64; rank];
        for r in block * GRAM_BLOCK..end {
            for (wide, &v) in row64.iter_mut().zip(factors.row(r)) {
                *wide = f64::from(v);
            }
            for i in 0..rank {
                let yi = row64[i];
                let out = &mut partial[i * rank + i..(i + 1) * rank];
                for (o, &yj) in out.iter_mut().zip(&row64[i..]) {
                    *o += yi * yj;
                }
            }
        }
    });
    let mut gram = vec![0f32; rank * rank];
    for i in 0..rank {
        for j in i..rank {
            let sum: f64 = (0..blocks)
                .map(|b| partials[b * rank * rank + i * rank + j])
                .sum();
            gram[i * rank + j] = sum as f32;
            gram[j * rank + i] = sum as f32;
        }
        gram[i * rank + i] += regularization;
    }
    gram
}

struct Scratch {
    residual: Vec<f32>,
    direction: Vec<f32>,
    product: Vec<f32>,
}

impl Scratch {
    fn new(rank: usize) -> Self {
        Self {
            residual: vec![0.0; rank],
            direction: vec![0.0; rank],
            product: vec![0.0; rank],
        }
    }
}

/// The dense part of a row's system: YᵀY + λI shared by all rows, plus λᵤI of the row's own.
struct System<'a> {
    gram: &'a [f32],
    own_regularization: f32,
}

impl System<'_> {
    /// out = (YᵀY + λI + λᵤI) v
    #[inline(always)]
    fn apply(&self, v: &[f32], out: &mut [f32]) {
        matvec(self.gram, v, out);
        if self.own_regularization != 0.0 {
            axpy(self.own_regularization, v, out);
        }
    }
}

/// A few CG steps on (YᵀCᵤY + λI) x = YᵀCᵤpᵤ from the current x, with YᵀCᵤY applied as
/// YᵀY + Yᵀ(Cᵤ − I)Y over the row's own entries only.
#[inline(always)]
fn conjugate_gradient(
    x: &mut [f32],
    (columns, confidences): (&[u32], &[f32]),
    other: &Factors,
    system: &System,
    steps: usize,
    scratch: &mut Scratch,
) {
    const CONVERGED: f32 = 1e-20;
    let Scratch {
        residual: r,
        direction: p,
        product: ap,
    } = scratch;
    system.apply(x, r);
    r.iter_mut().for_each(|v| *v = -*v);
    for (&column, &c) in columns.iter().zip(confidences) {
        let y = other.row(column as usize);
        axpy(c - (c - 1.0) * dot(y, x), y, r);
    }
    p.copy_from_slice(r);
    let mut rs_old = dot(r, r);
    if rs_old < CONVERGED {
        return;
    }
    for _ in 0..steps {
        system.apply(p, ap);
        for (&column, &c) in columns.iter().zip(confidences) {
            let y = other.row(column as usize);
            axpy((c - 1.0) * dot(y, p), y, ap);
        }
        let alpha = rs_old / dot(p, ap);
        axpy(alpha, p, x);
        axpy(-alpha, ap, r);
        let rs_new = dot(r, r);
        if rs_new < CONVERGED {
            break;
        }
        let beta = rs_new / rs_old;
        for (pi, &ri) in p.iter_mut().zip(r.iter()) {
            *pi = ri + beta * *pi;
        }
        rs_old = rs_new;
    }
}

/// Dot product in eight fixed lanes: vectorised, and the same sum on every run.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// out += scale · v
#[inline(always)]
fn axpy(scale: f32, v: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(v) {
        *o += scale * x;
    }
}

/// out = M v, M square and row-major.
#[inline(always)]
fn matvec(matrix: &[f32], v: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(matrix.chunks_exact(v.len())) {
        *o = dot(row, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded confidences of a small users × items problem with structure: two groups of users
    /// who each favour one half of the items.
    fn grouped(users: usize, items: usize, seed: u64) -> Csr {
        let mut rng = Rng(seed);
        let mut triples = Vec::new();
        for u in 0..users {
            let half = u % 2;
            for i in 0..items {
                let liked = i % 2 == half;
                if rng.unit() < if liked { 0.5 } else { 0.05 } {
                    triples.push((u as u32, i as u32, 1.0 + 10.0 * rng.unit() as f32));
                }
            }
        }
        Csr::from_triples(users, items, &triples)
    }

    fn settings(threads: usize) -> Settings {
        Settings {
            rank: 6,
            iterations: 8,
            regularization: 0.1,
            scale_regularization: false,
            cg_steps: 3,
            threads,
        }
    }

    /// The exact solution of one row's normal equations, by Gaussian elimination in f64.
    fn exact_row(row: (&[u32], &[f32]), other: &Factors, regularization: f64) -> Vec<f64> {
        let k = other.rank;
        let mut a = vec![0f64; k * k];
        let mut b = vec![0f64; k];
        for r in 0..other.rows() {
            let (c, p) = match row.0.iter().position(|&col| col as usize == r) {
                Some(at) => (f64::from(row.1[at]), 1.0),
                None => (1.0, 0.0),
            };
            let y = other.row(r);
            for i in 0..k {
                b[i] += c * p * f64::from(y[i]);
                for j in 0..k {
                    a[i * k + j] += c * f64::from(y[i]) * f64::from(y[j]);
                }
            }
        }
        for i in 0..k {
            a[i * k + i] += regularization;
        }
        for col in 0..k {
            let pivot = (col..k)
                .max_by(|&x, &y| a[x * k + col].abs().total_cmp(&a[y * k + col].abs()))
                .unwrap();
            for j in 0..k {
                a.swap(col * k + j, pivot * k + j);
            }
            b.swap(col, pivot);
            for r in col + 1..k {
                let f = a[r * k + col] / a[col * k + col];
                for j in col..k {
                    a[r * k + j] -= f * a[col * k + j];
                }
                b[r] -= f * b[col];
            }
        }
        let mut x = vec![0f64; k];
        for r in (0..k).rev() {
            let s: f64 = (r + 1..k).map(|j| a[r * k + j] * x[j]).sum();
            x[r] = (b[r] - s) / a[r * k + r];
        }
        x
    }

    #[test]
    fn enough_cg_steps_reach_the_exact_least_squares_row() {
        let confidence = grouped(40, 30, 3);
        let mut rng = Rng(9);
        let items = Factors::random(30, 6, &mut rng);
        let items = Factors {
            rank: 6,
            data: items.data.iter().map(|v| v * 100.0).collect(),
        };
        let gram = regularized_gram(&items, 0.1, 2);
        let unscaled = regularized_gram(&items, 0.0, 2);
        let mut scratch = Scratch::new(6);
        for (user, scaled) in [(0, false), (1, false), (7, false), (0, true), (7, true)] {
            let row = confidence.row(user);
            // Weighted-λ: the row's λ is 0.1 per entry, on top of an unregularized YᵀY.
            let (system, regularization) = if scaled {
                let own = 0.1 * row.0.len() as f32;
                let system = System {
                    gram: &unscaled,
                    own_regularization: own,
                };
                (system, f64::from(own))
            } else {
                let system = System {
                    gram: &gram,
                    own_regularization: 0.0,
                };
                (system, 0.1)
            };
            let mut x = vec![0f32; 6];
            // CG converges in at most `rank` steps in exact arithmetic; a few more for f32.
            conjugate_gradient(&mut x, row, &items, &system, 12, &mut scratch);
            let exact = exact_row(row, &items, regularization);
            for (got, want) in x.iter().zip(&exact) {
                assert!(
                    (f64::from(*got) - want).abs() < 1e-3 * want.abs().max(1.0),
                    "user {user}, scaled {scaled}: {x:?} vs {exact:?}"
                );
            }
        }
    }

    #[test]
    fn the_gram_matrix_is_the_regularized_product_for_any_thread_count() {
        let factors = Factors {
            rank: 2,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(regularized_gram(&factors, 0.5, 1), [35.5, 44.0, 44.0, 56.5]);
        assert_eq!(regularized_gram(&factors, 0.5, 3), [35.5, 44.0, 44.0, 56.5]);
    }

    #[test]
    fn the_same_seed_gives_identical_factors_on_any_thread_count_and_another_seed_does_not() {
        let confidence = grouped(300, 40, 5);
        let one = fit(&confidence, &settings(1), 42, |_| {});
        let three = fit(&confidence, &settings(3), 42, |_| {});
        assert_eq!(one.users.to_le_bytes(), three.users.to_le_bytes());
        assert_eq!(one.items.to_le_bytes(), three.items.to_le_bytes());
        let other = fit(&confidence, &settings(2), 43, |_| {});
        assert_ne!(one.items.data, other.items.data);
    }

    #[test]
    fn fitted_factors_rank_a_users_group_above_the_other() {
        let confidence = grouped(300, 40, 5);
        let mut iterations = Vec::new();
        let model = fit(&confidence, &settings(2), 1, |i| iterations.push(i));
        assert_eq!(iterations, (1..=8).collect::<Vec<_>>());
        // Mean score of liked vs other items, over users: the structure was learnt.
        let (mut liked, mut other) = (0f32, 0f32);
        for u in 0..300 {
            for i in 0..40 {
                let score = dot(model.users.row(u), model.items.row(i));
                if i % 2 == u % 2 {
                    liked += score
                } else {
                    other += score
                }
            }
        }
        assert!(liked > 3.0 * other, "liked {liked}, other {other}");
    }

    #[test]
    fn factor_files_round_trip_and_a_torn_file_is_refused() {
        let factors = Factors {
            rank: 2,
            data: vec![1.5, -2.0, 0.25, 8.0],
        };
        let bytes = factors.to_le_bytes();
        assert_eq!(Factors::from_le_bytes(2, &bytes), Some(factors));
        assert_eq!(Factors::from_le_bytes(2, &bytes[..12]), None);
        assert_eq!(dot(&[1.0; 19], &[2.0; 19]), 38.0);
    }
}
