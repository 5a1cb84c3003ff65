//! Proof that LightGBM (built from source through lightgbm3, with OpenMP) links and learns: a
//! model trained on a separable rule predicts held-out rows on the right side of 0.5.

use lightgbm3::{Booster, Dataset};
use serde_json::json;

/// Rows of two features; the label is 1 when the first feature exceeds the second.
fn rows(count: usize, seed: u64) -> (Vec<f64>, Vec<f32>) {
    let mut state = seed;
    let mut next = move || {
        // xorshift: deterministic, no dependency needed for a proof test.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 10_000) as f64 / 10_000.0
    };
    let mut features = Vec::with_capacity(count * 2);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let (a, b) = (next(), next());
        features.extend([a, b]);
        labels.push(if a > b { 1.0 } else { 0.0 });
    }
    (features, labels)
}

#[test]
fn lightgbm_trains_and_predicts() {
    let (train_x, train_y) = rows(2_000, 7);
    let dataset = Dataset::from_slice(&train_x, &train_y, 2, true).unwrap();
    let params = json!({
        "objective": "binary",
        "num_iterations": 50,
        "num_leaves": 15,
        "num_threads": 2,
        "verbosity": -1,
    });
    let booster = Booster::train(dataset, &params).unwrap();

    let (test_x, test_y) = rows(500, 99);
    let predictions = booster.predict(&test_x, 2, true).unwrap();
    let correct = predictions
        .iter()
        .zip(&test_y)
        .filter(|(p, y)| (**p > 0.5) == (**y > 0.5))
        .count();
    assert!(
        correct >= 475,
        "{correct}/500 held-out rows classified correctly"
    );
}
