//! The KServe V2 / Open Inference Protocol request and response bodies, with Triton's binary
//! tensor extension (`Inference-Header-Content-Length`: a JSON header followed by raw tensors,
//! which `tritonclient` uses by default), decoded into the model's input columns.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate};
use medallion_model::ModelFile;
use medallion_model::frame::{Column, ColumnData, Frame, ValueKind};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// A request the server refuses (HTTP 400, `{"error": "..."}`).
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest(pub String);

impl BadRequest {
    fn new(message: impl Into<String>) -> BadRequest {
        BadRequest(message.into())
    }
}

#[derive(Debug, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    pub inputs: Vec<InputTensor>,
    #[serde(default)]
    pub outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Debug, Deserialize)]
pub struct InputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub struct RequestedOutput {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

/// Values of one tensor, flattened.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Numbers(Vec<f64>),
    Texts(Vec<String>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Texts(v) => v.len(),
        }
    }
}

const NUMERIC: [&str; 11] = [
    "FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16",
    "UINT8",
];

fn width(datatype: &str) -> Option<usize> {
    Some(match datatype {
        "FP64" | "INT64" | "UINT64" => 8,
        "FP32" | "INT32" | "UINT32" => 4,
        "FP16" | "INT16" | "UINT16" => 2,
        "INT8" | "UINT8" | "BOOL" => 1,
        _ => return None,
    })
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// Decodes one tensor's JSON `data` or binary bytes.
fn decode(t: &InputTensor, binary: Option<&[u8]>) -> Result<Values, BadRequest> {
    let dt = t.datatype.as_str();
    if !NUMERIC.contains(&dt) && dt != "BOOL" && dt != "BYTES" {
        return Err(BadRequest::new(format!(
            "input {}: datatype {dt} is not supported; use FP64, FP32, INT64, INT32, BOOL or BYTES",
            t.name
        )));
    }
    if let Some(raw) = binary {
        if dt == "BYTES" {
            let mut out = Vec::new();
            let mut rest = raw;
            while !rest.is_empty() {
                let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(|| {
                    BadRequest::new(format!("input {}: truncated BYTES element", t.name))
                })?;
                let len = u32::from_le_bytes(*len) as usize;
                if tail.len() < len {
                    return Err(BadRequest::new(format!(
                        "input {}: truncated BYTES element",
                        t.name
                    )));
                }
                let s = std::str::from_utf8(&tail[..len]).map_err(|_| {
                    BadRequest::new(format!("input {}: BYTES element is not UTF-8", t.name))
                })?;
                out.push(s.to_string());
                rest = &tail[len..];
            }
            return Ok(Values::Texts(out));
        }
        let w = width(dt).unwrap_or(8);
        if raw.len() % w != 0 {
            return Err(BadRequest::new(format!(
                "input {}: {} binary bytes is not a whole number of {dt} values",
                t.name,
                raw.len()
            )));
        }
        let nums = raw
            .chunks_exact(w)
            .map(|c| {
                let mut b8 = [0u8; 8];
                b8[..w].copy_from_slice(c);
                match dt {
                    "FP64" => f64::from_le_bytes(b8),
                    "FP32" => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                    "FP16" => half_to_f64(u16::from_le_bytes([c[0], c[1]])),
                    "INT64" => i64::from_le_bytes(b8) as f64,
                    "INT32" => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                    "INT16" => i16::from_le_bytes([c[0], c[1]]) as f64,
                    "INT8" => c[0] as i8 as f64,
                    "BOOL" => f64::from(u8::from(c[0] != 0)),
                    _ => u64::from_le_bytes(b8) as f64,
                }
            })
            .collect();
        return Ok(Values::Numbers(nums));
    }
    let Some(data) = &t.data else {
        return Err(BadRequest::new(format!(
            "input {}: no data (give \"data\" or binary data with parameters.binary_data_size)",
            t.name
        )));
    };
    let mut flat = Vec::new();
    flatten(data, &mut flat);
    if dt == "BYTES" {
        let texts = flat
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(BadRequest::new(format!(
                    "input {}: BYTES data holds {other}, expected strings",
                    t.name
                ))),
            })
            .collect::<Result<_, _>>()?;
        return Ok(Values::Texts(texts));
    }
    let nums = flat
        .iter()
        .map(|v| match (v, dt) {
            (Value::Bool(b), "BOOL") => Ok(f64::from(u8::from(*b))),
            (Value::Number(n), _) if dt != "BOOL" => n.as_f64().ok_or(()),
            _ => Err(()),
        })
        .collect::<Result<Vec<f64>, ()>>()
        .map_err(|()| {
            BadRequest::new(format!(
                "input {}: data does not match datatype {dt} (expected {})",
                t.name,
                if dt == "BOOL" {
                    "true/false"
                } else {
                    "numbers"
                }
            ))
        })?;
    Ok(Values::Numbers(nums))
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

fn shape_len(t: &InputTensor) -> Result<usize, BadRequest> {
    if t.shape.is_empty() || t.shape.iter().any(|&d| d < 0) {
        return Err(BadRequest::new(format!(
            "input {}: shape {:?} must list non-negative dimensions",
            t.name, t.shape
        )));
    }
    Ok(t.shape.iter().map(|&d| d as usize).product())
}

/// Days since 1970-01-01 of an ISO date or RFC 3339 timestamp.
fn days_of(text: &str) -> Option<f64> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
        return Some((d - epoch).num_days() as f64);
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros() as f64 / 86_400e6)
}

/// One model input's values as a frame column.
fn column_for(
    input: &medallion_model::features::Input,
    values: Values,
    tensor: &str,
) -> Result<Column, BadRequest> {
    let data = match (input.kind, values) {
        (ValueKind::Text, Values::Texts(t)) => ColumnData::Text(t.into_iter().map(Some).collect()),
        (ValueKind::Text, Values::Numbers(_)) => {
            return Err(BadRequest::new(format!(
                "input {}: is text; send it as BYTES",
                input.name
            )));
        }
        (ValueKind::Date | ValueKind::Timestamp, Values::Texts(t)) => ColumnData::Number(
            t.iter()
                .map(|s| {
                    days_of(s).ok_or_else(|| {
                        BadRequest::new(format!(
                            "input {}: '{s}' is not a date (YYYY-MM-DD) or RFC 3339 timestamp",
                            input.name
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        (_, Values::Numbers(n)) => {
            if let Some(i) = n.iter().position(|x| !x.is_finite()) {
                return Err(BadRequest::new(format!(
                    "{tensor}: element {i} of input {} is NaN or infinite; send a finite number",
                    input.name
                )));
            }
            ColumnData::Number(n)
        }
        (_, Values::Texts(_)) => {
            return Err(BadRequest::new(format!(
                "input {}: is numeric; send FP64, FP32, INT64, INT32 or BOOL, not BYTES",
                input.name
            )));
        }
    };
    Ok(Column {
        kind: input.kind,
        data,
    })
}

/// Splits a body into the JSON header and the binary tensors (`header_len` from
/// `Inference-Header-Content-Length`).
pub fn parse(body: &[u8], header_len: Option<usize>) -> Result<(InferRequest, &[u8]), BadRequest> {
    let (json_part, binary) = match header_len {
        Some(n) if n <= body.len() => body.split_at(n),
        Some(n) => {
            return Err(BadRequest::new(format!(
                "Inference-Header-Content-Length {n} is larger than the body ({} bytes)",
                body.len()
            )));
        }
        None => (body, &[][..]),
    };
    let req: InferRequest = serde_json::from_slice(json_part)
        .map_err(|e| BadRequest::new(format!("request body is not a V2 inference request: {e}")))?;
    Ok((req, binary))
}

/// The model's input columns from the request's tensors: one tensor per input, or one
/// row-major `[rows, inputs]` tensor holding them all in metadata order.
pub fn frame_of(
    model: &ModelFile,
    req: &InferRequest,
    binary: &[u8],
    max_rows: usize,
) -> Result<Frame, BadRequest> {
    let mut offset = 0usize;
    let mut decoded: Vec<(&InputTensor, Values)> = Vec::new();
    for t in &req.inputs {
        let size = t
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_size"))
            .map(|v| v.as_u64().map(|n| n as usize).ok_or(()))
            .transpose()
            .map_err(|()| {
                BadRequest::new(format!("input {}: binary_data_size is not a count", t.name))
            })?;
        let raw = match size {
            Some(n) => {
                let end = offset
                    .checked_add(n)
                    .filter(|&e| e <= binary.len())
                    .ok_or_else(|| {
                        BadRequest::new(format!(
                            "input {}: binary data is shorter than binary_data_size",
                            t.name
                        ))
                    })?;
                let r = &binary[offset..end];
                offset = end;
                Some(r)
            }
            None => None,
        };
        let values = decode(t, raw)?;
        let expected = shape_len(t)?;
        if values.len() != expected {
            return Err(BadRequest::new(format!(
                "input {}: shape {:?} needs {expected} values but {} were sent",
                t.name,
                t.shape,
                values.len()
            )));
        }
        decoded.push((t, values));
    }
    let inputs = &model.encoder.inputs;
    let mut columns = BTreeMap::new();
    let rows;
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    if decoded.len() == 1 && !names.contains(&decoded[0].0.name.as_str()) {
        // One row-major tensor [rows, inputs].
        let (t, values) = decoded.remove(0);
        let k = inputs.len();
        if t.shape.len() != 2 || t.shape[1] as usize != k {
            return Err(BadRequest::new(format!(
                "input {}: is not a model input ({}); a single row-major tensor needs shape [rows, {k}]",
                t.name,
                names.join(", ")
            )));
        }
        rows = t.shape[0] as usize;
        check_rows(rows, max_rows)?;
        for (j, input) in inputs.iter().enumerate() {
            let col = match &values {
                Values::Numbers(n) => Values::Numbers((0..rows).map(|i| n[i * k + j]).collect()),
                Values::Texts(s) => {
                    Values::Texts((0..rows).map(|i| s[i * k + j].clone()).collect())
                }
            };
            columns.insert(input.name.clone(), column_for(input, col, &t.name)?);
        }
    } else {
        let mut n_rows: Option<usize> = None;
        for (t, values) in decoded {
            let Some(input) = inputs.iter().find(|i| i.name == t.name) else {
                return Err(BadRequest::new(format!(
                    "unknown input {}; the model's inputs are {}",
                    t.name,
                    names.join(", ")
                )));
            };
            if columns.contains_key(&t.name) {
                return Err(BadRequest::new(format!("input {} is sent twice", t.name)));
            }
            let len = values.len();
            if t.shape.len() > 2 || (t.shape.len() == 2 && t.shape[1] != 1) {
                return Err(BadRequest::new(format!(
                    "input {}: shape {:?} must be [rows] or [rows, 1]",
                    t.name, t.shape
                )));
            }
            match n_rows {
                Some(n) if n != len => {
                    return Err(BadRequest::new(format!(
                        "input {} has {len} rows but an earlier input has {n}",
                        t.name
                    )));
                }
                _ => n_rows = Some(len),
            }
            columns.insert(t.name.clone(), column_for(input, values, &t.name)?);
        }
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !columns.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            return Err(BadRequest::new(format!(
                "missing input(s) {}",
                missing.join(", ")
            )));
        }
        rows = n_rows.unwrap_or(0);
        check_rows(rows, max_rows)?;
    }
    if rows == 0 {
        return Err(BadRequest::new("the request has no rows"));
    }
    Ok(Frame { rows, columns })
}

fn check_rows(rows: usize, max: usize) -> Result<(), BadRequest> {
    if rows > max {
        return Err(BadRequest::new(format!(
            "{rows} rows is over the limit of {max} per request; send smaller batches"
        )));
    }
    Ok(())
}

/// Whether the client asked for binary outputs.
pub fn wants_binary(req: &InferRequest) -> bool {
    let flag = |p: &Option<Map<String, Value>>, key: &str| {
        p.as_ref()
            .and_then(|p| p.get(key))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    match &req.outputs {
        Some(outs) if !outs.is_empty() => outs.iter().any(|o| flag(&o.parameters, "binary_data")),
        _ => flag(&req.parameters, "binary_data_output"),
    }
}

/// Checks the requested outputs name the model's output.
pub fn check_outputs(model: &ModelFile, req: &InferRequest) -> Result<(), BadRequest> {
    if let Some(outs) = &req.outputs {
        for o in outs {
            if o.name != model.output.name {
                return Err(BadRequest::new(format!(
                    "unknown output {}; the model's output is {}",
                    o.name, model.output.name
                )));
            }
        }
    }
    Ok(())
}

/// The response body: JSON, or JSON header + binary tensor (returns the header length).
pub fn response(
    model: &ModelFile,
    version: &str,
    id: Option<&str>,
    predictions: &[f64],
    binary: bool,
) -> (Vec<u8>, Option<usize>) {
    let integer = model.output.datatype == "INT64";
    let mut out = json!({
        "name": model.output.name,
        "datatype": model.output.datatype,
        "shape": [predictions.len()],
    });
    let mut tail = Vec::new();
    if binary {
        for p in predictions {
            if integer {
                tail.extend_from_slice(&(*p as i64).to_le_bytes());
            } else {
                tail.extend_from_slice(&p.to_le_bytes());
            }
        }
        out["parameters"] = json!({"binary_data_size": tail.len()});
    } else if integer {
        out["data"] = json!(predictions.iter().map(|p| *p as i64).collect::<Vec<_>>());
    } else {
        out["data"] = json!(predictions);
    }
    let mut body = json!({
        "model_name": model.model,
        "model_version": version,
        "outputs": [out],
    });
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    if binary {
        let header = bytes.len();
        bytes.extend_from_slice(&tail);
        (bytes, Some(header))
    } else {
        (bytes, None)
    }
}

/// `GET /v2/models/{name}`: inputs and outputs with datatypes and shapes.
pub fn metadata(model: &ModelFile, version: &str) -> Value {
    let inputs: Vec<Value> = model
        .encoder
        .inputs
        .iter()
        .map(|i| {
            let dt = match i.kind {
                ValueKind::Number => "FP64",
                ValueKind::Boolean => "BOOL",
                ValueKind::Text | ValueKind::Date | ValueKind::Timestamp => "BYTES",
            };
            json!({"name": i.name, "datatype": dt, "shape": [-1]})
        })
        .collect();
    json!({
        "name": model.model,
        "versions": [version],
        "platform": "medallion",
        "inputs": inputs,
        "outputs": [{"name": model.output.name, "datatype": model.output.datatype, "shape": [-1]}],
    })
}
