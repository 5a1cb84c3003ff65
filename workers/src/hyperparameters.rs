//! A resource's `spec.hyperparameters`, passed to a training Job as JSON.

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses `json` as `T`: omitted fields take their defaults, and an unknown one (a typo) is an
/// error rather than silently ignored. `open` names fields that hold free-form maps; `hint` ends
/// the unknown-field message.
pub fn parse<T: DeserializeOwned + Serialize + Default>(
    json: &str,
    open: &[&str],
    hint: &str,
) -> anyhow::Result<T> {
    let given: serde_json::Value = serde_json::from_str(json).context("not JSON")?;
    let Some(fields) = given.as_object() else {
        anyhow::bail!("not a JSON object: {json}");
    };
    let defaults = serde_json::to_value(T::default())?;
    let known = |name: &str| open.contains(&name) || defaults.get(name).is_some();
    if let Some(unknown) = fields.keys().find(|name| !known(name)) {
        anyhow::bail!("unknown hyperparameter {unknown:?}{hint}");
    }
    serde_json::from_value(given).context("not a spec.hyperparameters object")
}
