//! `card.html`: one self-contained page per model version (no scripts, no external files):
//! data lineage, features, parameters, metrics, a plot (predicted vs actual and residuals, or
//! segments), per-segment summaries and how to call the served model.

use std::fmt::Write;

use crate::model_file::ModelFile;

/// What the card shows besides the model file.
pub struct CardData<'a> {
    pub model: &'a ModelFile,
    pub version: u64,
    pub data: &'a str,
    pub data_sha256: &'a str,
    pub spec_sha256: &'a str,
    pub params: &'a serde_json::Value,
    pub metrics: &'a serde_json::Value,
    /// Regression holdout: (actual, predicted).
    pub holdout: &'a [(f64, f64)],
    /// Clustering: (x, y, segment) points to plot and their axis names.
    pub points: &'a [(f64, f64, usize)],
    pub axes: (&'a str, &'a str),
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

fn scatter(points: &[(f64, f64, usize)], x_label: &str, y_label: &str, diagonal: bool) -> String {
    let (w, h, pad) = (420.0, 320.0, 48.0);
    let finite: Vec<_> = points
        .iter()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in &finite {
        x0 = x0.min(p.0);
        x1 = x1.max(p.0);
        y0 = y0.min(p.1);
        y1 = y1.max(p.1);
    }
    if diagonal {
        x0 = x0.min(y0);
        y0 = x0;
        x1 = x1.max(y1);
        y1 = x1;
    }
    if x1.partial_cmp(&x0) != Some(std::cmp::Ordering::Greater) {
        x1 = x0 + 1.0;
    }
    if y1.partial_cmp(&y0) != Some(std::cmp::Ordering::Greater) {
        y1 = y0 + 1.0;
    }
    let sx = |x: f64| pad + (x - x0) / (x1 - x0) * (w - 2.0 * pad);
    let sy = |y: f64| h - pad - (y - y0) / (y1 - y0) * (h - 2.0 * pad);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\"><rect x=\"{pad}\" y=\"{pad}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
        w - 2.0 * pad,
        h - 2.0 * pad
    );
    if diagonal {
        let _ = write!(
            s,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>",
            sx(x0),
            sy(y0),
            sx(x1),
            sy(y1)
        );
    }
    for p in finite.iter().take(3000) {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\" fill-opacity=\"0.6\"/>",
            sx(p.0),
            sy(p.1),
            COLORS[p.2 % COLORS.len()]
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{} ({:.3} – {:.3})</text><text x=\"14\" y=\"{}\" font-size=\"12\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{} ({:.3} – {:.3})</text></svg>",
        w / 2.0,
        h - 12.0,
        escape(x_label),
        x0,
        x1,
        h / 2.0,
        h / 2.0,
        escape(y_label),
        y0,
        y1
    );
    s
}

fn histogram(values: &[f64], label: &str) -> String {
    let (w, h, pad, bins) = (420.0, 320.0, 48.0, 30usize);
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let lo = v.iter().copied().fold(f64::MAX, f64::min);
    let mut hi = v.iter().copied().fold(f64::MIN, f64::max);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        hi = lo + 1.0;
    }
    let mut counts = vec![0usize; bins];
    for x in &v {
        let b = (((x - lo) / (hi - lo)) * bins as f64) as usize;
        counts[b.min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bw = (w - 2.0 * pad) / bins as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\">"
    );
    for (i, c) in counts.iter().enumerate() {
        let bh = *c as f64 / top * (h - 2.0 * pad);
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#1f77b4\"/>",
            pad + i as f64 * bw,
            h - pad - bh,
            bw - 1.0,
            bh
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{} ({:.3} – {:.3})</text></svg>",
        w / 2.0,
        h - 12.0,
        escape(label),
        lo,
        hi
    );
    s
}

fn json_table(value: &serde_json::Value) -> String {
    let mut s = String::from("<table>");
    if let Some(obj) = value.as_object() {
        for (k, v) in obj {
            let shown = match v {
                serde_json::Value::Number(n) => n.as_f64().map_or(n.to_string(), |f| {
                    if f.fract() == 0.0 {
                        format!("{f}")
                    } else {
                        format!("{f:.6}")
                    }
                }),
                other => other.to_string(),
            };
            let _ = write!(
                s,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(k),
                escape(&shown)
            );
        }
    }
    s.push_str("</table>");
    s
}

/// The card as one HTML page.
pub fn render(c: &CardData<'_>) -> String {
    let m = c.model;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name} v{v} — model card</title><style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ddd;padding:.25em .6em;text-align:left}}code,pre{{background:#f4f4f4;padding:.1em .3em}}.plots{{display:flex;gap:1em;flex-wrap:wrap}}</style></head><body><h1>{name} v{v}</h1>",
        name = escape(&m.model),
        v = c.version
    );
    let _ = write!(
        s,
        "<h2>Lineage</h2><table><tr><th>data</th><td>{}</td></tr><tr><th>data sha256</th><td><code>{}</code></td></tr><tr><th>spec sha256</th><td><code>{}</code></td></tr><tr><th>task</th><td>{:?}</td></tr><tr><th>target</th><td>{}</td></tr></table>",
        escape(c.data),
        escape(c.data_sha256),
        escape(c.spec_sha256),
        m.task,
        escape(m.target.as_deref().unwrap_or("—"))
    );
    s.push_str("<h2>Metrics</h2>");
    s.push_str(&json_table(c.metrics));
    s.push_str("<h2>Parameters</h2>");
    s.push_str(&json_table(c.params));
    let _ = write!(
        s,
        "<h2>Inputs</h2><table><tr><th>input</th><th>kind</th></tr>"
    );
    for i in &m.encoder.inputs {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{:?}</td></tr>",
            escape(&i.name),
            i.kind
        );
    }
    let _ = write!(
        s,
        "</table><p>{} encoded features: {}</p>",
        m.features.len(),
        escape(&m.features.join(", "))
    );
    s.push_str("<h2>Plots</h2><div class=\"plots\">");
    if !c.holdout.is_empty() {
        let pts: Vec<(f64, f64, usize)> = c.holdout.iter().map(|&(a, p)| (a, p, 0)).collect();
        s.push_str(&scatter(&pts, "actual", "predicted", true));
        let residuals: Vec<f64> = c.holdout.iter().map(|&(a, p)| a - p).collect();
        s.push_str(&histogram(&residuals, "residual (actual − predicted)"));
    }
    if !c.points.is_empty() {
        s.push_str(&scatter(c.points, c.axes.0, c.axes.1, false));
    }
    s.push_str("</div>");
    if !m.segments.is_empty() {
        s.push_str("<h2>Segments</h2>");
        for seg in &m.segments {
            s.push_str(&json_table(seg));
        }
    }
    let example_inputs: Vec<String> = m
        .encoder
        .inputs
        .iter()
        .map(|i| {
            let (dt, data) = match i.kind {
                crate::frame::ValueKind::Text
                | crate::frame::ValueKind::Date
                | crate::frame::ValueKind::Timestamp => ("BYTES", "[\"...\"]"),
                crate::frame::ValueKind::Boolean => ("BOOL", "[true]"),
                crate::frame::ValueKind::Number => ("FP64", "[0.0]"),
            };
            format!(
                "{{\"name\": \"{}\", \"shape\": [1], \"datatype\": \"{dt}\", \"data\": {data}}}",
                i.name
            )
        })
        .collect();
    let _ = write!(
        s,
        "<h2>Calling the endpoint</h2><p>Serve with <code>medallion-serve --lake LAKE --model {name} --version {v}</code>; it speaks the KServe V2 (Open Inference) protocol:</p><pre>curl -s localhost:8080/v2/models/{name}/infer -H 'content-type: application/json' -d '{{\"inputs\": [{inputs}]}}'</pre><p>Output <code>{out}</code> ({dt}). Dates as <code>YYYY-MM-DD</code> text.</p></body></html>",
        name = escape(&m.model),
        v = c.version,
        inputs = escape(&example_inputs.join(", ")),
        out = escape(&m.output.name),
        dt = escape(&m.output.datatype)
    );
    s
}
