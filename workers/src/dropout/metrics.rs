//! Binary classification metrics of predicted dropout probabilities against the truth.

use serde::{Deserialize, Serialize};

/// Probability at or above which a prediction counts as "drops out" for [`Scores::accuracy`].
pub const THRESHOLD: f64 = 0.5;

/// Points kept of the ROC curve: enough to draw it, bounded for the bundle and the dashboard.
pub const ROC_POINTS: usize = 200;

/// Probabilities are clipped this far from 0 and 1 in the log loss, as scikit-learn does.
const EPSILON: f64 = 1e-15;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scores {
    pub auc: f64,
    pub log_loss: f64,
    /// Share of rows classified right at [`THRESHOLD`].
    pub accuracy: f64,
    /// Share of rows that truly dropped out.
    pub positive_rate: f64,
    /// Share of rows predicted to drop out at [`THRESHOLD`].
    pub predicted_positive_rate: f64,
    pub samples: usize,
}

/// A point of the ROC curve: false and true positive rates at a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub fpr: f64,
    pub tpr: f64,
}

/// Scores of `predictions` (probabilities) against `labels` (0 or 1).
pub fn scores(predictions: &[f64], labels: &[f32]) -> Scores {
    let samples = labels.len();
    let n = samples as f64;
    let positives = labels.iter().filter(|l| **l > 0.5).count();
    let mut correct = 0usize;
    let mut predicted_positive = 0usize;
    let mut loss = 0.0;
    for (p, label) in predictions.iter().zip(labels) {
        let truth = *label > 0.5;
        let said = *p >= THRESHOLD;
        correct += usize::from(said == truth);
        predicted_positive += usize::from(said);
        let p = p.clamp(EPSILON, 1.0 - EPSILON);
        loss -= if truth { p.ln() } else { (1.0 - p).ln() };
    }
    Scores {
        auc: auc(predictions, labels),
        log_loss: loss / n,
        accuracy: correct as f64 / n,
        positive_rate: positives as f64 / n,
        predicted_positive_rate: predicted_positive as f64 / n,
        samples,
    }
}

/// Rows sorted by descending prediction, grouped by equal prediction: (threshold, positives,
/// negatives) per group.
fn groups(predictions: &[f64], labels: &[f32]) -> Vec<(f64, usize, usize)> {
    let mut order: Vec<usize> = (0..predictions.len()).collect();
    order.sort_by(|a, b| predictions[*b].total_cmp(&predictions[*a]));
    let mut groups: Vec<(f64, usize, usize)> = Vec::new();
    for i in order {
        let positive = labels[i] > 0.5;
        match groups.last_mut() {
            Some(last) if last.0 == predictions[i] => {
                last.1 += usize::from(positive);
                last.2 += usize::from(!positive);
            }
            _ => groups.push((
                predictions[i],
                usize::from(positive),
                usize::from(!positive),
            )),
        }
    }
    groups
}

/// Area under the ROC curve; ties count half (the trapezoid), as scikit-learn computes it.
/// NaN when one class is absent.
pub fn auc(predictions: &[f64], labels: &[f32]) -> f64 {
    let groups = groups(predictions, labels);
    let positives: usize = groups.iter().map(|g| g.1).sum();
    let negatives: usize = groups.iter().map(|g| g.2).sum();
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let mut area = 0.0;
    let mut tp = 0.0;
    for (_, p, n) in groups {
        // Each negative of the group is outranked by the positives above it, and ties with
        // half of the group's positives.
        area += n as f64 * (tp + p as f64 / 2.0);
        tp += p as f64;
    }
    area / (positives as f64 * negatives as f64)
}

/// The ROC curve from (0, 0) to (1, 1), thinned to at most [`ROC_POINTS`] points, always keeping
/// both ends.
pub fn roc_curve(predictions: &[f64], labels: &[f32]) -> Vec<RocPoint> {
    let groups = groups(predictions, labels);
    let positives = groups.iter().map(|g| g.1).sum::<usize>().max(1) as f64;
    let negatives = groups.iter().map(|g| g.2).sum::<usize>().max(1) as f64;
    let mut curve = vec![RocPoint {
        threshold: f64::INFINITY,
        fpr: 0.0,
        tpr: 0.0,
    }];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (threshold, p, n) in groups {
        tp += p;
        fp += n;
        curve.push(RocPoint {
            threshold,
            fpr: fp as f64 / negatives,
            tpr: tp as f64 / positives,
        });
    }
    if curve.len() <= ROC_POINTS {
        return curve;
    }
    let last = curve.len() - 1;
    (0..ROC_POINTS)
        .map(|i| curve[i * last / (ROC_POINTS - 1)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_the_pairwise_definition_with_ties_counting_half() {
        let predictions = [0.9, 0.8, 0.8, 0.3, 0.2, 0.8];
        let labels = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        // Pairs (positive, negative): 3 × 3 = 9. Wins: 0.9 beats 0.8, 0.2, 0.8 (3); 0.8 ties
        // 0.8 twice (1) and beats 0.2 (1); 0.3 beats 0.2 (1). 6 of 9.
        assert!((auc(&predictions, &labels) - 6.0 / 9.0).abs() < 1e-12);
        assert_eq!(auc(&[0.1, 0.2], &[1.0, 0.0]), 0.0);
        assert!(auc(&[0.1, 0.2], &[1.0, 1.0]).is_nan());
    }

    #[test]
    fn log_loss_accuracy_and_rates_are_computed_at_the_threshold() {
        let s = scores(&[0.9, 0.4, 0.6, 0.1], &[1.0, 1.0, 0.0, 0.0]);
        let expected = -(0.9f64.ln() + 0.4f64.ln() + 0.4f64.ln() + 0.9f64.ln()) / 4.0;
        assert!((s.log_loss - expected).abs() < 1e-12);
        assert_eq!(s.accuracy, 0.5);
        assert_eq!(s.positive_rate, 0.5);
        assert_eq!(s.predicted_positive_rate, 0.5);
        assert_eq!(s.samples, 4);
        let certain = scores(&[0.0], &[1.0]);
        assert!(certain.log_loss.is_finite(), "clipped, not infinite");
    }

    #[test]
    fn the_roc_curve_runs_from_origin_to_one_and_is_thinned_keeping_both_ends() {
        let curve = roc_curve(&[0.9, 0.8, 0.3, 0.2], &[1.0, 0.0, 1.0, 0.0]);
        let points: Vec<(f64, f64)> = curve.iter().map(|p| (p.fpr, p.tpr)).collect();
        assert_eq!(
            points,
            [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        let many: Vec<f64> = (0..5000).map(|i| i as f64 / 5000.0).collect();
        let labels: Vec<f32> = (0..5000).map(|i| (i % 3 == 0) as u8 as f32).collect();
        let thinned = roc_curve(&many, &labels);
        assert_eq!(thinned.len(), ROC_POINTS);
        assert_eq!((thinned[0].fpr, thinned[0].tpr), (0.0, 0.0));
        let end = thinned.last().unwrap();
        assert_eq!((end.fpr, end.tpr), (1.0, 1.0));
        assert!(
            thinned
                .windows(2)
                .all(|w| w[0].fpr <= w[1].fpr && w[0].tpr <= w[1].tpr)
        );
    }
}
