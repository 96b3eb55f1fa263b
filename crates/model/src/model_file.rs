//! The model file (`model.json`): format `medallion-model/1`, documented in
//! docs/model-format.md so a reader in another language can load it. It holds everything
//! prediction needs: the raw inputs, the fitted encoding, the estimator and the output.

use serde::{Deserialize, Serialize};

use crate::features::{Encoder, Matrix};
use crate::frame::Frame;
use crate::gbt::GradientBoosting;
use crate::kmeans::nearest;
use crate::linear::LinearModel;
use crate::spec::Task;

pub const MODEL_FORMAT: &str = "medallion-model/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: String,
    pub model: String,
    pub task: Task,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub encoder: Encoder,
    /// Encoded feature names, in the order the estimator reads them.
    pub features: Vec<String>,
    pub estimator: Estimator,
    pub output: Output,
    /// Clustering: what each segment looks like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    /// KServe V2 datatype of the output tensor (FP64 predictions, INT64 segment ids).
    pub datatype: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimator {
    Linear(LinearModel),
    GradientBoosting(GradientBoosting),
    Kmeans(KmeansModel),
}

/// Standardization (z = (x − mean) / scale) then the nearest centroid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KmeansModel {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub centroids: Vec<Vec<f64>>,
}

impl KmeansModel {
    pub fn scale_row(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(self.mean.iter().zip(&self.scale))
            .map(|(v, (m, s))| (v - m) / s)
            .collect()
    }
}

impl Estimator {
    /// The prediction for one encoded row (clustering: the segment index).
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        match self {
            Estimator::Linear(m) => m.predict_row(x),
            Estimator::GradientBoosting(m) => m.predict_row(x),
            Estimator::Kmeans(m) => nearest(&m.centroids, &m.scale_row(x)).0 as f64,
        }
    }
}

impl ModelFile {
    /// Parses and checks a model file; the error says what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<ModelFile, String> {
        let head: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let format = head.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if format != MODEL_FORMAT {
            return Err(format!(
                "format is '{format}', this build reads '{MODEL_FORMAT}'; upgrade medallion or retrain"
            ));
        }
        let m: ModelFile = serde_json::from_value(head).map_err(|e| e.to_string())?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), String> {
        let width = self.encoder.feature_names().len();
        if width != self.features.len() {
            return Err(format!(
                "the encoder makes {width} features but {} are listed",
                self.features.len()
            ));
        }
        match &self.estimator {
            Estimator::Linear(m) if m.coef.len() != width => Err(format!(
                "{} coefficients for {width} features",
                m.coef.len()
            )),
            Estimator::GradientBoosting(m) => m.trees.iter().try_for_each(|t| t.check(width)),
            Estimator::Kmeans(m)
                if m.mean.len() != width
                    || m.scale.len() != width
                    || m.centroids.is_empty()
                    || m.centroids.iter().any(|c| c.len() != width)
                    || m.scale.iter().any(|s| s.is_nan() || *s <= 0.0) =>
            {
                Err(format!("k-means shapes do not match {width} features"))
            }
            _ => Ok(()),
        }
    }

    /// Encodes the inputs in `frame` and predicts every row.
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>, String> {
        let x = self.encoder.transform(frame)?;
        Ok(self.predict_matrix(&x))
    }

    pub fn predict_matrix(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .map(|i| self.estimator.predict_row(x.row(i)))
            .collect()
    }
}
