//! Figures: medians over alternated rounds, percentiles, and the table printed at the end.

use std::fmt::Write;
use std::time::Duration;

pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The `p`th percentile (0..=100) of latencies, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line of the results: a scenario, a measure, upgate's figure and the baseline's (nginx,
/// or clamd alone) if it has one.
pub struct Row {
    pub scenario: String,
    pub measure: String,
    pub upgate: f64,
    pub baseline: Option<f64>,
    /// Whether more is better (throughput) or less (latency, CPU, memory): the ratio printed
    /// is always upgate/baseline, and this says how to read it.
    pub higher_is_better: bool,
}

impl Row {
    pub fn new(
        scenario: &str,
        measure: &str,
        upgate: f64,
        baseline: Option<f64>,
        higher_is_better: bool,
    ) -> Row {
        Row {
            scenario: scenario.into(),
            measure: measure.into(),
            upgate,
            baseline,
            higher_is_better,
        }
    }
}

fn figure(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A Markdown table, ready for docs/performance.md.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | measure | upgate | baseline | upgate/baseline |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let (baseline, ratio) = match r.baseline {
            Some(n) => (figure(n), format!("{:.2}×", r.upgate / n)),
            None => ("-".into(), "-".into()),
        };
        let arrow = if r.higher_is_better { "↑" } else { "↓" };
        let _ = writeln!(
            out,
            "| {} | {} {arrow} | {} | {baseline} | {ratio} |",
            r.scenario,
            r.measure,
            figure(r.upgate)
        );
    }
    out
}
