//! The report of a run: a terminal table, the targets we hold the stack to, `results.json`,
//! `.hgrm` files and plots.
//!
//! Every ratio compares like with like: a latency with the kernel-kernel (or kernel-reflector)
//! figure of the same protocol, size and mode; a throughput with kernel-kernel of the same kind and
//! mode. A missing baseline prints `-` (JSON `null`) and a target without data is `n/a`.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::hdr_text;
use crate::plot;
use crate::results::{Latency, Mode, Pairing, Proto, Report, Stage, Throughput, ThroughputKind};

mod targets;
pub use targets::*;

/// The latency figures of one histogram, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    /// Round trips recorded.
    pub samples: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Lowest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// 99.99th percentile.
    pub p99_99: u64,
    /// Highest.
    pub max: u64,
}

impl LatencySummary {
    /// The JSON keys of [`LatencySummary::figures_ns`], in order.
    pub const FIGURE_KEYS: [&'static str; 7] =
        ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p99_9_ns", "p99_99_ns", "max_ns"];

    /// Min, the percentiles and max, each with its JSON key.
    pub fn figures_ns(&self) -> [(&'static str, u64); 7] {
        let values = [self.min, self.p50, self.p90, self.p99, self.p99_9, self.p99_99, self.max];
        let mut i = 0;
        Self::FIGURE_KEYS.map(|key| {
            i += 1;
            (key, values[i - 1])
        })
    }

    /// The figures of `h`, or `None` when it recorded nothing.
    pub fn of(h: &Histogram<u64>) -> Option<LatencySummary> {
        if h.is_empty() {
            return None;
        }
        Some(LatencySummary {
            samples: h.len(),
            mean: h.mean(),
            stdev: h.stdev(),
            min: h.min(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        })
    }
}

/// A plain text table: the first `left` columns left-aligned, the others right-aligned.
struct TextTable {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    left: usize,
}

impl TextTable {
    fn new(headers: &[&str], left: usize) -> TextTable {
        TextTable { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new(), left }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("  ");
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = width.saturating_sub(cell.chars().count());
                if i > 0 {
                    s.push_str("  ");
                }
                if i < self.left {
                    s.push_str(cell);
                    s.extend(std::iter::repeat_n(' ', pad));
                } else {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(cell);
                }
            }
            s.truncate(s.trim_end().len());
            s
        };
        writeln!(w, "{}", line(&self.headers))?;
        let rule: Vec<String> = widths.iter().map(|&n| "-".repeat(n)).collect();
        writeln!(w, "{}", line(&rule))?;
        for row in &self.rows {
            writeln!(w, "{}", line(row))?;
        }
        Ok(())
    }
}

/// Nanoseconds as microseconds: 2 decimals below 100 µs, 1 above.
fn fmt_us(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 100.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.1}")
    }
}

/// A ratio as `0.62x`, or `-`.
fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

/// A throughput figure with its unit, with k/M prefixes for packet and connection rates.
pub fn fmt_rate(value: f64, unit: &str) -> String {
    if unit == "Gbit/s" || !value.is_finite() {
        format!("{value:.2} {unit}")
    } else if value.abs() >= 1e6 {
        format!("{:.3} M{unit}", value / 1e6)
    } else if value.abs() >= 1e3 {
        format!("{:.1} k{unit}", value / 1e3)
    } else {
        format!("{value:.0} {unit}")
    }
}

/// The (proto, size, mode) blocks of the latency section, in print order.
fn latency_blocks(report: &Report) -> BTreeSet<(Proto, usize, Mode)> {
    report.latency.iter().map(|l| (l.proto, l.size, l.mode)).collect()
}

/// Prints the whole report as text tables: the machine, then latency, throughput, sockperf,
/// stages and the targets.
pub fn print_table(report: &Report, w: &mut impl Write) -> io::Result<()> {
    let m = &report.machine;
    writeln!(w, "xdpstack-bench report")?;
    writeln!(w, "  machine: {} ({} CPUs), Linux {}", or_dash(&m.cpu_model), m.cpus, or_dash(&m.kernel))?;
    writeln!(w, "  date:    {}", or_dash(&m.date))?;
    writeln!(w, "  xdp:     {}", or_dash(&m.xdp))?;
    if report.quick {
        writeln!(
            w,
            "  run:     --quick (a few seconds a scenario: checks that nothing rots; figures mean little)"
        )?;
    } else {
        writeln!(w, "  run:     full")?;
    }
    let distinct: BTreeSet<&str> = report.latency.iter().map(|l| l.cores.as_str()).collect();
    if let [only] = Vec::from_iter(distinct.iter()).as_slice() {
        writeln!(w, "  cores:   {} (every latency run)", or_dash(only))?;
    } else if !distinct.is_empty() {
        writeln!(w, "  cores:")?;
        let cores: BTreeSet<(Pairing, Mode, &str)> =
            report.latency.iter().map(|l| (l.pairing, l.mode, l.cores.as_str())).collect();
        for (pairing, mode, cores) in cores {
            writeln!(w, "    {:<16} {:<9} {}", pairing.label(), mode.label(), or_dash(cores))?;
        }
    }

    if !report.latency.is_empty() {
        writeln!(w, "\nlatency: round trip, µs")?;
    }
    for (proto, size, mode) in latency_blocks(report) {
        writeln!(w, "\n  {} {size} B, {}", proto.label(), mode.label())?;
        let mut headers =
            vec!["pairing", "samples", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "vs kernel"];
        if proto == Proto::Udp {
            headers.push("vs floor");
        }
        let mut table = TextTable::new(&headers, 1);
        let mut rows: Vec<&Latency> =
            report.latency.iter().filter(|l| (l.proto, l.size, l.mode) == (proto, size, mode)).collect();
        rows.sort_by_key(|l| l.pairing);
        for l in rows {
            let mut cells = vec![l.pairing.label().to_string()];
            match LatencySummary::of(&l.hist) {
                Some(s) => {
                    cells.push(s.samples.to_string());
                    cells.extend([s.min, s.p50, s.p90, s.p99, s.p99_9, s.p99_99, s.max].map(fmt_us));
                }
                None => cells.extend(std::iter::repeat_n("-".to_string(), 8)),
            }
            cells.push(fmt_ratio(latency_vs_kernel(report, l)));
            if proto == Proto::Udp {
                cells.push(fmt_ratio(latency_vs_floor(report, l)));
            }
            table.row(cells);
        }
        table.write(w)?;
    }

    let kinds: BTreeSet<ThroughputKind> = report.throughput.iter().map(|t| t.kind).collect();
    if !kinds.is_empty() {
        writeln!(w, "\nthroughput")?;
    }
    for kind in kinds {
        writeln!(w, "\n  {}", kind.label())?;
        let mut table =
            TextTable::new(&["pairing", "mode", "value", "server cores", "per core", "vs kernel"], 2);
        let mut rows: Vec<&Throughput> = report.throughput.iter().filter(|t| t.kind == kind).collect();
        rows.sort_by_key(|t| (t.mode, t.pairing));
        for t in rows {
            table.row(vec![
                t.pairing.label().into(),
                t.mode.label().into(),
                fmt_rate(t.value, kind.unit()),
                match (t.server_cores, t.server_work) {
                    (Some(c), Some(w)) => format!("{c:.2} (work {w:.2})"),
                    (Some(c), None) => format!("{c:.2}"),
                    (None, Some(w)) => format!("work {w:.2}"),
                    (None, None) => "-".into(),
                },
                per_core(t).map_or_else(|| "-".into(), |v| fmt_rate(v, kind.unit())),
                fmt_ratio(throughput_vs_kernel(report, t)),
            ]);
        }
        table.write(w)?;
    }

    if !report.sockperf.is_empty() {
        writeln!(w, "\nsockperf (unmodified client), µs")?;
        let cols = ["min", "50.000", "90.000", "99.000", "99.900", "99.990", "max"];
        let mut table = TextTable::new(
            &[
                "target",
                "proto",
                "size",
                "min",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "p99.99",
                "max",
                "p50 vs kernel",
            ],
            3,
        );
        for s in &report.sockperf {
            let find = |label: &str| s.percentiles.iter().find(|(l, _)| l == label).map(|(_, us)| *us);
            let kernel_p50 = report
                .sockperf
                .iter()
                .find(|k| k.target.starts_with("kernel") && k.proto == s.proto && k.size == s.size)
                .and_then(|k| k.percentiles.iter().find(|(l, _)| l == "50.000").map(|(_, us)| *us));
            let mut row = vec![s.target.clone(), s.proto.label().into(), format!("{} B", s.size)];
            for c in cols {
                row.push(find(c).map_or("-".into(), |us| format!("{us:.2}")));
            }
            row.push(fmt_ratio(match (find("50.000"), kernel_p50) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            }));
            table.row(row);
        }
        table.write(w)?;
        for s in report.sockperf.iter().filter(|s| !s.summary.trim().is_empty()) {
            writeln!(w, "  {} ({} {} B):", s.target, s.proto.label(), s.size)?;
            for line in s.summary.lines() {
                writeln!(w, "    {line}")?;
            }
        }
    }

    if !report.stages.is_empty() {
        writeln!(
            w,
            "\nwhere the time of a round trip goes (stage timing: XDP stamps and the stack's clock)"
        )?;
    }
    for path in stage_paths(report) {
        writeln!(w, "\n  {path}")?;
        let stages: Vec<&Stage> = report.stages.iter().filter(|s| s.path == path).collect();
        let total: f64 = stages.iter().map(|s| s.nanos).sum();
        let mut table = TextTable::new(&["stage", "µs", "share"], 2);
        for s in stages {
            let share = ratio(s.nanos * 100.0, total).map_or_else(|| "-".into(), |p| format!("{p:.0} %"));
            table.row(vec![s.name.clone(), format!("{:.2}", s.nanos / 1000.0), share]);
        }
        table.row(vec!["total".into(), format!("{:.2}", total / 1000.0), String::new()]);
        table.write(w)?;
    }

    writeln!(w, "\ntargets{}", if report.quick { " (--quick run: indicative only)" } else { "" })?;
    for t in targets(report) {
        let measured = t.measured.map_or_else(|| "-".into(), |m| format!("{m:.2}"));
        writeln!(w, "  {:<4}  {measured:>6}  {}", t.status(), t.name)?;
    }
    let limits = limits(report);
    if !limits.is_empty() {
        writeln!(w, "\nlimits of the path (busy-poll; a latency target below these cannot be met here)")?;
        for (what, m) in limits {
            let m = m.map_or_else(|| "-".into(), |m| format!("{m:.2}"));
            writeln!(w, "  {m:>6}  {what}")?;
        }
    }
    Ok(())
}

fn or_dash(s: &str) -> &str {
    if s.trim().is_empty() {
        "-"
    } else {
        s
    }
}

/// A JSON value, written by hand: the report needs nothing more.
enum Json {
    Null,
    Bool(bool),
    Int(u64),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    fn str(s: &str) -> Json {
        Json::Str(s.to_string())
    }

    fn opt(v: Option<f64>) -> Json {
        v.map_or(Json::Null, Json::Num)
    }

    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            // JSON has no NaN or infinity.
            Json::Num(x) if !x.is_finite() => out.push_str("null"),
            Json::Num(x) => {
                let _ = write!(out, "{x}");
            }
            Json::Str(s) => write_json_string(out, s),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    push_indent(out, indent + 1);
                    item.write(out, indent + 1);
                }
                out.push('\n');
                push_indent(out, indent);
                out.push(']');
            }
            Json::Obj(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    out.push_str(if i == 0 { "\n" } else { ",\n" });
                    push_indent(out, indent + 1);
                    write_json_string(out, key);
                    out.push_str(": ");
                    value.write(out, indent + 1);
                }
                out.push('\n');
                push_indent(out, indent);
                out.push('}');
            }
        }
    }
}

fn push_indent(out: &mut String, level: usize) {
    out.extend(std::iter::repeat_n(' ', 2 * level));
}

/// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn latency_json(report: &Report, l: &Latency) -> Json {
    let mut fields = vec![
        ("pairing", Json::str(l.pairing.label())),
        ("mode", Json::str(l.mode.label())),
        ("proto", Json::str(l.proto.label())),
        ("size", Json::Int(l.size as u64)),
        ("cores", Json::str(&l.cores)),
        ("samples", Json::Int(l.hist.len())),
    ];
    let s = LatencySummary::of(&l.hist);
    fields.push(("mean_ns", Json::opt(s.map(|s| s.mean))));
    fields.push(("stdev_ns", Json::opt(s.map(|s| s.stdev))));
    match s {
        Some(s) => fields.extend(s.figures_ns().map(|(key, ns)| (key, Json::Int(ns)))),
        None => fields.extend(LatencySummary::FIGURE_KEYS.map(|key| (key, Json::Null))),
    }
    fields.push(("p50_vs_kernel", Json::opt(latency_vs_kernel(report, l))));
    fields.push(("p50_vs_floor", Json::opt(latency_vs_floor(report, l))));
    Json::Obj(fields)
}

fn throughput_json(report: &Report, t: &Throughput) -> Json {
    let (kind, flows) = match t.kind {
        ThroughputKind::UdpEcho { flows } => ("udp-echo", Json::Int(flows as u64)),
        ThroughputKind::TcpBulk { flows } => ("tcp-bulk", Json::Int(flows as u64)),
        ThroughputKind::TcpConnRate => ("tcp-conn-rate", Json::Null),
    };
    Json::Obj(vec![
        ("pairing", Json::str(t.pairing.label())),
        ("mode", Json::str(t.mode.label())),
        ("kind", Json::str(kind)),
        ("flows", flows),
        ("value", Json::Num(t.value)),
        ("unit", Json::str(t.kind.unit())),
        ("server_cores", Json::opt(t.server_cores)),
        ("server_work", Json::opt(t.server_work)),
        ("per_core", Json::opt(per_core(t))),
        ("vs_kernel", Json::opt(throughput_vs_kernel(report, t))),
        ("duration_s", Json::Num(t.duration.as_secs_f64())),
    ])
}

/// All figures of the run as JSON: machine, latency percentiles (ns, not the raw histograms) with
/// their ratios, throughput, sockperf, stages and the targets.
pub fn to_json(report: &Report) -> String {
    let m = &report.machine;
    let root = Json::Obj(vec![
        (
            "machine",
            Json::Obj(vec![
                ("cpu_model", Json::str(&m.cpu_model)),
                ("cpus", Json::Int(m.cpus as u64)),
                ("kernel", Json::str(&m.kernel)),
                ("date", Json::str(&m.date)),
                ("xdp", Json::str(&m.xdp)),
            ]),
        ),
        ("quick", Json::Bool(report.quick)),
        ("latency", Json::Arr(report.latency.iter().map(|l| latency_json(report, l)).collect())),
        ("throughput", Json::Arr(report.throughput.iter().map(|t| throughput_json(report, t)).collect())),
        (
            "sockperf",
            Json::Arr(
                report
                    .sockperf
                    .iter()
                    .map(|s| {
                        let percentiles = s
                            .percentiles
                            .iter()
                            .map(|(label, us)| {
                                Json::Obj(vec![("label", Json::str(label)), ("us", Json::Num(*us))])
                            })
                            .collect();
                        Json::Obj(vec![
                            ("target", Json::str(&s.target)),
                            ("proto", Json::str(s.proto.label())),
                            ("size", Json::Int(s.size as u64)),
                            ("percentiles", Json::Arr(percentiles)),
                            ("summary", Json::str(&s.summary)),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "stages",
            Json::Arr(
                report
                    .stages
                    .iter()
                    .map(|s| {
                        let total: f64 =
                            report.stages.iter().filter(|t| t.path == s.path).map(|t| t.nanos).sum();
                        Json::Obj(vec![
                            ("path", Json::str(&s.path)),
                            ("name", Json::str(&s.name)),
                            ("ns", Json::Num(s.nanos)),
                            ("percent", Json::opt(ratio(s.nanos * 100.0, total))),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "targets",
            Json::Arr(
                targets(report)
                    .into_iter()
                    .map(|t| {
                        Json::Obj(vec![
                            ("name", Json::Str(t.name)),
                            ("measured", Json::opt(t.measured)),
                            ("bound", Json::Num(t.bound)),
                            ("pass", t.pass.map_or(Json::Null, Json::Bool)),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "limits",
            Json::Arr(
                limits(report)
                    .into_iter()
                    .map(|(what, m)| Json::Obj(vec![("what", Json::Str(what)), ("ratio", Json::opt(m))]))
                    .collect(),
            ),
        ),
    ]);
    let mut out = String::new();
    root.write(&mut out, 0);
    out.push('\n');
    out
}

/// The `.hgrm` file name of a latency measurement, e.g. `latency-udp-64B-busy-poll-kernel-stack.hgrm`.
pub fn hgrm_file_name(l: &Latency) -> String {
    format!("latency-{}-{}B-{}-{}.hgrm", l.proto.label(), l.size, l.mode.label(), l.pairing.label())
}

/// `name`, or `name` with `-2`, `-3`, ... before the extension if an earlier file took it.
pub(crate) fn unique_name(used: &mut HashSet<String>, name: String) -> String {
    if used.insert(name.clone()) {
        return name;
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
    (2..)
        .map(|n| if ext.is_empty() { format!("{stem}-{n}") } else { format!("{stem}-{n}.{ext}") })
        .find(|candidate| used.insert(candidate.clone()))
        .unwrap_or(name)
}

/// Writes every output of the run into `dir` (created if needed): `results.json`, `table.txt`,
/// one `.hgrm` per latency histogram (values in µs), and the plots (SVG and PNG). Returns the files
/// written. The data files are written before the plots, so they are there even if plotting fails.
pub fn write_all(report: &Report, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();

    let path = dir.join("results.json");
    fs::write(&path, to_json(report))?;
    written.push(path);

    let mut table = Vec::new();
    print_table(report, &mut table)?;
    let path = dir.join("table.txt");
    fs::write(&path, table)?;
    written.push(path);

    let mut used = HashSet::new();
    for l in &report.latency {
        let path = dir.join(unique_name(&mut used, hgrm_file_name(l)));
        let mut file = io::BufWriter::new(fs::File::create(&path)?);
        hdr_text::write_percentile_distribution(&l.hist, 1000.0, &mut file)?;
        file.flush()?;
        written.push(path);
    }

    written.extend(plot::write_plots(report, dir)?);
    Ok(written)
}

/// Helpers shared by the tests of the report, the plots and the demo.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};

    /// A directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path =
                std::env::temp_dir().join(format!("xdpstack-bench-{tag}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::test_support::TempDir;
    use super::*;
    use crate::results::{MachineInfo, Sockperf, Stage};

    /// 9,900 round trips of `median` ns and 100 of `tail` ns: p50 is `median`, p99.9 is `tail`.
    /// Values under 2048 ns are exact at 3 significant digits.
    fn lat(pairing: Pairing, mode: Mode, proto: Proto, size: usize, median: u64, tail: u64) -> Latency {
        let mut hist = Histogram::<u64>::new(3).unwrap();
        hist.record_n(median, 9_900).unwrap();
        hist.record_n(tail, 100).unwrap();
        Latency { pairing, mode, proto, size, cores: "0,1".into(), hist }
    }

    fn thr(pairing: Pairing, mode: Mode, kind: ThroughputKind, value: f64, cores: Option<f64>) -> Throughput {
        Throughput {
            pairing,
            mode,
            kind,
            value,
            server_cores: cores,
            server_work: None,
            duration: Duration::from_secs(1),
        }
    }

    const ECHO: ThroughputKind = ThroughputKind::UdpEcho { flows: 4 };
    const BULK: ThroughputKind = ThroughputKind::TcpBulk { flows: 1 };

    /// A run with known figures (see each line for the ratios it makes).
    fn fixture() -> Report {
        use Mode::*;
        use Pairing::*;
        use Proto::*;
        Report {
            machine: MachineInfo {
                cpu_model: "Test \"CPU\" \\ model\n\t\u{1}".into(),
                cpus: 2,
                kernel: "6.18".into(),
                date: "2025-01-01T00:00:00Z".into(),
                xdp: "native".into(),
            },
            quick: true,
            latency: vec![
                lat(KernelKernel, BusyPoll, Udp, 64, 2000, 2040),
                lat(KernelStack, BusyPoll, Udp, 64, 1200, 1300), // 0.60 x kernel, 1.09 x floor
                lat(StackStack, BusyPoll, Udp, 64, 800, 2046),   // 0.40 x kernel, p99.9 1.003 x
                lat(Reflector, BusyPoll, Udp, 64, 1100, 1200),
                lat(KernelKernel, BusyPoll, Udp, 1400, 2000, 2040),
                lat(KernelStack, BusyPoll, Udp, 1400, 1500, 1600), // 0.75 x kernel, no floor
                lat(KernelKernel, BusyPoll, Tcp, 64, 1500, 1600),
                lat(KernelStack, BusyPoll, Tcp, 64, 1000, 1100), // 0.67 x kernel
                lat(KernelStack, Blocking, Udp, 64, 1700, 1800), // no baseline at all
            ],
            throughput: vec![
                thr(KernelKernel, BusyPoll, ECHO, 1e6, Some(2.0)),
                thr(KernelStack, BusyPoll, ECHO, 1.5e6, Some(1.0)), // 1.5 x; per core 3 x
                thr(StackStack, BusyPoll, ECHO, 2e6, None),
                thr(KernelKernel, Blocking, ECHO, 1e6, None),
                thr(KernelStack, Blocking, ECHO, 1.2e6, Some(1.0)), // per core: n/a
                thr(KernelKernel, BusyPoll, BULK, 10.0, None),
                thr(KernelStack, BusyPoll, BULK, 9.0, None),
                thr(StackStack, BusyPoll, BULK, 11.0, None), // best: 1.1 x
                thr(KernelKernel, Blocking, ThroughputKind::TcpConnRate, 50_000.0, None),
                thr(KernelStack, Blocking, ThroughputKind::TcpConnRate, 90_000.0, None), // 1.8 x
            ],
            sockperf: vec![Sockperf {
                target: "kernel sockperf server".into(),
                proto: Udp,
                size: 64,
                percentiles: vec![("50.000".into(), 5.2), ("99.000".into(), 7.75)],
                summary: "Summary: Latency is 5.3 usec".into(),
            }],
            stages: vec![
                Stage { path: "p".into(), name: "rx".into(), nanos: 300.0 },
                Stage { path: "p".into(), name: "tx".into(), nanos: 100.0 },
            ],
        }
    }

    /// The lines of the block that starts with `header`, up to the next blank line.
    fn block<'a>(text: &'a str, header: &str) -> Vec<&'a str> {
        let mut lines = text.lines().skip_while(|l| l.trim() != header);
        assert!(lines.next().is_some(), "no block {header:?} in\n{text}");
        lines.take_while(|l| !l.trim().is_empty()).collect()
    }

    /// The cells of the row for `label` in a block.
    fn row<'a>(lines: &[&'a str], label: &str) -> Vec<&'a str> {
        let line =
            lines.iter().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{label}"));
        line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
    }

    fn table(report: &Report) -> String {
        let mut out = Vec::new();
        print_table(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn test_table_rows_and_ratios() {
        let text = table(&fixture());
        assert!(text.contains("--quick"));
        assert!(text.contains("Linux 6.18"));

        let b = block(&text, "udp 64 B, busy-poll");
        for pairing in ["kernel-kernel", "kernel-stack", "stack-stack", "kernel-reflector"] {
            assert!(b.iter().any(|l| l.trim_start().starts_with(pairing)), "{pairing} missing:\n{text}");
        }
        // pairing, samples, min, p50, p90, p99, p99.9, p99.99, max, vs kernel, vs floor
        assert_eq!(
            row(&b, "kernel-stack"),
            [
                "kernel-stack",
                "10000",
                "1.20",
                "1.20",
                "1.20",
                "1.20",
                "1.30",
                "1.30",
                "1.30",
                "0.60x",
                "1.09x"
            ]
        );
        assert_eq!(row(&b, "kernel-kernel")[9..], ["1.00x", "1.82x"]);
        assert_eq!(row(&b, "stack-stack")[9..], ["0.40x", "-"], "its floor, afxdp-reflector, is missing");

        let b = block(&text, "udp 1400 B, busy-poll");
        assert_eq!(row(&b, "kernel-stack")[9..], ["0.75x", "-"], "no reflector: no floor");
        let b = block(&text, "tcp 64 B, busy-poll");
        assert_eq!(row(&b, "kernel-stack").len(), 10, "no floor column for TCP");
        assert_eq!(row(&b, "kernel-stack")[9], "0.67x");
        let b = block(&text, "udp 64 B, blocking");
        assert_eq!(row(&b, "kernel-stack")[9..], ["-", "-"], "no baseline in this mode");

        let b = block(&text, "udp-echo 4 flow(s)");
        let mut busy = b.iter().filter(|l| l.contains("busy-poll"));
        let kernel: Vec<&str> =
            busy.next().unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(kernel, ["kernel-kernel", "busy-poll", "1.000 Mpkt/s", "2.00", "500.0 kpkt/s", "1.00x"]);
        let stack: Vec<&str> =
            busy.next().unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(stack, ["kernel-stack", "busy-poll", "1.500 Mpkt/s", "1.00", "1.500 Mpkt/s", "1.50x"]);
        let b = block(&text, "tcp-bulk 1 flow(s)");
        assert_eq!(row(&b, "stack-stack"), ["stack-stack", "busy-poll", "11.00 Gbit/s", "-", "-", "1.10x"]);

        let b = block(&text, "p");
        assert_eq!(row(&b, "rx"), ["rx", "0.30", "75 %"]);
        assert_eq!(row(&b, "total"), ["total", "0.40"]);
        let b = block(&text, "sockperf (unmodified client), µs");
        assert_eq!(
            row(&b, "kernel sockperf server"),
            ["kernel sockperf server", "udp", "64 B", "-", "5.20", "-", "7.75", "-", "-", "-", "1.00x"]
        );

        let b = block(&text, "targets (--quick run: indicative only)");
        assert_eq!(b.len(), targets(&fixture()).len());
        assert!(b[0].trim_start().starts_with("PASS    0.60  (1)"), "{}", b[0]);
    }

    fn find<'a>(checks: &'a [TargetCheck], prefix: &str, at: &str) -> &'a TargetCheck {
        checks
            .iter()
            .find(|t| t.name.starts_with(prefix) && t.name.ends_with(at))
            .unwrap_or_else(|| panic!("no target {prefix} ... {at} in {checks:#?}"))
    }

    fn assert_target(t: &TargetCheck, measured: Option<f64>, pass: Option<bool>) {
        match (t.measured, measured) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "{}: {a} != {b}", t.name),
            (a, b) => assert_eq!(a, b, "{}", t.name),
        }
        assert_eq!(t.pass, pass, "{}", t.name);
    }

    #[test]
    fn test_targets_pass_miss_na() {
        let checks = targets(&fixture());
        assert_target(find(&checks, "(1)", "[udp 64 B]"), Some(0.6), Some(true));
        assert_target(find(&checks, "(1)", "[udp 1400 B]"), Some(0.75), Some(false));
        assert_target(find(&checks, "(1)", "[tcp 64 B]"), Some(1000.0 / 1500.0), Some(true));
        assert_target(find(&checks, "(2)", "[udp 64 B]"), Some(1200.0 / 1100.0), Some(true));
        assert_target(find(&checks, "(2)", "[udp 1400 B]"), None, None);
        assert_target(find(&checks, "(3) busy-poll stack-stack p50", "[udp 64 B]"), Some(0.4), Some(true));
        assert_target(
            find(&checks, "(3) busy-poll stack-stack p99.9", "[udp 64 B]"),
            Some(2046.0 / 2040.0),
            Some(false),
        );
        assert_target(find(&checks, "(3) busy-poll stack-stack p50", "[tcp 64 B]"), None, None);
        assert_target(find(&checks, "(4)", "busy-poll]"), Some(3.0), Some(true));
        // The kernel's best per core (busy-poll: 0.5 M) where its blocking run has no CPU figure.
        assert_target(find(&checks, "(4)", "blocking]"), Some(2.4), Some(true));
        assert_target(find(&checks, "(5)", "[busy-poll]"), Some(1.1), Some(true));
        assert_target(find(&checks, "(6)", "[blocking]"), Some(1.8), Some(false));
        assert_eq!(find(&checks, "(6)", "[blocking]").status(), "MISS");
        assert_eq!(find(&checks, "(2)", "[udp 1400 B]").status(), "n/a");
        // Bounds as stated.
        let bounds: Vec<f64> = ["(1)", "(2)", "(4)", "(5)", "(6)"]
            .iter()
            .map(|p| checks.iter().find(|t| t.name.starts_with(p)).unwrap().bound)
            .collect();
        assert_eq!(bounds, [0.7, 1.15, 2.0, 1.0, 2.0]);
    }

    #[test]
    fn test_targets_of_an_empty_run_are_all_na() {
        let checks = targets(&Report::default());
        for (i, prefix) in ["(1)", "(1)", "(2)", "(3)", "(4)", "(5)", "(6)"].iter().enumerate() {
            assert!(checks[i].name.starts_with(prefix), "{:?}", checks[i]);
        }
        assert_eq!(checks.len(), 7);
        assert!(checks.iter().all(|t| t.pass.is_none() && t.measured.is_none()));
    }

    #[test]
    fn test_degenerate_runs_never_panic() {
        let mut report = fixture();
        // An empty histogram, a zero baseline, NaN and zero throughputs, zero server cores.
        report.latency.push(Latency {
            hist: Histogram::new(3).unwrap(),
            ..lat(Pairing::StackStack, Mode::Blocking, Proto::Tcp, 9, 1, 1)
        });
        report.latency.push(lat(Pairing::KernelKernel, Mode::Blocking, Proto::Tcp, 9, 0, 0));
        report.latency.push(lat(Pairing::KernelStack, Mode::Blocking, Proto::Tcp, 9, 5, 5));
        report.throughput.push(thr(
            Pairing::KernelKernel,
            Mode::BusyPoll,
            ThroughputKind::TcpConnRate,
            0.0,
            Some(0.0),
        ));
        report.throughput.push(thr(
            Pairing::KernelStack,
            Mode::BusyPoll,
            ThroughputKind::TcpConnRate,
            f64::NAN,
            Some(1.0),
        ));
        report.stages.push(Stage { path: "q".into(), name: "negative".into(), nanos: -400.0 });
        let text = table(&report);
        let b = block(&text, "tcp 9 B, blocking");
        assert_eq!(row(&b, "kernel-stack")[9], "-", "zero baseline: no ratio");
        assert_eq!(row(&b, "stack-stack")[1..], ["-", "-", "-", "-", "-", "-", "-", "-", "-"]);
        assert!(text.contains(
            "(6) tcp connection rate: best of kernel-stack, stack-stack >= 2 x kernel-kernel [busy-poll]"
        ));
        let json = to_json(&report);
        assert!(!json.contains("NaN") && !json.contains("inf"));
        python_check(
            &json,
            "assert d['throughput'][-1]['value'] is None; assert d['stages'][-1]['percent'] is None",
        );

        let empty = Report::default();
        assert!(table(&empty).contains("targets"));
        python_check(&to_json(&empty), "assert d['latency'] == [] and len(d['targets']) == 7");
    }

    /// Parses `json` with Python's json module and runs `check` on it (as `d`).
    fn python_check(json: &str, check: &str) {
        let script = format!("import json, sys\nd = json.load(sys.stdin)\n{check}\n");
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 (the JSON check needs it)");
        child.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}\n{json}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn test_json_is_valid_and_complete() {
        let report = fixture();
        let json = to_json(&report);
        let l = &report.latency[1];
        let checks = targets(&report);
        python_check(
            &json,
            &format!(
                "assert d['machine']['cpu_model'] == 'Test \"CPU\" \\\\ model\\n\\t\\x01', repr(d['machine']['cpu_model'])
assert d['quick'] is True
k = d['latency'][1]
assert k['pairing'] == 'kernel-stack' and k['proto'] == 'udp' and k['size'] == 64
assert (k['p50_ns'], k['p99_9_ns'], k['samples']) == ({}, {}, {}), k
assert abs(k['p50_vs_kernel'] - 0.6) < 1e-12 and abs(k['p50_vs_floor'] - 1200 / 1100) < 1e-12
assert d['latency'][6]['p50_vs_floor'] is None
assert len(d['throughput']) == {} and d['throughput'][1]['vs_kernel'] == 1.5 and d['throughput'][1]['per_core'] == 1.5e6
assert d['throughput'][8]['flows'] is None and d['throughput'][0]['flows'] == 4
assert d['sockperf'][0]['percentiles'][1] == {{'label': '99.000', 'us': 7.75}}
assert [s['percent'] for s in d['stages']] == [75.0, 25.0]
assert len(d['targets']) == {} and d['targets'][0]['pass'] is True and d['targets'][0]['bound'] == 0.7
assert sum(1 for t in d['targets'] if t['pass'] is None) == {}",
                l.hist.value_at_quantile(0.5),
                l.hist.value_at_quantile(0.999),
                l.hist.len(),
                report.throughput.len(),
                checks.len(),
                checks.iter().filter(|t| t.pass.is_none()).count(),
            ),
        );
    }

    #[test]
    fn test_write_all_files() {
        let dir = TempDir::new("report");
        let mut report = fixture();
        report.latency.push(lat(Pairing::KernelStack, Mode::BusyPoll, Proto::Udp, 64, 1200, 1300));
        let written = write_all(&report, dir.path()).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
        assert_eq!(names[..2], ["results.json", "table.txt"]);
        assert!(names.contains(&"latency-udp-64B-busy-poll-kernel-stack.hgrm".into()));
        assert!(
            names.contains(&"latency-udp-64B-busy-poll-kernel-stack-2.hgrm".into()),
            "duplicates kept apart"
        );
        assert_eq!(names.iter().filter(|n| n.ends_with(".hgrm")).count(), report.latency.len());
        let hgrm =
            fs::read_to_string(dir.path().join("latency-tcp-64B-busy-poll-kernel-kernel.hgrm")).unwrap();
        assert!(hgrm.contains("#[Max     =        1.600, Total count    =        10000]"), "{hgrm}");
        assert_eq!(fs::read_to_string(dir.path().join("table.txt")).unwrap(), table(&report));
        for path in &written {
            assert!(path.exists(), "{}", path.display());
        }
    }

    #[test]
    fn test_fmt_rate() {
        assert_eq!(fmt_rate(1_234_567.0, "pkt/s"), "1.235 Mpkt/s");
        assert_eq!(fmt_rate(45_600.0, "conn/s"), "45.6 kconn/s");
        assert_eq!(fmt_rate(999.0, "conn/s"), "999 conn/s");
        assert_eq!(fmt_rate(9.876, "Gbit/s"), "9.88 Gbit/s");
    }
}
