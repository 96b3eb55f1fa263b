//! Bounded-memory accumulators for profiling: moments, distinct counts, top values, and exact
//! quantiles found in a few passes.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

/// Count, mean and variance in one pass (Welford), plus min and max.
#[derive(Debug, Clone, Default)]
pub struct Moments {
    pub count: u64,
    mean: f64,
    m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        if self.count == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// Sample standard deviation (n - 1), as pandas reports it.
    pub fn std(&self) -> Option<f64> {
        (self.count > 1).then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }
}

/// A hasher for keys that are already good 64-bit hashes: passes them through.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type PreHashedSet = HashSet<u64, std::hash::BuildHasherDefault<PreHashed>>;

/// Distinct values: exact up to a bound, then HyperLogLog (2^14 registers, ~0.8% error).
#[derive(Debug, Clone)]
pub struct Distinct {
    exact: Option<PreHashedSet>,
    registers: Vec<u8>,
    bound: usize,
}

const HLL_BITS: u32 = 14;

impl Distinct {
    pub fn new(bound: usize) -> Distinct {
        Distinct {
            exact: Some(PreHashedSet::default()),
            registers: Vec::new(),
            bound,
        }
    }

    /// Adds a value's 64-bit hash.
    pub fn push(&mut self, hash: u64) {
        if let Some(set) = &mut self.exact {
            set.insert(hash);
            if set.len() <= self.bound {
                return;
            }
            let all: Vec<u64> = set.drain().collect();
            self.exact = None;
            self.registers = vec![0; 1 << HLL_BITS];
            for h in all {
                self.hll(h);
            }
            return;
        }
        self.hll(hash);
    }

    fn hll(&mut self, hash: u64) {
        let index = (hash >> (64 - HLL_BITS)) as usize;
        let rest = (hash << HLL_BITS) | (1 << (HLL_BITS - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    /// (estimate, exact?)
    pub fn estimate(&self) -> (u64, bool) {
        if let Some(set) = &self.exact {
            return (set.len() as u64, true);
        }
        let m = self.registers.len() as f64;
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        (estimate.round() as u64, false)
    }
}

/// Value counts: exact while fewer than `bound` distinct values are seen; after that, values not
/// already counted are ignored (the top list is then approximate). Keyed by the value's 64-bit
/// hash (the one distinct counting already computed), so a repeated value costs one probe.
#[derive(Debug, Clone)]
pub struct TopValues {
    counts: HashMap<u64, (u64, Box<str>), std::hash::BuildHasherDefault<PreHashed>>,
    bound: usize,
    pub exact: bool,
}

impl TopValues {
    pub fn new(bound: usize) -> TopValues {
        TopValues {
            counts: HashMap::default(),
            bound,
            exact: true,
        }
    }

    /// Counts `v`, whose hash is `hash`.
    pub fn push(&mut self, hash: u64, v: &str) {
        if let Some(c) = self.counts.get_mut(&hash) {
            c.0 += 1;
        } else if self.counts.len() < self.bound {
            self.counts.insert(hash, (1, v.into()));
        } else {
            self.exact = false;
        }
    }

    /// The `k` most frequent values, most frequent first (ties by value).
    pub fn top(&self, k: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(&str, u64)> = self
            .counts
            .values()
            .map(|(c, v)| (v.as_ref(), *c))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.truncate(k);
        all.into_iter().map(|(v, c)| (v.to_string(), c)).collect()
    }

    /// The count of a value, given its hash.
    pub fn count_of(&self, hash: u64) -> u64 {
        self.counts.get(&hash).map_or(0, |c| c.0)
    }
}

/// A stable 64-bit hash for distinct counting.
pub fn hash64<T: Hash + ?Sized>(state: &impl BuildHasher, v: &T) -> u64 {
    state.hash_one(v)
}

/// The value at `q` of sorted data (pandas' default: linear interpolation between the two
/// nearest ranks).
pub fn interpolate(sorted_at: impl Fn(u64) -> f64, n: u64, q: f64) -> f64 {
    let pos = (n - 1) as f64 * q;
    let lo = pos.floor() as u64;
    let frac = pos - lo as f64;
    let a = sorted_at(lo);
    if frac == 0.0 || lo + 1 >= n {
        return a;
    }
    a + (sorted_at(lo + 1) - a) * frac
}

/// Ranks (0-based, ascending) a quantile needs.
pub fn ranks_for(n: u64, q: f64) -> Vec<u64> {
    let pos = (n - 1) as f64 * q;
    let lo = pos.floor() as u64;
    if pos > lo as f64 && lo + 1 < n {
        vec![lo, lo + 1]
    } else {
        vec![lo]
    }
}

/// A fine equal-width histogram over `[lo, hi]` with per-bin min and max, used to find which
/// values hold given ranks without keeping them all.
#[derive(Debug, Clone)]
pub struct FineHistogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
    pub mins: Vec<f64>,
    pub maxs: Vec<f64>,
}

impl FineHistogram {
    pub fn new(lo: f64, hi: f64, bins: usize) -> FineHistogram {
        FineHistogram {
            lo,
            hi,
            counts: vec![0; bins],
            mins: vec![f64::INFINITY; bins],
            maxs: vec![f64::NEG_INFINITY; bins],
        }
    }

    pub fn bin(&self, x: f64) -> Option<usize> {
        if !(self.lo..=self.hi).contains(&x) {
            return None;
        }
        let n = self.counts.len();
        if self.hi <= self.lo {
            return Some(0);
        }
        Some(
            (((x - self.lo) / (self.hi - self.lo)) * n as f64)
                .floor()
                .min((n - 1) as f64) as usize,
        )
    }

    pub fn push(&mut self, x: f64) {
        if let Some(b) = self.bin(x) {
            self.counts[b] += 1;
            self.mins[b] = self.mins[b].min(x);
            self.maxs[b] = self.maxs[b].max(x);
        }
    }

    /// The bin holding rank `r` (0-based, counting only values inside the histogram) and the
    /// rank of the bin's first value.
    pub fn locate(&self, r: u64) -> Option<(usize, u64)> {
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            if r < seen + c {
                return Some((b, seen));
            }
            seen += c;
        }
        None
    }

    /// Equal-width bins for display: (lower edge, upper edge, count).
    pub fn coarse(&self, bins: usize) -> Vec<(f64, f64, u64)> {
        let per = self.counts.len().div_ceil(bins.max(1));
        let width = (self.hi - self.lo) / self.counts.len() as f64;
        self.counts
            .chunks(per)
            .enumerate()
            .map(|(i, c)| {
                let lo = self.lo + (i * per) as f64 * width;
                let hi = self.lo + ((i * per + c.len()) as f64) * width;
                (lo, hi, c.iter().sum())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_the_two_pass_formula() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let mut m = Moments::default();
        xs.iter().for_each(|&x| m.push(x));
        assert_eq!(m.mean(), Some(5.0));
        let var = xs.iter().map(|x| (x - 5.0f64).powi(2)).sum::<f64>() / 7.0;
        assert!((m.std().unwrap() - var.sqrt()).abs() < 1e-12);
        assert_eq!((m.min, m.max), (2.0, 9.0));
    }

    #[test]
    fn quantiles_interpolate_like_pandas() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(interpolate(|i| v[i as usize], 4, 0.25), 1.75);
        assert_eq!(interpolate(|i| v[i as usize], 4, 0.5), 2.5);
        assert_eq!(ranks_for(4, 0.5), vec![1, 2]);
        assert_eq!(ranks_for(5, 0.5), vec![2]);
    }

    #[test]
    fn distinct_is_exact_then_close() {
        let state = std::hash::RandomState::new();
        let mut d = Distinct::new(1000);
        for i in 0..500u64 {
            d.push(hash64(&state, &i));
            d.push(hash64(&state, &i));
        }
        assert_eq!(d.estimate(), (500, true));
        for i in 0..100_000u64 {
            d.push(hash64(&state, &i));
        }
        let (est, exact) = d.estimate();
        assert!(!exact);
        assert!((est as f64 - 100_000.0).abs() / 100_000.0 < 0.03, "{est}");
    }

    #[test]
    fn fine_histograms_locate_ranks() {
        let mut h = FineHistogram::new(0.0, 10.0, 10);
        for x in [0.0, 1.5, 1.6, 9.9, 10.0] {
            h.push(x);
        }
        assert_eq!(h.locate(0), Some((0, 0)));
        assert_eq!(h.locate(2), Some((1, 1)));
        assert_eq!(h.locate(4), Some((9, 3)));
        assert_eq!(
            h.coarse(2).iter().map(|b| b.2).collect::<Vec<_>>(),
            vec![3, 2]
        );
    }
}
