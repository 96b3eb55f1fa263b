//! Seeded generators of realistic source files: GloboRealty house sales and GloboLatte store
//! sales. The same seed gives the same bytes, so tests and benchmarks need no stored data.

use std::io::{self, Write};

/// SplitMix64: small, fast, good enough for synthetic data, and stable across releases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi].
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    /// Approximately normal (sum of uniforms).
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let s: f64 = (0..6).map(|_| self.unit()).sum::<f64>() - 3.0;
        mean + sd * s * std::f64::consts::SQRT_2
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// Picks by weight.
    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = (self.next_u64() % total as u64) as u32;
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }
}

/// Which company's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// GloboRealty house sales (price regression)
    Houses,
    /// GloboLatte store sales (customer segmentation)
    Sales,
}

/// Writes `rows` data rows (plus a header) of `kind` to `out`.
pub fn write_csv(kind: Kind, rows: u64, seed: u64, out: &mut dyn Write) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    match kind {
        Kind::Houses => houses(rows, &mut rng, out),
        Kind::Sales => sales(rows, &mut rng, out),
    }
}

fn houses(rows: u64, rng: &mut Rng, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "house_id,sale_date,price,lot_size,living_area,bedrooms,bathrooms,stories,year_built,location_kind,garage_places,air_conditioning,basement,driveway"
    )?;
    let kinds = [
        ("urban", 40),
        ("suburban", 45),
        ("waterfront", 5),
        ("rural", 10),
    ];
    for i in 0..rows {
        let kind = *rng.weighted(&kinds);
        let bedrooms = rng.range(1, 6);
        let bathrooms = (rng.range(1, bedrooms.min(4)) as f64
            + if rng.unit() < 0.3 { 0.5 } else { 0.0 })
        .max(1.0);
        let living = (rng.normal(600.0 + 320.0 * bedrooms as f64, 180.0))
            .max(350.0)
            .round();
        let lot = (living * rng.normal(2.4, 0.6).max(1.1)).round();
        let stories = rng.range(1, 3.min(1 + bedrooms / 2));
        let year = rng.range(1920, 2025);
        let garage = rng.range(0, 3);
        let air = rng.unit() < 0.45;
        let basement = rng.unit() < 0.35;
        let driveway = rng.unit() < 0.85;
        let location = match kind {
            "urban" => 1.15,
            "suburban" => 1.0,
            "waterfront" => 1.6,
            _ => 0.8,
        };
        let age = (2026 - year) as f64;
        let price = ((40_000.0
            + 185.0 * living
            + 6.0 * lot
            + 9_000.0 * bedrooms as f64
            + 14_000.0 * bathrooms
            + 11_000.0 * garage as f64
            + if air { 12_000.0 } else { 0.0 }
            + if basement { 9_000.0 } else { 0.0 }
            - 450.0 * age)
            * location
            * rng.normal(1.0, 0.07))
        .max(25_000.0);
        let day = 1 + (i % 28);
        let month = 1 + (rng.next_u64() % 11);
        let yesno = |b: bool| if b { "yes" } else { "no" };
        writeln!(
            out,
            "H{:07},2026-{:02}-{:02},{:.0},{:.0},{:.0},{},{},{},{},{},{},{},{},{}",
            i + 1,
            month,
            day,
            price,
            lot,
            living,
            bedrooms,
            bathrooms,
            stories,
            year,
            kind,
            garage,
            yesno(air),
            yesno(basement),
            yesno(driveway)
        )?;
    }
    Ok(())
}

const PRODUCTS: [(&str, &str, f64); 12] = [
    ("latte", "beverage", 4.25),
    ("cappuccino", "beverage", 3.95),
    ("americano", "beverage", 2.95),
    ("cold brew", "beverage", 4.45),
    ("chai latte", "beverage", 4.15),
    ("hot chocolate", "beverage", 3.50),
    ("croissant", "pastry", 2.75),
    ("blueberry muffin", "pastry", 2.95),
    ("cinnamon roll", "pastry", 3.25),
    ("bagel", "food", 2.50),
    ("breakfast sandwich", "food", 5.95),
    ("tumbler", "merchandise", 18.00),
];

fn sales(rows: u64, rng: &mut Rng, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "sale_id,store_id,region,sold_at,customer_id,product,category,quantity,unit_price,currency,temperature_c,weather,holiday"
    )?;
    let regions = [("US", 60u32), ("CA", 25), ("MX", 15)];
    let weather = [("sunny", 45u32), ("cloudy", 30), ("rain", 18), ("snow", 7)];
    let start = 1_767_225_600i64; // 2026-01-01T00:00:00Z
    let mut t = start;
    for i in 0..rows {
        let region = *rng.weighted(&regions);
        let (currency, fx, store_base, temp_mean) = match region {
            "US" => ("USD", 1.0, 0, 16.0),
            "CA" => ("CAD", 1.36, 200, 8.0),
            _ => ("MXN", 17.1, 300, 22.0),
        };
        let store = store_base + rng.range(1, 120);
        let customer = rng.range(1, 250_000);
        let (product, category, base) = *rng.pick(&PRODUCTS);
        let quantity = if rng.unit() < 0.85 {
            1
        } else {
            rng.range(2, 4)
        };
        let weather = *rng.weighted(&weather);
        let temp = rng.normal(temp_mean, 7.0);
        t += rng.range(0, 12);
        let secs = t % 86_400;
        let days = t / 86_400;
        let (y, m, d) = civil_from_days(days);
        let holiday = matches!((m, d), (1, 1) | (7, 4) | (12, 25) | (11, 26) | (9, 16));
        writeln!(
            out,
            "S{:010},store-{:03},{},{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z,C{:07},{},{},{},{:.2},{},{:.1},{},{}",
            i + 1,
            store,
            region,
            y,
            m,
            d,
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            customer,
            product,
            category,
            quantity,
            base * fx,
            currency,
            temp,
            weather,
            holiday
        )?;
    }
    Ok(())
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes() {
        for kind in [Kind::Houses, Kind::Sales] {
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            write_csv(kind, 200, 7, &mut a).unwrap();
            write_csv(kind, 200, 7, &mut b).unwrap();
            write_csv(kind, 200, 8, &mut c).unwrap();
            assert_eq!(a, b);
            assert_ne!(a, c);
            let text = String::from_utf8(a).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 201);
            let fields = lines[0].split(',').count();
            assert!(lines.iter().all(|l| l.split(',').count() == fields));
        }
    }

    #[test]
    fn dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
    }
}
