//! The LightGBM parameters of a run, from the TrainingRun's hyperparameters. Pure.

use mooc_crds::training::DropoutHyperparameters;

use super::features::FeatureSchema;

/// LightGBM names (and common aliases) that the typed hyperparameters or the worker itself set;
/// `extraParameters` may not set them a second time.
const RESERVED: &[&str] = &[
    "objective",
    "objective_type",
    "app",
    "application",
    "loss",
    "metric",
    "metrics",
    "metric_types",
    "categorical_feature",
    "cat_feature",
    "categorical_column",
    "cat_column",
    "categorical_features",
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "nrounds",
    "num_boost_round",
    "n_estimators",
    "max_iter",
    "early_stopping_round",
    "early_stopping_rounds",
    "early_stopping",
    "n_iter_no_change",
    "learning_rate",
    "shrinkage_rate",
    "eta",
    "num_leaves",
    "num_leaf",
    "max_leaves",
    "max_leaf",
    "max_leaf_nodes",
    "min_data_in_leaf",
    "min_data_per_leaf",
    "min_data",
    "min_child_samples",
    "min_samples_leaf",
    "feature_fraction",
    "sub_feature",
    "colsample_bytree",
    "lambda_l2",
    "reg_lambda",
    "lambda",
    "l2_regularization",
    "seed",
    "random_seed",
    "random_state",
    "label_column",
    "label",
    "header",
    "has_header",
];

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ParameterError {
    #[error(
        "extraParameters.{0} is set by the worker or a typed hyperparameter (learningRate, \
         numLeaves, maxRounds, earlyStoppingRounds, minDataInLeaf, featureFraction, lambdaL2, seed)"
    )]
    Reserved(String),
    #[error("extraParameters.{0}: a LightGBM name is lower-case letters, digits and '_'")]
    BadName(String),
    #[error("extraParameters.{0}: the value may not contain spaces or '='")]
    BadValue(String),
    #[error("validationFraction {validation} + testFraction {test} leaves no users for training")]
    NoTrainingUsers { validation: f64, test: f64 },
}

/// A TrainingRun's `spec.hyperparameters` as JSON (see [`crate::hyperparameters::parse`]).
pub fn parse_hyperparameters(json: &str) -> anyhow::Result<DropoutHyperparameters> {
    crate::hyperparameters::parse(
        json,
        &["extraParameters"],
        " (LightGBM names go in extraParameters)",
    )
}

/// `key=value` pairs for LightGBM's datasets and booster.
pub fn lightgbm_parameters(
    hyperparameters: &DropoutHyperparameters,
    schema: &FeatureSchema,
    threads: usize,
) -> Result<Vec<(String, String)>, ParameterError> {
    let h = hyperparameters;
    if h.validation_fraction + h.test_fraction >= 0.9 {
        return Err(ParameterError::NoTrainingUsers {
            validation: h.validation_fraction,
            test: h.test_fraction,
        });
    }
    let categorical: Vec<String> = schema
        .categorical_positions()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut parameters: Vec<(String, String)> = [
        ("objective", "binary".to_owned()),
        ("metric", "auc".to_owned()),
        ("categorical_feature", categorical.join(",")),
        ("learning_rate", h.learning_rate.to_string()),
        ("num_leaves", h.num_leaves.to_string()),
        ("min_data_in_leaf", h.min_data_in_leaf.to_string()),
        ("feature_fraction", h.feature_fraction.to_string()),
        ("lambda_l2", h.lambda_l2.to_string()),
        ("seed", h.seed.to_string()),
        ("num_threads", threads.to_string()),
        ("verbosity", "-1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (key, value) in &h.extra_parameters {
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ParameterError::BadName(key.clone()));
        }
        if RESERVED.contains(&key.as_str()) {
            return Err(ParameterError::Reserved(key.clone()));
        }
        if value.is_empty() || value.contains(char::is_whitespace) || value.contains('=') {
            return Err(ParameterError::BadValue(key.clone()));
        }
        match parameters.iter_mut().find(|(k, _)| k == key) {
            // Only num_threads and verbosity can be met here: a user may override them.
            Some(existing) => existing.1 = value.clone(),
            None => parameters.push((key.clone(), value.clone())),
        }
    }
    Ok(parameters)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn value<'a>(parameters: &'a [(String, String)], key: &str) -> &'a str {
        &parameters.iter().find(|(k, _)| k == key).unwrap().1
    }

    #[test]
    fn typed_hyperparameters_map_to_lightgbm_names_with_the_categoricals() {
        let h = DropoutHyperparameters {
            extra_parameters: BTreeMap::from([
                ("max_bin".to_owned(), "127".to_owned()),
                ("num_threads".to_owned(), "1".to_owned()),
            ]),
            ..DropoutHyperparameters::default()
        };
        let schema = FeatureSchema { demographics: true };
        let p = lightgbm_parameters(&h, &schema, 2).unwrap();
        assert_eq!(value(&p, "objective"), "binary");
        assert_eq!(value(&p, "metric"), "auc");
        assert_eq!(value(&p, "categorical_feature"), "24,25,26");
        assert_eq!(value(&p, "learning_rate"), "0.05");
        assert_eq!(value(&p, "num_leaves"), "31");
        assert_eq!(value(&p, "max_bin"), "127");
        assert_eq!(value(&p, "num_threads"), "1", "a user may pin the threads");
        assert_eq!(p.iter().filter(|(k, _)| k == "num_threads").count(), 1);
    }

    #[test]
    fn hyperparameters_take_defaults_and_refuse_unknown_names() {
        let parsed = parse_hyperparameters(r#"{"numLeaves": 63}"#).unwrap();
        assert_eq!(parsed.num_leaves, 63);
        assert_eq!(
            parsed.learning_rate,
            DropoutHyperparameters::default().learning_rate
        );
        let typo = parse_hyperparameters(r#"{"learningrate": 0.1}"#).unwrap_err();
        assert!(typo.to_string().contains("\"learningrate\""), "{typo}");
        let wrong = parse_hyperparameters(r#"{"numLeaves": "many"}"#).unwrap_err();
        assert!(
            format!("{wrong:#}").contains("invalid type: string"),
            "{wrong:#}"
        );
        assert!(parse_hyperparameters("[1]").is_err());
    }

    #[test]
    fn extra_parameters_cannot_override_the_typed_ones_or_smuggle_in_more() {
        let with = |key: &str, value: &str| DropoutHyperparameters {
            extra_parameters: BTreeMap::from([(key.to_owned(), value.to_owned())]),
            ..DropoutHyperparameters::default()
        };
        let schema = FeatureSchema {
            demographics: false,
        };
        let refused = |h: DropoutHyperparameters| lightgbm_parameters(&h, &schema, 2).unwrap_err();
        assert_eq!(
            refused(with("eta", "0.3")),
            ParameterError::Reserved("eta".into())
        );
        assert_eq!(
            refused(with("objective", "regression")),
            ParameterError::Reserved("objective".into())
        );
        assert_eq!(
            refused(with("max_bin", "63 objective=regression")),
            ParameterError::BadValue("max_bin".into())
        );
        assert_eq!(
            refused(with("Max-Bin", "63")),
            ParameterError::BadName("Max-Bin".into())
        );
        let no_train = DropoutHyperparameters {
            validation_fraction: 0.5,
            test_fraction: 0.45,
            ..DropoutHyperparameters::default()
        };
        assert!(matches!(
            refused(no_train),
            ParameterError::NoTrainingUsers { .. }
        ));
    }
}
