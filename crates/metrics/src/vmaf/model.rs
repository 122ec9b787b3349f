//! VMAF model files (libvmaf's JSON format): feature list and options, linear feature
//! normalisation, the ν-SVR with an RBF kernel, the optional score transform and clipping.

use serde_json::Value;

use super::VmafError;

/// A feature a model reads, as computed by this crate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ModelFeature {
    /// `VMAF_integer_feature_adm2_score` with an enhancement-gain limit.
    Adm2 { gain_limit: f64 },
    /// `VMAF_integer_feature_motion2_score`.
    Motion2,
    /// `VMAF_integer_feature_vif_scaleN_score` with an enhancement-gain limit.
    Vif { scale: usize, gain_limit: f64 },
}

/// libvmaf's default enhancement-gain limit (no limit in practice).
pub const DEFAULT_GAIN_LIMIT: f64 = 100.0;

/// The polynomial and rectification applied to the prediction when the transform is enabled.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreTransform {
    pub p0: Option<f64>,
    pub p1: Option<f64>,
    pub p2: Option<f64>,
    /// Piecewise-linear knots `(x, y)` applied after the polynomial.
    pub knots: Vec<(f64, f64)>,
    pub out_lte_in: bool,
    pub out_gte_in: bool,
    /// Whether the model file asks for the transform by default (libvmaf's `enabled` key).
    pub enabled_by_default: bool,
}

/// A loaded VMAF model.
#[derive(Clone, Debug)]
pub struct VmafModel {
    name: String,
    features: Vec<ModelFeature>,
    /// Slope and intercept of the prediction (index 0) and of each feature (1..).
    slopes: Vec<f64>,
    intercepts: Vec<f64>,
    normalise: bool,
    clip: Option<(f64, f64)>,
    transform: Option<ScoreTransform>,
    gamma: f64,
    rho: f64,
    /// Support vectors: coefficient and dense values (one per feature).
    support: Vec<(f64, Vec<f64>)>,
}

/// The models shipped inside the crate, with their libvmaf names.
const BUILTIN: [(&str, &str); 3] = [
    ("vmaf_v0.6.1", include_str!("../../models/vmaf_v0.6.1.json")),
    (
        "vmaf_v0.6.1neg",
        include_str!("../../models/vmaf_v0.6.1neg.json"),
    ),
    (
        "vmaf_4k_v0.6.1",
        include_str!("../../models/vmaf_4k_v0.6.1.json"),
    ),
];

impl VmafModel {
    /// The names of the built-in models.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    /// A built-in model by name (`vmaf_v0.6.1`, `vmaf_v0.6.1neg`, `vmaf_4k_v0.6.1`).
    pub fn builtin(name: &str) -> Result<Self, VmafError> {
        let (n, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| VmafError::UnknownModel(name.to_string()))?;
        Self::from_json(n, text)
    }

    /// The default model, VMAF v0.6.1.
    pub fn v0_6_1() -> Self {
        Self::builtin("vmaf_v0.6.1").expect("the built-in model parses (checked by a test)")
    }

    /// The NEG variant of v0.6.1 (no credit for enhancement).
    pub fn v0_6_1_neg() -> Self {
        Self::builtin("vmaf_v0.6.1neg").expect("the built-in model parses (checked by a test)")
    }

    /// A built-in name, or else a path to a JSON model file.
    pub fn from_name_or_path(spec: &str) -> Result<Self, VmafError> {
        if BUILTIN.iter().any(|(n, _)| *n == spec) {
            return Self::builtin(spec);
        }
        let path = std::path::Path::new(spec);
        let text = std::fs::read_to_string(path).map_err(|source| VmafError::ModelIo {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("vmaf")
            .to_string();
        Self::from_json(&name, &text)
    }

    /// Parses a model in libvmaf's JSON format.
    pub fn from_json(name: &str, text: &str) -> Result<Self, VmafError> {
        let bad = |why: String| VmafError::BadModel {
            name: name.to_string(),
            why,
        };
        let root: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let dict = root
            .get("model_dict")
            .ok_or_else(|| bad("no `model_dict`".into()))?;
        let model_type = dict.get("model_type").and_then(Value::as_str).unwrap_or("");
        if model_type != "LIBSVMNUSVR" {
            return Err(bad(format!(
                "model type `{model_type}` is not supported (only LIBSVMNUSVR)"
            )));
        }
        let normalise = match dict.get("norm_type").and_then(Value::as_str) {
            Some("linear_rescale") => true,
            Some("none") | None => false,
            Some(other) => return Err(bad(format!("unknown norm_type `{other}`"))),
        };
        let numbers = |key: &str| -> Result<Vec<f64>, VmafError> {
            match dict.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_f64()
                            .ok_or_else(|| bad(format!("`{key}` holds a non-number")))
                    })
                    .collect(),
                Some(_) => Err(bad(format!("`{key}` is not an array"))),
            }
        };
        let names: Vec<String> = dict
            .get("feature_names")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `feature_names`".into()))?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("`feature_names` holds a non-string".into()))?;
        let opts = dict.get("feature_opts_dicts").and_then(Value::as_array);
        let mut features = Vec::with_capacity(names.len());
        for (i, fname) in names.iter().enumerate() {
            let opt = opts.and_then(|o| o.get(i));
            features.push(parse_feature(fname, opt).map_err(bad)?);
        }
        let slopes = numbers("slopes")?;
        let intercepts = numbers("intercepts")?;
        if normalise && (slopes.len() != names.len() + 1 || intercepts.len() != names.len() + 1) {
            return Err(bad("slopes/intercepts do not match the feature list".into()));
        }
        let clip = match numbers("score_clip")?.as_slice() {
            [] => None,
            [lo, hi] => Some((*lo, *hi)),
            _ => return Err(bad("`score_clip` must hold two numbers".into())),
        };
        let transform = match dict.get("score_transform") {
            None | Some(Value::Null) => None,
            Some(t) => Some(parse_transform(t).map_err(bad)?),
        };
        let svm_text = dict
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `model` text".into()))?;
        let (gamma, rho, support) = parse_svm(svm_text, names.len()).map_err(bad)?;
        Ok(VmafModel {
            name: name.to_string(),
            features,
            slopes,
            intercepts,
            normalise,
            clip,
            transform,
            gamma,
            rho,
            support,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The features the model reads, in its order.
    pub fn features(&self) -> &[ModelFeature] {
        &self.features
    }

    pub fn transform(&self) -> Option<&ScoreTransform> {
        self.transform.as_ref()
    }

    /// The score for one frame from the feature values (in [`Self::features`] order).
    /// `apply_transform` forces the score transform on or off; `None` follows the model file.
    pub fn predict(&self, values: &[f64], apply_transform: Option<bool>) -> f64 {
        let x: Vec<f64> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if self.normalise {
                    self.slopes[i + 1] * v + self.intercepts[i + 1]
                } else {
                    v
                }
            })
            .collect();
        let mut sum = 0.0;
        for (coef, sv) in &self.support {
            let mut dist = 0.0;
            for (a, b) in x.iter().zip(sv) {
                let d = a - b;
                dist += d * d;
            }
            sum += coef * (-self.gamma * dist).exp();
        }
        let mut prediction = sum - self.rho;
        if self.normalise {
            prediction = (prediction - self.intercepts[0]) / self.slopes[0];
        }
        if let Some(t) = &self.transform
            && apply_transform.unwrap_or(t.enabled_by_default)
        {
            prediction = t.apply(prediction);
        }
        if let Some((lo, hi)) = self.clip {
            prediction = if prediction < lo { lo } else { prediction };
            prediction = if prediction > hi { hi } else { prediction };
        }
        prediction
    }
}

impl ScoreTransform {
    fn apply(&self, y_in: f64) -> f64 {
        let mut y = if self.p0.is_some() || self.p1.is_some() || self.p2.is_some() {
            self.p0.unwrap_or(0.0)
                + self.p1.map_or(0.0, |p| p * y_in)
                + self.p2.map_or(0.0, |p| p * y_in * y_in)
        } else {
            y_in
        };
        if self.knots.len() >= 2 {
            y = piecewise_linear(y, &self.knots);
        }
        if self.out_lte_in && y > y_in {
            y = y_in;
        }
        if self.out_gte_in && y < y_in {
            y = y_in;
        }
        y
    }
}

/// Linear interpolation through `knots`, extrapolating the first and last segments; where two
/// segments claim `x` the later one wins, as in libvmaf.
fn piecewise_linear(x: f64, knots: &[(f64, f64)]) -> f64 {
    let last = knots.len() - 2;
    let mut y = 0.0;
    for (i, pair) in knots.windows(2).enumerate() {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let claims = (x0 <= x && x <= x1) || (i == 0 && x < x0) || (i == last && x > x1);
        if claims {
            y = if y0 == y1 {
                y0
            } else {
                let slope = (y1 - y0) / (x1 - x0);
                let offset = y0 - x0 * slope;
                slope * x + offset
            };
        }
    }
    y
}

fn parse_feature(name: &str, opts: Option<&Value>) -> Result<ModelFeature, String> {
    let mut gain_limit = DEFAULT_GAIN_LIMIT;
    if let Some(Value::Object(map)) = opts {
        for (key, value) in map {
            let v = value
                .as_f64()
                .ok_or_else(|| format!("option `{key}` of `{name}` is not a number"))?;
            match key.as_str() {
                "adm_enhn_gain_limit" if name.contains("adm") => gain_limit = v,
                "vif_enhn_gain_limit" if name.contains("vif") => gain_limit = v,
                _ => return Err(format!("option `{key}` of `{name}` is not supported")),
            }
        }
        if !(1.0..=DEFAULT_GAIN_LIMIT).contains(&gain_limit) {
            return Err(format!(
                "enhancement gain limit {gain_limit} of `{name}` is outside [1, 100]"
            ));
        }
    }
    let feature = match name {
        "VMAF_integer_feature_adm2_score" => ModelFeature::Adm2 { gain_limit },
        "VMAF_integer_feature_motion2_score" => ModelFeature::Motion2,
        _ => match name
            .strip_prefix("VMAF_integer_feature_vif_scale")
            .and_then(|s| s.strip_suffix("_score"))
        {
            Some(d @ ("0" | "1" | "2" | "3")) => ModelFeature::Vif {
                scale: usize::from(d.as_bytes()[0] - b'0'),
                gain_limit,
            },
            _ => return Err(format!("feature `{name}` is not implemented")),
        },
    };
    Ok(feature)
}

fn parse_flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

fn parse_transform(t: &Value) -> Result<ScoreTransform, String> {
    let coefficient = |key: &str| -> Result<Option<f64>, String> {
        match t.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("score_transform `{key}` is not a number")),
        }
    };
    let knots = match t.get("knots") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|k| match k.as_array().map(Vec::as_slice) {
                Some([x, y]) => x
                    .as_f64()
                    .zip(y.as_f64())
                    .ok_or_else(|| "a knot holds a non-number".to_string()),
                _ => Err("a knot is not an [x, y] pair".to_string()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("score_transform `knots` is not an array".into()),
    };
    let increasing = knots
        .windows(2)
        .all(|p: &[(f64, f64)]| p[0].0 < p[1].0 && p[0].1 <= p[1].1);
    if knots.len() == 1 || !increasing {
        return Err("score_transform `knots` must increase in x and not decrease in y".into());
    }
    Ok(ScoreTransform {
        p0: coefficient("p0")?,
        p1: coefficient("p1")?,
        p2: coefficient("p2")?,
        knots,
        out_lte_in: parse_flag(t.get("out_lte_in")),
        out_gte_in: parse_flag(t.get("out_gte_in")),
        enabled_by_default: parse_flag(t.get("enabled")),
    })
}

type Support = Vec<(f64, Vec<f64>)>;

/// Reads libsvm's text model: header lines, then `SV` and one line per support vector
/// (`coef index:value ...`).
fn parse_svm(text: &str, n_features: usize) -> Result<(f64, f64, Support), String> {
    let mut lines = text.lines();
    let (mut gamma, mut rho) = (None, None);
    for line in lines.by_ref() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("SV"), _) => break,
            (Some("svm_type"), Some(t)) if t != "nu_svr" && t != "epsilon_svr" => {
                return Err(format!("svm_type `{t}` is not a regression"));
            }
            (Some("kernel_type"), Some(k)) if k != "rbf" => {
                return Err(format!("kernel `{k}` is not supported (only rbf)"));
            }
            (Some("gamma"), Some(g)) => gamma = g.parse::<f64>().ok(),
            (Some("rho"), Some(r)) => rho = r.parse::<f64>().ok(),
            _ => {}
        }
    }
    let gamma = gamma.ok_or("the SVM has no gamma")?;
    let rho = rho.ok_or("the SVM has no rho")?;
    let mut support = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let Some(coef) = words.next() else { continue };
        let coef: f64 = coef
            .parse()
            .map_err(|_| format!("bad support-vector coefficient `{coef}`"))?;
        let mut values = vec![0.0; n_features];
        for pair in words {
            let (index, value) = pair
                .split_once(':')
                .ok_or_else(|| format!("bad support-vector entry `{pair}`"))?;
            let index: usize = index
                .parse()
                .map_err(|_| format!("bad support-vector index `{index}`"))?;
            let value: f64 = value
                .parse()
                .map_err(|_| format!("bad support-vector value `{value}`"))?;
            if index == 0 || index > n_features {
                return Err(format!("support-vector index {index} is out of range"));
            }
            values[index - 1] = value;
        }
        support.push((coef, values));
    }
    if support.is_empty() {
        return Err("the SVM has no support vectors".into());
    }
    Ok((gamma, rho, support))
}
