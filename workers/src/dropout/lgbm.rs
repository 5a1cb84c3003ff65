//! LightGBM training through its C API. `lightgbm3` builds datasets without parameters, but
//! categorical features (and binning settings) must be given when a dataset is constructed, so
//! datasets and the boosting loop are driven here; prediction uses `lightgbm3::Booster`.

use std::ffi::{CStr, CString, c_void};
use std::os::raw::c_char;

use lightgbm3_sys as sys;

#[derive(Debug, thiserror::Error)]
#[error("LightGBM: {0}")]
pub struct LgbmError(String);

type Result<T> = std::result::Result<T, LgbmError>;

fn check(code: i32) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    // SAFETY: LightGBM returns a pointer to its thread-local, NUL-terminated last error.
    let message = unsafe { CStr::from_ptr(sys::LGBM_GetLastError()) };
    Err(LgbmError(message.to_string_lossy().into_owned()))
}

/// LightGBM's `key=value key=value` parameter string.
pub fn parameter_string(parameters: &[(String, String)]) -> Result<CString> {
    let joined = parameters
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ");
    CString::new(joined).map_err(|_| LgbmError("a parameter contains a NUL byte".into()))
}

/// A constructed dataset (binned features and labels).
pub struct Dataset(sys::DatasetHandle);

impl Dataset {
    /// From row-major `features` (`names.len()` per row); `reference` shares the training set's
    /// bins, as a validation set must.
    pub fn new(
        features: &[f64],
        labels: &[f32],
        names: &[String],
        parameters: &CString,
        reference: Option<&Dataset>,
    ) -> Result<Self> {
        let columns = names.len();
        let rows = labels.len();
        if rows == 0 || features.len() != rows * columns {
            return Err(LgbmError(format!(
                "{} values for {rows} rows of {columns} features",
                features.len()
            )));
        }
        let rows = i32::try_from(rows).map_err(|_| LgbmError(format!("{rows} rows")))?;
        let mut handle = std::ptr::null_mut();
        // SAFETY: `features` holds rows × columns f64 values, row-major, alive for the call.
        check(unsafe {
            sys::LGBM_DatasetCreateFromMat(
                features.as_ptr().cast::<c_void>(),
                sys::C_API_DTYPE_FLOAT64 as i32,
                rows,
                columns as i32,
                1,
                parameters.as_ptr(),
                reference.map_or(std::ptr::null_mut(), |r| r.0),
                &mut handle,
            )
        })?;
        let dataset = Self(handle);
        let label = CString::new("label").expect("no NUL");
        // SAFETY: one f32 label per row.
        check(unsafe {
            sys::LGBM_DatasetSetField(
                dataset.0,
                label.as_ptr(),
                labels.as_ptr().cast::<c_void>(),
                rows,
                sys::C_API_DTYPE_FLOAT32 as i32,
            )
        })?;
        let names: Vec<CString> = names
            .iter()
            .map(|n| CString::new(n.as_str()).expect("feature names have no NUL"))
            .collect();
        let mut pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        // SAFETY: one NUL-terminated name per column, alive for the call.
        check(unsafe {
            sys::LGBM_DatasetSetFeatureNames(dataset.0, pointers.as_mut_ptr(), columns as i32)
        })?;
        Ok(dataset)
    }
}

impl Drop for Dataset {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_DatasetCreateFromMat and is freed once.
        unsafe { sys::LGBM_DatasetFree(self.0) };
    }
}

/// The result of boosting with early stopping on a validation set.
#[derive(Debug)]
pub struct Trained {
    /// The model text, cut at the best iteration.
    pub model: String,
    /// Rounds kept (1-based), the one with the best validation metric.
    pub best_iteration: usize,
    /// The validation metric at the best iteration.
    pub best_validation: f64,
    /// Rounds run, including those after the best.
    pub rounds_run: usize,
}

struct Booster(sys::BoosterHandle);

impl Drop for Booster {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_BoosterCreate and is freed once.
        unsafe { sys::LGBM_BoosterFree(self.0) };
    }
}

impl Booster {
    fn validation_metric(&self) -> Result<f64> {
        let mut count = 0;
        // SAFETY: plain out-parameter.
        check(unsafe { sys::LGBM_BoosterGetEvalCounts(self.0, &mut count) })?;
        if count < 1 {
            return Err(LgbmError("no validation metric configured".into()));
        }
        let mut values = vec![0.0f64; count as usize];
        let mut written = 0;
        // SAFETY: `values` has room for every metric.
        check(unsafe { sys::LGBM_BoosterGetEval(self.0, 1, &mut written, values.as_mut_ptr()) })?;
        Ok(values[0])
    }

    fn model_string(&self, iterations: usize) -> Result<String> {
        let iterations = iterations as i32;
        let mut length = 0i64;
        // SAFETY: a zero-length buffer asks for the needed length.
        check(unsafe {
            sys::LGBM_BoosterSaveModelToString(
                self.0,
                0,
                iterations,
                sys::C_API_FEATURE_IMPORTANCE_GAIN as i32,
                0,
                &mut length,
                std::ptr::null_mut(),
            )
        })?;
        let mut buffer = vec![0u8; length as usize];
        // SAFETY: `buffer` holds `length` bytes.
        check(unsafe {
            sys::LGBM_BoosterSaveModelToString(
                self.0,
                0,
                iterations,
                sys::C_API_FEATURE_IMPORTANCE_GAIN as i32,
                length,
                &mut length,
                buffer.as_mut_ptr().cast::<c_char>(),
            )
        })?;
        let text = CStr::from_bytes_until_nul(&buffer)
            .map_err(|_| LgbmError("model text without terminator".into()))?;
        Ok(text.to_string_lossy().into_owned())
    }
}

/// Boosts up to `max_rounds`, stopping after `patience` rounds without a better validation
/// metric (higher is better: the metric must be AUC-like), and keeps the best iteration.
pub fn train(
    train: &Dataset,
    validation: &Dataset,
    parameters: &CString,
    max_rounds: usize,
    patience: usize,
) -> Result<Trained> {
    let mut handle = std::ptr::null_mut();
    // SAFETY: a live dataset and a NUL-terminated parameter string.
    check(unsafe { sys::LGBM_BoosterCreate(train.0, parameters.as_ptr(), &mut handle) })?;
    let booster = Booster(handle);
    // SAFETY: both handles are live; the validation set was built with `train` as reference.
    check(unsafe { sys::LGBM_BoosterAddValidData(booster.0, validation.0) })?;
    let mut best = (0usize, f64::NEG_INFINITY);
    let mut rounds_run = 0;
    for round in 1..=max_rounds {
        let mut finished = 0;
        // SAFETY: plain out-parameter.
        check(unsafe { sys::LGBM_BoosterUpdateOneIter(booster.0, &mut finished) })?;
        if finished != 0 {
            // No split could improve the training loss: nothing more to learn.
            break;
        }
        rounds_run = round;
        let metric = booster.validation_metric()?;
        if metric > best.1 {
            best = (round, metric);
        } else if round - best.0 >= patience {
            break;
        }
    }
    if best.0 == 0 {
        return Err(LgbmError(
            "no boosting round could be trained (are all labels the same?)".into(),
        ));
    }
    Ok(Trained {
        model: booster.model_string(best.0)?,
        best_iteration: best.0,
        best_validation: best.1,
        rounds_run,
    })
}
