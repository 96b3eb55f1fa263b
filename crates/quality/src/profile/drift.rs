//! Drift: the population stability index (PSI) of each column against a reference profile.
//!
//! PSI = Σ (a − e) · ln(a / e) over bins, with `e` the reference share and `a` the current share
//! of each bin (shares floored at 1e-4 so empty bins count without dividing by zero). Numbers use
//! the reference's deciles as bins; text uses the reference's top values plus one "other" bin.
//! Rule of thumb: below 0.1 stable, 0.1–0.2 moderate, above 0.2 a real shift (the default
//! threshold). Identifier-like text (mostly distinct values), timestamps and lineage columns are
//! skipped: their shift says nothing about the data's meaning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::TopValues;
use super::{Profile, drift_candidate};

const FLOOR: f64 = 1e-4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub column: String,
    pub psi: f64,
    pub drifted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// `layer/dataset vN` of the reference.
    pub reference: String,
    pub threshold: f64,
    /// Whether any column drifted.
    pub drift: bool,
    pub columns: Vec<ColumnDrift>,
}

impl DriftReport {
    pub fn drifted_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.drifted)
            .map(|c| c.column.as_str())
            .collect()
    }
}

/// PSI of two count vectors over the same bins.
pub fn psi(expected: &[u64], actual: &[u64]) -> f64 {
    let (te, ta) = (
        expected.iter().sum::<u64>() as f64,
        actual.iter().sum::<u64>() as f64,
    );
    if te == 0.0 || ta == 0.0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = ((e as f64 / te).max(FLOOR), (a as f64 / ta).max(FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Compares `current` with `reference`. `numeric_counts`: the current values counted in the
/// reference's decile bins; `text`: the current value counts and non-null totals; `hash`: how
/// those counts key their values.
pub fn compare(
    current: &Profile,
    reference: &Profile,
    numeric_counts: &BTreeMap<String, Vec<u64>>,
    text: &BTreeMap<String, (&TopValues, u64)>,
    hash: &dyn Fn(&str) -> u64,
    threshold: f64,
) -> DriftReport {
    let mut columns = Vec::new();
    for col in &current.columns {
        if !drift_candidate(&col.name) {
            continue;
        }
        let Some(r) = reference.column(&col.name) else {
            continue;
        };
        let score = match (
            &r.numeric,
            numeric_counts.get(&col.name),
            &r.text,
            text.get(&col.name),
        ) {
            (Some(rn), Some(actual), _, _) if !rn.decile_counts.is_empty() => {
                Some(psi(&rn.decile_counts, actual))
            }
            (_, _, Some(rt), Some((top, total))) if r.distinct * 2 <= r.count.max(1) => {
                let ref_total = r.count;
                let mut expected: Vec<u64> = rt.top.iter().map(|(_, c)| *c).collect();
                expected.push(ref_total.saturating_sub(expected.iter().sum()));
                let mut actual: Vec<u64> =
                    rt.top.iter().map(|(v, _)| top.count_of(hash(v))).collect();
                actual.push(total.saturating_sub(actual.iter().sum()));
                Some(psi(&expected, &actual))
            }
            _ => None,
        };
        if let Some(psi) = score {
            columns.push(ColumnDrift {
                column: col.name.clone(),
                psi,
                drifted: psi > threshold,
            });
        }
    }
    DriftReport {
        reference: format!(
            "{}/{} v{}",
            reference.layer, reference.dataset, reference.version
        ),
        threshold,
        drift: columns.iter().any(|c| c.drifted),
        columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_equal_shares_and_grows_with_shift() {
        assert!(psi(&[10, 20, 30], &[20, 40, 60]).abs() < 1e-12);
        let small = psi(&[25, 25, 25, 25], &[27, 24, 25, 24]);
        let big = psi(&[25, 25, 25, 25], &[5, 5, 20, 70]);
        assert!(small < 0.01, "{small}");
        assert!(big > 0.5, "{big}");
    }
}
