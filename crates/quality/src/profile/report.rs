//! `report.html`: one self-contained page (no external assets, no script) with a summary, a table
//! per column, inline SVG histograms and bar charts, and the drift scores. Readable as an Argo
//! artifact and in any browser.

use std::fmt::Write;

use super::{ColumnProfile, Profile};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn num(x: f64) -> String {
    if x == 0.0 || (x.abs() >= 0.001 && x.abs() < 1e9) {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.4e}")
    }
}

/// An SVG bar chart of counts with labels under the first and last bar.
fn bars(counts: &[u64], labels: (&str, &str), title: &str) -> String {
    let (w, h, pad) = (360.0, 120.0, 18.0);
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = (w - 2.0) / counts.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\">",
        esc(title),
        h + pad,
        h + pad
    );
    for (i, &c) in counts.iter().enumerate() {
        let bh = (c as f64 / max) * (h - 4.0);
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{c}</title></rect>",
            1.0 + i as f64 * bw,
            h - bh,
            (bw - 1.0).max(0.5),
            bh
        );
    }
    let _ = write!(
        svg,
        "<text x=\"1\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text></svg>",
        h + 13.0,
        esc(labels.0),
        w - 1.0,
        h + 13.0,
        esc(labels.1)
    );
    svg
}

fn column_section(c: &ColumnProfile) -> String {
    let mut rows: Vec<(String, String)> = vec![
        ("type".into(), esc(&c.data_type)),
        ("count".into(), c.count.to_string()),
        ("nulls".into(), c.nulls.to_string()),
        (
            "distinct".into(),
            format!(
                "{}{}",
                c.distinct,
                if c.distinct_exact { "" } else { " (estimate)" }
            ),
        ),
    ];
    let mut chart = String::new();
    if let Some(n) = &c.numeric {
        rows.extend([
            ("mean".into(), num(n.mean)),
            ("std".into(), n.std.map(num).unwrap_or_else(|| "–".into())),
            ("min".into(), num(n.min)),
            ("25%".into(), num(n.q25)),
            ("50%".into(), num(n.q50)),
            ("75%".into(), num(n.q75)),
            ("max".into(), num(n.max)),
        ]);
        let counts: Vec<u64> = n.histogram.iter().map(|b| b.count).collect();
        chart = bars(
            &counts,
            (&num(n.min), &num(n.max)),
            &format!("histogram of {}", c.name),
        );
    }
    if let Some(t) = &c.text {
        rows.extend([
            (
                "length min / mean / max".into(),
                format!(
                    "{} / {} / {}",
                    t.min_length,
                    num(t.mean_length),
                    t.max_length
                ),
            ),
            (
                "top values".into(),
                t.top
                    .iter()
                    .map(|(v, n)| format!("<code>{}</code>&nbsp;{n}", esc(v)))
                    .collect::<Vec<_>>()
                    .join("<br>"),
            ),
        ]);
        let counts: Vec<u64> = t.top.iter().map(|(_, n)| *n).collect();
        if !counts.is_empty() {
            let first = t.top.first().map(|(v, _)| v.as_str()).unwrap_or("");
            let last = t.top.last().map(|(v, _)| v.as_str()).unwrap_or("");
            chart = bars(&counts, (first, last), &format!("top values of {}", c.name));
        }
    }
    if let Some((t, f)) = c.booleans {
        rows.push(("true / false".into(), format!("{t} / {f}")));
        chart = bars(
            &[t, f],
            ("true", "false"),
            &format!("true and false in {}", c.name),
        );
    }
    if let Some((lo, hi)) = &c.time_range {
        rows.push(("earliest".into(), esc(lo)));
        rows.push(("latest".into(), esc(hi)));
    }
    for (rule, n) in &c.violations {
        rows.push((
            format!("breaks rule <code>{}</code>", esc(rule)),
            format!("<b class=\"bad\">{n}</b>"),
        ));
    }
    let mut out = format!(
        "<section><h2>{}</h2><div class=\"col\"><table>",
        esc(&c.name)
    );
    for (k, v) in rows {
        let _ = write!(out, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    let _ = write!(out, "</table>{chart}</div></section>");
    out
}

/// The whole page.
pub fn render(p: &Profile) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let title = format!("{}/{} v{}", p.layer, p.dataset, p.version);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Profile {t}</title><style>\
body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}h1{{font-size:20px}}h2{{font-size:16px;margin:18px 0 6px}}\
table{{border-collapse:collapse}}th,td{{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}}\
th{{background:#f6f6f6;font-weight:600}}.col{{display:flex;gap:24px;align-items:flex-start}}\
.chart rect{{fill:#4a78b5}}.chart text{{font-size:11px;fill:#555}}.bad{{color:#b00}}.ok{{color:#080}}\
</style></head><body><h1>Profile of {t}</h1>",
        t = esc(&title)
    );
    let _ = write!(
        html,
        "<table><tr><th>rows</th><td>{}</td></tr><tr><th>columns</th><td>{}</td></tr><tr><th>content SHA-256</th><td><code>{}</code></td></tr>",
        p.rows,
        p.columns.len(),
        esc(&p.content_sha256)
    );
    if let Some(c) = &p.contract {
        let broken: u64 = p.columns.iter().flat_map(|c| c.violations.values()).sum();
        let _ = write!(
            html,
            "<tr><th>contract</th><td><code>{}</code>: {}</td></tr>",
            esc(c),
            if broken == 0 {
                "<span class=\"ok\">every rule holds</span>".to_string()
            } else {
                format!("<span class=\"bad\">{broken} values break a rule</span>")
            }
        );
    }
    html.push_str("</table>");
    if let Some(d) = &p.drift {
        let _ = write!(
            html,
            "<section><h2>Drift against {} (PSI threshold {})</h2><p class=\"{}\">{}</p><table><tr><th>column</th><th>PSI</th><th></th></tr>",
            esc(&d.reference),
            num(d.threshold),
            if d.drift { "bad" } else { "ok" },
            if d.drift {
                "drift detected"
            } else {
                "no drift"
            }
        );
        for c in &d.columns {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.column),
                num(c.psi),
                if c.drifted {
                    "<b class=\"bad\">drifted</b>"
                } else {
                    ""
                }
            );
        }
        html.push_str("</table></section>");
    }
    for c in &p.columns {
        html.push_str(&column_section(c));
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_draws() {
        assert_eq!(
            esc("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
        let svg = bars(&[1, 2, 4], ("0", "9"), "t");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.starts_with("<svg"));
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(1e12), "1.0000e12");
    }
}
