//! The embedded market simulator: one geometric Brownian motion per symbol.
//!
//! Each [`Series`] owns its own random generator, seeded from `(seed,
//! symbol)`, so a symbol's prices do not depend on which other symbols were
//! requested or in what order. One [`Series::step`] is one simulated minute of
//! trading; a session lasts [`SESSION_MINUTES`] steps, after which the close
//! becomes the previous close and open/high/low/volume start over.
//!
//! Pure and synchronous: the ticker's owner task calls it on its clock.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rt_protocol::ticker::{Quote, Symbol};
use serde_json::Map;

/// Simulated minutes in one trading session (09:30–16:00).
pub const SESSION_MINUTES: u32 = 390;

/// Trading sessions per simulated year (for annualised drift and volatility).
const SESSIONS_PER_YEAR: f64 = 252.0;

/// One simulated minute, in years.
const MINUTE_YEARS: f64 = 1.0 / (SESSIONS_PER_YEAR * SESSION_MINUTES as f64);

/// A listed company the simulator knows by name.
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    pub symbol: &'static str,
    pub company_name: &'static str,
    /// Starting price, USD.
    pub price: f64,
    /// Annualised volatility (0.3 = 30 %).
    pub volatility: f64,
    /// Typical shares traded per session.
    pub daily_volume: u64,
}

const fn listing(
    symbol: &'static str,
    company_name: &'static str,
    price: f64,
    volatility: f64,
    daily_volume: u64,
) -> Listing {
    Listing {
        symbol,
        company_name,
        price,
        volatility,
        daily_volume,
    }
}

/// The built-in symbols: well-known companies with plausible prices.
pub const LISTINGS: &[Listing] = &[
    listing("AAPL", "Apple Inc.", 190.0, 0.28, 55_000_000),
    listing("MSFT", "Microsoft Corporation", 420.0, 0.25, 22_000_000),
    listing("GOOGL", "Alphabet Inc.", 170.0, 0.30, 25_000_000),
    listing("AMZN", "Amazon.com, Inc.", 185.0, 0.33, 40_000_000),
    listing("META", "Meta Platforms, Inc.", 500.0, 0.38, 15_000_000),
    listing("NVDA", "NVIDIA Corporation", 120.0, 0.50, 250_000_000),
    listing("TSLA", "Tesla, Inc.", 250.0, 0.55, 90_000_000),
    listing(
        "IBM",
        "International Business Machines Corporation",
        190.0,
        0.22,
        4_000_000,
    ),
    listing("ORCL", "Oracle Corporation", 140.0, 0.30, 9_000_000),
    listing("INTC", "Intel Corporation", 30.0, 0.40, 45_000_000),
    listing("CSCO", "Cisco Systems, Inc.", 50.0, 0.22, 18_000_000),
    listing("ADBE", "Adobe Inc.", 500.0, 0.33, 3_000_000),
    listing("CRM", "Salesforce, Inc.", 270.0, 0.35, 6_000_000),
    listing("NFLX", "Netflix, Inc.", 650.0, 0.38, 4_000_000),
    listing(
        "AMD",
        "Advanced Micro Devices, Inc.",
        150.0,
        0.50,
        50_000_000,
    ),
    listing("QCOM", "QUALCOMM Incorporated", 170.0, 0.35, 8_000_000),
    listing("JPM", "JPMorgan Chase & Co.", 210.0, 0.22, 9_000_000),
    listing("BAC", "Bank of America Corporation", 40.0, 0.27, 35_000_000),
    listing(
        "GS",
        "The Goldman Sachs Group, Inc.",
        480.0,
        0.26,
        2_000_000,
    ),
    listing("V", "Visa Inc.", 280.0, 0.20, 6_000_000),
    listing("MA", "Mastercard Incorporated", 460.0, 0.21, 3_000_000),
    listing("BRK.B", "Berkshire Hathaway Inc.", 450.0, 0.17, 3_500_000),
    listing("WMT", "Walmart Inc.", 70.0, 0.18, 15_000_000),
    listing("KO", "The Coca-Cola Company", 65.0, 0.15, 12_000_000),
    listing("PEP", "PepsiCo, Inc.", 170.0, 0.16, 5_000_000),
    listing("MCD", "McDonald's Corporation", 280.0, 0.18, 3_000_000),
    listing("DIS", "The Walt Disney Company", 95.0, 0.28, 9_000_000),
    listing("NKE", "NIKE, Inc.", 80.0, 0.32, 10_000_000),
    listing("JNJ", "Johnson & Johnson", 155.0, 0.15, 7_000_000),
    listing("PFE", "Pfizer Inc.", 28.0, 0.25, 30_000_000),
    listing("XOM", "Exxon Mobil Corporation", 115.0, 0.25, 15_000_000),
    listing("CVX", "Chevron Corporation", 150.0, 0.25, 8_000_000),
    listing("BA", "The Boeing Company", 170.0, 0.38, 7_000_000),
    listing("T", "AT&T Inc.", 20.0, 0.22, 35_000_000),
    listing("VZ", "Verizon Communications Inc.", 40.0, 0.18, 18_000_000),
];

/// The built-in listing for `symbol`, if any.
pub fn listing_for(symbol: &Symbol) -> Option<&'static Listing> {
    LISTINGS.iter().find(|l| l.symbol == symbol.as_str())
}

/// The generator seed of `symbol` under the market seed `seed`: a stable
/// hash (FNV-1a, then SplitMix64 finalisation), identical across runs and
/// platforms.
pub fn symbol_seed(seed: u64, symbol: &Symbol) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in symbol.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(h ^ splitmix64(seed))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One symbol's simulated trading.
#[derive(Debug, Clone)]
pub struct Series {
    symbol: Symbol,
    company_name: String,
    rng: StdRng,
    volatility: f64,
    /// Annualised drift.
    drift: f64,
    /// Mean shares per simulated minute.
    minute_volume: f64,
    /// Unrounded price; quotes round it.
    price: f64,
    previous_close: f64,
    open: f64,
    high: f64,
    low: f64,
    volume: u64,
    minute: u32,
    latest_update: u64,
}

impl Series {
    /// Starts `symbol`'s series at the opening of a session. Built-in symbols
    /// start from their listing; any other symbol gets a synthetic company
    /// with a price and volatility drawn from its own generator.
    pub fn new(seed: u64, symbol: Symbol, now_ms: u64) -> Series {
        let mut rng = StdRng::seed_from_u64(symbol_seed(seed, &symbol));
        let (company_name, base, volatility, daily_volume) = match listing_for(&symbol) {
            Some(l) => (
                l.company_name.to_string(),
                l.price,
                l.volatility,
                l.daily_volume as f64,
            ),
            None => (
                format!("{symbol} (simulated)"),
                // Log-uniform between $5 and $500.
                5.0 * 100f64.powf(rng.random::<f64>()),
                0.15 + 0.45 * rng.random::<f64>(),
                10f64.powf(5.0 + 2.5 * rng.random::<f64>()),
            ),
        };
        let drift = 0.08 * (rng.random::<f64>() - 0.3);
        let mut series = Series {
            symbol,
            company_name,
            rng,
            volatility,
            drift,
            minute_volume: daily_volume / f64::from(SESSION_MINUTES),
            price: base,
            previous_close: base,
            open: base,
            high: base,
            low: base,
            volume: 0,
            minute: 0,
            latest_update: now_ms,
        };
        series.open_session();
        series
    }

    /// A new session: yesterday's close is today's previous close, the
    /// price gaps overnight, and open/high/low/volume start over.
    fn open_session(&mut self) {
        self.previous_close = self.price;
        let overnight = self.volatility * (1.0 / SESSIONS_PER_YEAR).sqrt() * 0.5;
        self.price *= (overnight * normal(&mut self.rng)).exp();
        self.open = self.price;
        self.high = self.price;
        self.low = self.price;
        self.volume = 0;
        self.minute = 0;
    }

    /// Advances one simulated minute; `now_ms` becomes `latestUpdate`.
    pub fn step(&mut self, now_ms: u64) {
        self.latest_update = now_ms;
        if self.minute >= SESSION_MINUTES {
            self.open_session();
            return;
        }
        self.minute += 1;
        let z = normal(&mut self.rng);
        let sigma = self.volatility;
        self.price *= ((self.drift - 0.5 * sigma * sigma) * MINUTE_YEARS
            + sigma * MINUTE_YEARS.sqrt() * z)
            .exp();
        self.high = self.high.max(self.price);
        self.low = self.low.min(self.price);
        // Busier when the price moves more, never negative.
        let activity = 0.5 + z.abs() + 0.5 * self.rng.random::<f64>();
        self.volume += (self.minute_volume * activity).round() as u64;
    }

    /// Carries on from `quote` (a new cluster driver taking over): the
    /// company and the volatility as [`Series::new`] draws them, today's
    /// prices and volume from the quote. `None` for an unusable quote.
    pub fn resume(seed: u64, quote: &Quote, now_ms: u64) -> Option<Series> {
        let symbol = Symbol::parse(&quote.symbol).ok()?;
        let prices = [
            quote.latest_price,
            quote.previous_close,
            quote.open,
            quote.high,
            quote.low,
        ];
        if !prices.iter().all(|p| p.is_finite() && *p > 0.0) {
            return None;
        }
        let mut series = Series::new(seed, symbol, now_ms);
        series.company_name = quote.company_name.clone();
        series.price = quote.latest_price;
        series.previous_close = quote.previous_close;
        series.open = quote.open;
        series.high = quote.high;
        series.low = quote.low;
        series.volume = quote.volume;
        series.latest_update = quote.latest_update;
        Some(series)
    }

    pub fn symbol(&self) -> &Symbol {
        &self.symbol
    }

    /// The current quote, prices rounded as an exchange would show them.
    pub fn quote(&self) -> Quote {
        let latest_price = round_price(self.price);
        let previous_close = round_price(self.previous_close);
        let change = round_to(latest_price - previous_close, 4);
        let change_percent = if previous_close > 0.0 {
            round_to(change / previous_close, 5)
        } else {
            0.0
        };
        Quote {
            symbol: self.symbol.as_str().to_string(),
            company_name: self.company_name.clone(),
            latest_price,
            change,
            change_percent,
            open: round_price(self.open),
            high: round_price(self.high),
            low: round_price(self.low),
            previous_close,
            volume: self.volume,
            latest_update: self.latest_update,
            extra: Map::new(),
        }
    }
}

/// Cents, or hundredths of a cent below one dollar.
fn round_price(p: f64) -> f64 {
    if p >= 1.0 {
        round_to(p, 2)
    } else {
        round_to(p, 4)
    }
}

fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).unwrap()
    }

    fn run(seed: u64, s: &str, steps: usize) -> Vec<Quote> {
        let mut series = Series::new(seed, sym(s), 0);
        let mut out = vec![series.quote()];
        for i in 0..steps {
            series.step(i as u64);
            out.push(series.quote());
        }
        out
    }

    #[test]
    fn listings_are_valid_unique_and_plausible() {
        let mut seen = std::collections::HashSet::new();
        assert!(LISTINGS.len() >= 30);
        for l in LISTINGS {
            assert_eq!(Symbol::parse(l.symbol).unwrap().as_str(), l.symbol);
            assert!(seen.insert(l.symbol), "duplicate {}", l.symbol);
            assert!(l.price > 1.0 && l.price < 5000.0);
            assert!(l.volatility > 0.05 && l.volatility < 1.0);
            assert!(l.daily_volume > 0);
        }
    }

    #[test]
    fn same_seed_same_series_regardless_of_other_symbols() {
        let a = run(7, "IBM", 200);
        // Interleave another symbol's steps: IBM's series must not notice.
        let mut ibm = Series::new(7, sym("IBM"), 0);
        let mut other = Series::new(7, sym("ZZZ"), 0);
        let mut b = vec![ibm.quote()];
        for i in 0..200 {
            other.step(i);
            other.step(i);
            ibm.step(i);
            b.push(ibm.quote());
        }
        assert_eq!(a, b);
        assert_ne!(a, run(8, "IBM", 200), "another seed gives another series");
    }

    #[test]
    fn quotes_are_consistent_within_a_session() {
        let quotes = run(1, "TSLA", (SESSION_MINUTES - 1) as usize);
        let mut max = f64::MIN;
        let mut min = f64::MAX;
        let mut last_volume = 0;
        for q in &quotes {
            max = max.max(q.latest_price);
            min = min.min(q.latest_price);
            assert!(q.high >= max, "high {} < max seen {max}", q.high);
            assert!(q.low <= min, "low {} > min seen {min}", q.low);
            assert!(q.high >= q.open && q.low <= q.open);
            assert!(q.volume >= last_volume);
            last_volume = q.volume;
            assert_eq!(q.open, quotes[0].open);
            assert_eq!(q.previous_close, quotes[0].previous_close);
            assert!((q.change - (q.latest_price - q.previous_close)).abs() < 1e-6);
            assert!((q.change_percent - q.change / q.previous_close).abs() < 1e-4);
        }
        assert!(last_volume > 0);
    }

    #[test]
    fn prices_move_visibly_but_plausibly() {
        let quotes = run(3, "IBM", 60);
        let moved = quotes
            .windows(2)
            .filter(|w| w[0].latest_price != w[1].latest_price)
            .count();
        assert!(moved >= 40, "only {moved} of 60 ticks changed the price");
        for q in &quotes {
            assert!(
                (q.latest_price / 190.0 - 1.0).abs() < 0.2,
                "IBM at {} after an hour",
                q.latest_price
            );
        }
    }

    #[test]
    fn sessions_roll_over() {
        let mut s = Series::new(5, sym("KO"), 0);
        for i in 0..SESSION_MINUTES {
            s.step(u64::from(i));
        }
        let close = s.quote();
        s.step(1000);
        let next = s.quote();
        assert_eq!(next.previous_close, close.latest_price);
        assert_eq!(next.volume, 0);
        assert_eq!(next.high, next.open);
        assert_eq!(next.low, next.open);
        assert_eq!(next.latest_update, 1000);
    }

    #[test]
    fn unknown_symbols_get_their_own_synthetic_company() {
        let a = Series::new(9, sym("QQQX"), 0).quote();
        let b = Series::new(9, sym("QQQY"), 0).quote();
        assert_eq!(a.company_name, "QQQX (simulated)");
        assert!(a.latest_price >= 5.0 * 0.9 && a.latest_price <= 500.0 * 1.1);
        assert_ne!(a.latest_price, b.latest_price);
        let ibm = Series::new(9, sym("ibm"), 0).quote();
        assert_eq!(ibm.symbol, "IBM");
        assert_eq!(
            ibm.company_name,
            "International Business Machines Corporation"
        );
    }

    #[test]
    fn symbol_seed_is_stable() {
        // Pinned so a given --seed keeps meaning the same market across builds.
        assert_eq!(symbol_seed(0, &sym("IBM")), symbol_seed(0, &sym("ibm")));
        assert_ne!(symbol_seed(0, &sym("IBM")), symbol_seed(1, &sym("IBM")));
        assert_ne!(symbol_seed(0, &sym("IBM")), symbol_seed(0, &sym("IBN")));
        assert_eq!(symbol_seed(42, &sym("IBM")), 6_505_715_200_757_509_018);
    }
}
