//! HdrHistogram's "percentile distribution" text format (the `.hgrm` file).
//!
//! This is what Java's `AbstractHistogram.outputPercentileDistribution(out, ticks, ratio)` prints,
//! and what HdrHistogram's online plotter (`hdrhistogram.github.io/HdrHistogram/plotFiles.html`)
//! and its other tools read:
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        5.007 0.000000000000          1           1.00
//!        9.999 0.500000000000       5003           2.00
//!      ...
//!       41.983 1.000000000000      10000
//! #[Mean    =       10.018, StdDeviation   =        2.005]
//! #[Max     =       41.983, Total count    =        10000]
//! #[Buckets =           26, SubBuckets     =         2048]
//! ```
//!
//! Header `%12s %14s %10s %14s` and a blank line; one row per percentile tick
//! (`%12.{sigfig}f %2.12f %10d %14.2f`, the last row, at percentile 1.0, without the
//! `1/(1-Percentile)` column); then the three `#[...]` footer lines. Values are divided by the
//! scaling ratio (we record nanoseconds and print microseconds: ratio 1000.0).

use std::io::{self, Write};

use hdrhistogram::Histogram;

/// Percentile ticks per half distance to 100%, as HdrHistogram's tools use by default.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One row of the percentile distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileRow {
    /// Highest value equivalent to the recorded values at this row (unscaled, nanoseconds).
    pub value: u64,
    /// The percentile level iterated to, as a fraction in [0, 1].
    pub quantile: f64,
    /// Number of recorded values at or below `value`.
    pub total_count: u64,
}

/// The percentile distribution rows of `h`, as the percentile iterator with
/// `ticks_per_half_distance` ticks yields them. Empty for an empty histogram; otherwise the last row
/// is at quantile 1.0.
pub fn percentile_rows(h: &Histogram<u64>, ticks_per_half_distance: u32) -> Vec<PercentileRow> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut total_count = 0u64;
    h.iter_quantiles(ticks_per_half_distance.max(1))
        .map(|v| {
            // The iterator hands out the counts passed since its previous step; their running sum
            // is Java's `getTotalCountToThisValue()`.
            total_count = total_count.saturating_add(v.count_since_last_iteration());
            PercentileRow { value: v.value_iterated_to(), quantile: v.quantile_iterated_to(), total_count }
        })
        .collect()
}

/// `subBucketCount` of a histogram with `sigfig` significant digits: the power of two that gives
/// unit resolution up to 2 x 10^sigfig (the crate keeps it private; this is the same arithmetic).
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10u64.pow(u32::from(sigfig));
    largest_single_unit.next_power_of_two()
}

/// Writes `h` in HdrHistogram's percentile distribution text format, values divided by `scale`
/// (1000.0 turns recorded nanoseconds into printed microseconds), with
/// [`TICKS_PER_HALF_DISTANCE`] ticks per half distance.
pub fn write_percentile_distribution(h: &Histogram<u64>, scale: f64, w: &mut impl Write) -> io::Result<()> {
    let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
    let decimals = usize::from(h.sigfig());
    writeln!(w, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")?;
    for row in percentile_rows(h, TICKS_PER_HALF_DISTANCE) {
        let value = row.value as f64 / scale;
        if row.quantile < 1.0 {
            let inverse = 1.0 / (1.0 - row.quantile);
            writeln!(w, "{value:12.decimals$} {:2.12} {:10} {inverse:14.2}", row.quantile, row.total_count)?;
        } else {
            writeln!(w, "{value:12.decimals$} {:2.12} {:10}", row.quantile, row.total_count)?;
        }
    }
    let (mean, stdev, max) =
        if h.is_empty() { (0.0, 0.0, 0.0) } else { (h.mean(), h.stdev(), h.max() as f64) };
    writeln!(
        w,
        "#[Mean    = {:12.decimals$}, StdDeviation   = {:12.decimals$}]",
        mean / scale,
        stdev / scale
    )?;
    writeln!(w, "#[Max     = {:12.decimals$}, Total count    = {:12}]", max / scale, h.len())?;
    writeln!(w, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), sub_bucket_count(h.sigfig()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed `.hgrm` file.
    struct Parsed {
        rows: Vec<(f64, f64, u64, Option<f64>)>,
        mean: f64,
        stdev: f64,
        max: f64,
        total: u64,
        buckets: u64,
        sub_buckets: u64,
    }

    /// The number after `key =` in a footer line such as `#[Mean    =  1.000, StdDeviation = 2.000]`.
    fn footer_field(line: &str, key: &str) -> f64 {
        let start = line.find(key).unwrap_or_else(|| panic!("{key} missing in {line:?}")) + key.len();
        let rest = line[start..].trim_start().strip_prefix('=').expect("'=' after the key");
        let end = rest.find([',', ']']).expect("field end");
        rest[..end].trim().parse().expect("footer number")
    }

    fn parse(text: &str) -> Parsed {
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert_eq!(lines.next(), Some(""));
        let mut rows = Vec::new();
        let mut footer = Vec::new();
        for line in lines {
            if line.starts_with("#[") {
                footer.push(line);
                continue;
            }
            assert!(footer.is_empty(), "row after the footer: {line:?}");
            let f: Vec<&str> = line.split_whitespace().collect();
            assert!(f.len() == 3 || f.len() == 4, "bad row {line:?}");
            rows.push((
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f.get(3).map(|s| s.parse().unwrap()),
            ));
        }
        assert_eq!(footer.len(), 3, "footer: {footer:?}");
        assert!(footer[0].starts_with("#[Mean    = ") && footer[1].starts_with("#[Max     = "));
        assert!(footer[2].starts_with("#[Buckets = "));
        Parsed {
            rows,
            mean: footer_field(footer[0], "Mean"),
            stdev: footer_field(footer[0], "StdDeviation"),
            max: footer_field(footer[1], "Max"),
            total: footer_field(footer[1], "Total count") as u64,
            buckets: footer_field(footer[2], "Buckets") as u64,
            sub_buckets: footer_field(footer[2], "SubBuckets") as u64,
        }
    }

    /// Round trips of 5 µs to ~45 µs with a long tail, from a seeded generator.
    fn sample_histogram() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let tail = if x % 100 == 0 { 30_000 } else { 0 };
            h.record(5_000 + x % 10_000 + tail).unwrap();
        }
        h
    }

    #[test]
    fn test_format_rows_and_footer() {
        let h = sample_histogram();
        let mut out = Vec::new();
        write_percentile_distribution(&h, 1000.0, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let p = parse(&text);

        assert!(p.rows.len() > 20, "only {} rows", p.rows.len());
        for pair in p.rows.windows(2) {
            assert!(pair[1].1 > pair[0].1, "percentiles must increase: {pair:?}");
            assert!(pair[1].2 >= pair[0].2, "counts must not decrease: {pair:?}");
            assert!(pair[1].0 >= pair[0].0, "values must not decrease: {pair:?}");
        }
        let first = p.rows[0];
        assert_eq!(first.1, 0.0);
        assert_eq!(first.3, Some(1.0));
        // 1/(1-p) printed with two decimals, agreeing with the percentile column.
        for row in &p.rows[..p.rows.len() - 1] {
            let inverse = row.3.expect("1/(1-p) on every row but the last");
            assert!((inverse - 1.0 / (1.0 - row.1)).abs() < 0.006, "{row:?}");
        }
        let last = *p.rows.last().unwrap();
        assert_eq!(last.1, 1.0);
        assert_eq!(last.3, None, "the last row has no 1/(1-p)");
        assert_eq!(last.2, h.len());
        assert_eq!(last.0, h.max() as f64 / 1000.0);
        // The median row is the histogram's median.
        let median = p.rows.iter().find(|r| r.1 >= 0.5).unwrap();
        assert_eq!(median.1, 0.5);
        assert_eq!(median.0, h.value_at_quantile(0.5) as f64 / 1000.0);

        assert!((p.mean - h.mean() / 1000.0).abs() < 0.0005, "{} vs {}", p.mean, h.mean());
        assert!((p.stdev - h.stdev() / 1000.0).abs() < 0.0005);
        assert_eq!(p.max, h.max() as f64 / 1000.0);
        assert_eq!(p.total, h.len());
        assert_eq!(p.buckets, u64::from(h.buckets()));
        assert_eq!(p.sub_buckets, 2048, "3 significant digits: 2048 sub-buckets, as Java prints");
    }

    #[test]
    fn test_value_columns_are_fixed_width() {
        let h = sample_histogram();
        let mut out = Vec::new();
        write_percentile_distribution(&h, 1000.0, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines().skip(2).filter(|l| !l.starts_with("#[")) {
            // %12.3f then a space then %2.12f: the value ends at column 12 with 3 decimals.
            assert_eq!(line.as_bytes()[12], b' ', "{line:?}");
            assert_eq!(line.as_bytes()[8], b'.', "{line:?}");
            assert_eq!(&line[13..15], if line[13..].starts_with("1.") { "1." } else { "0." });
        }
    }

    #[test]
    fn test_single_value_and_empty() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record(1500).unwrap();
        let mut out = Vec::new();
        write_percentile_distribution(&h, 1000.0, &mut out).unwrap();
        let p = parse(&String::from_utf8(out).unwrap());
        assert_eq!(p.rows.last().unwrap().1, 1.0);
        assert_eq!(p.rows.last().unwrap().0, 1.5);
        assert_eq!(p.total, 1);

        let empty = Histogram::<u64>::new(3).unwrap();
        let mut out = Vec::new();
        write_percentile_distribution(&empty, 1000.0, &mut out).unwrap();
        let p = parse(&String::from_utf8(out).unwrap());
        assert!(p.rows.is_empty());
        assert_eq!((p.total, p.max, p.mean), (0, 0.0, 0.0));
    }
}
