//! Go duration strings (`time.ParseDuration`): a sequence of decimal numbers with units
//! `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, such as `30s`, `1h30m`, `1.5h`. Argo uses them for
//! `requeue`, `suspend.duration` and retry backoff.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a duration: {reason} (write it like 30s, 5m, 1h30m)")]
pub struct DurationError {
    pub text: String,
    pub reason: &'static str,
}

/// Parses a Go duration. Negative durations are refused (nothing here waits backwards).
pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        text: text.to_string(),
        reason,
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if s.starts_with('-') {
        return Err(err("it is negative"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(err("a unit without a number"));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| err("a number is malformed"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(err("a number has no unit")),
            _ => return Err(err("unknown unit")),
        };
        rest = &rest[unit_len..];
        total_nanos += number * nanos_per_unit;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(err("it is too long"));
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// Formats a duration the way Go prints it for whole seconds and above (`1h30m0s`, `45s`),
/// milliseconds below a second (`250ms`).
pub fn format_go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        let ms = d.as_millis();
        return if ms == 0 {
            "0s".into()
        } else {
            format!("{ms}ms")
        };
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_go_parses() {
        let cases = [
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1.5h", 5_400_000),
            ("250ms", 250),
            ("0", 0),
            ("2h45m10s", 9_910_000),
            ("+10s", 10_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_go_duration(text).unwrap().as_millis(), ms, "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in ["", "10", "s", "1d", "-5s", "1.2.3s", "abc"] {
            let e = parse_go_duration(bad).unwrap_err();
            assert!(e.to_string().contains("is not a duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["30s", "1m30s", "24h0m0s", "250ms"] {
            let d = parse_go_duration(text).unwrap();
            assert_eq!(format_go_duration(d), text);
            assert_eq!(parse_go_duration(&format_go_duration(d)).unwrap(), d);
        }
    }
}
