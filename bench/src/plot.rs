//! Plots of a run, each written as SVG and PNG from the same drawing code.
//!
//! - Latency by percentile, as HdrHistogram's plotter draws it: the x axis is `log10(1/(1-p))`
//!   labelled 0%, 90%, 99%, 99.9%, ...; the y axis is the round trip in µs (log scale); one curve
//!   per pairing; one figure per (proto, size, mode).
//! - Throughput: one figure per kind, one horizontal bar per (pairing, mode), the value written at
//!   the bar's end.
//!
//! Plotters draws text with ab_glyph and has no system font lookup here: DejaVu Sans is read at
//! run time from [`FONT_PATH`] (Debian package `fonts-dejavu-core`). Empty data, single points and
//! zeros on a log axis are clamped or skipped, never a panic.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::hdr_text::{self, PercentileRow};
use crate::report::{fmt_rate, unique_name};
use crate::results::{Latency, Mode, Pairing, Proto, Report, Throughput, ThroughputKind};

/// The font every plot is drawn with.
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Size of every figure, in pixels (the SVG uses the same units).
const SIZE: (u32, u32) = (1000, 600);

/// Lowest latency plotted on the log axis, µs (1 ns): zeros are clamped to it.
const FLOOR_US: f64 = 0.001;

/// Registers DejaVu Sans as plotters' `sans-serif`, once per process.
fn ensure_font() -> io::Result<()> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = FONT.get_or_init(|| {
        let bytes = fs::read(FONT_PATH).map_err(|e| {
            format!("cannot read the plot font {FONT_PATH} ({e}): install the package fonts-dejavu-core")
        })?;
        // plotters keeps fonts for the whole process: leaking the one copy is what it asks for.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{FONT_PATH} is not a usable font: reinstall fonts-dejavu-core"))
    });
    result.clone().map_err(io::Error::other)
}

/// A plotters error as an `io::Error`.
fn plot_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("plot: {e}"))
}

/// The colour of a pairing, the same in every figure.
fn color(pairing: Pairing) -> RGBColor {
    match pairing {
        Pairing::KernelKernel => RGBColor(60, 60, 60),
        Pairing::KernelStack => RGBColor(31, 119, 180),
        Pairing::StackStack => RGBColor(44, 160, 44),
        Pairing::Reflector => RGBColor(214, 39, 40),
        Pairing::XdpTx => RGBColor(148, 103, 189),
        Pairing::AfXdpReflector => RGBColor(255, 127, 14),
    }
}

/// A figure, drawn by the same code on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> io::Result<()>;
}

/// Draws `figure` twice, as `<stem>.svg` and `<stem>.png`, and returns both paths.
fn draw_both(dir: &Path, stem: &str, figure: &impl Figure) -> io::Result<Vec<PathBuf>> {
    let svg = dir.join(format!("{stem}.svg"));
    let png = dir.join(format!("{stem}.png"));
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok(vec![svg, png])
}

/// Writes every plot of the run into `dir` and returns the files written.
pub fn write_plots(report: &Report, dir: &Path) -> io::Result<Vec<PathBuf>> {
    ensure_font()?;
    let mut written = Vec::new();
    let mut used = HashSet::new();

    let blocks: BTreeSet<(Proto, usize, Mode)> =
        report.latency.iter().map(|l| (l.proto, l.size, l.mode)).collect();
    for (proto, size, mode) in blocks {
        let mut curves: Vec<&Latency> =
            report.latency.iter().filter(|l| (l.proto, l.size, l.mode) == (proto, size, mode)).collect();
        curves.sort_by_key(|l| l.pairing);
        let title = format!("{} {size} B, {}: round-trip latency by percentile", proto.label(), mode.label());
        let stem = unique_name(&mut used, format!("latency-{}-{size}B-{}", proto.label(), mode.label()));
        written.extend(draw_both(dir, &stem, &LatencyFigure::new(title, &curves))?);
    }

    let kinds: BTreeSet<ThroughputKind> = report.throughput.iter().map(|t| t.kind).collect();
    for kind in kinds {
        let mut bars: Vec<&Throughput> = report.throughput.iter().filter(|t| t.kind == kind).collect();
        bars.sort_by_key(|t| (t.mode, t.pairing));
        let stem = unique_name(&mut used, format!("throughput-{}", slug(&kind.label())));
        written.extend(draw_both(dir, &stem, &ThroughputFigure::new(kind, &bars))?);
    }
    Ok(written)
}

/// `udp-echo 4 flow(s)` -> `udp-echo-4-flows`: letters, digits and single dashes.
fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c.is_whitespace() || c == '-' || c == '/') && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The x coordinate of percentile `q` (a fraction): `log10(1/(1-q))`, so 90% is 1, 99% is 2.
fn percentile_x(q: f64) -> f64 {
    (1.0 / (1.0 - q)).log10()
}

/// The axis label of x = `k` (an integer): 0%, 90%, 99%, 99.9%, ...
fn percentile_label(x: f64) -> String {
    let k = x.round();
    if (x - k).abs() > 1e-9 || k < 0.0 {
        return String::new();
    }
    match k as usize {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        // 100 * (1 - 10^-k): "99." then k - 2 nines.
        k => format!("99.{}%", "9".repeat(k - 2)),
    }
}

/// The points of one latency curve, (x, µs): every percentile row below 100%, then the maximum at
/// the percentile of the last sample, 1 - 1/n. Zeros are clamped to [`FLOOR_US`].
fn curve_points(l: &Latency) -> Vec<(f64, f64)> {
    let rows: Vec<PercentileRow> = hdr_text::percentile_rows(&l.hist, hdr_text::TICKS_PER_HALF_DISTANCE);
    let us = |ns: u64| (ns as f64 / 1000.0).max(FLOOR_US);
    let mut points: Vec<(f64, f64)> =
        rows.iter().filter(|r| r.quantile < 1.0).map(|r| (percentile_x(r.quantile), us(r.value))).collect();
    if let Some(last) = rows.last() {
        let x_max = (l.hist.len() as f64).log10();
        let x = points.last().map_or(x_max, |&(x, _)| x.max(x_max));
        if points.last() != Some(&(x, us(last.value))) {
            points.push((x, us(last.value)));
        }
    }
    points.retain(|&(x, y)| x.is_finite() && y.is_finite());
    points
}

/// One latency figure: a curve per pairing.
struct LatencyFigure {
    title: String,
    series: Vec<(Pairing, Vec<(f64, f64)>)>,
    x_max: f64,
    y_range: (f64, f64),
}

impl LatencyFigure {
    fn new(title: String, curves: &[&Latency]) -> LatencyFigure {
        let series: Vec<(Pairing, Vec<(f64, f64)>)> =
            curves.iter().map(|l| (l.pairing, curve_points(l))).collect();
        let all = || series.iter().flat_map(|(_, points)| points.iter());
        // At least 0%..99.999%; at most 12 nines (beyond f64's reach of 1/(1-p) anyway).
        let x_max = all().map(|&(x, _)| x).fold(5.0_f64, f64::max).ceil().min(12.0);
        let y_lo = all().map(|&(_, y)| y).fold(f64::INFINITY, f64::min);
        let y_hi = all().map(|&(_, y)| y).fold(0.0_f64, f64::max);
        let y_range = if y_lo.is_finite() && y_hi > 0.0 {
            // From the decade below the data, so the log axis has its labels from the bottom; a flat
            // curve still gets a range of a factor of 2.
            let lo = 10f64.powf((y_lo * 0.9).max(FLOOR_US).log10().floor());
            (lo, (y_hi * 1.25).max(lo * 2.0))
        } else {
            (1.0, 10.0)
        };
        LatencyFigure { title, series, x_max, y_range }
    }
}

impl Figure for LatencyFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> io::Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let (y_lo, y_hi) = self.y_range;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(15)
            .margin_right(45)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..self.x_max, (y_lo..y_hi).log_scale())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            // One label per integer x (a decade of 1/(1-p)); others print empty.
            .x_labels(self.x_max as usize + 1)
            .x_desc("percentile")
            .y_desc("round trip (µs)")
            .light_line_style(RGBColor(238, 238, 238))
            .y_max_light_lines(1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| fmt_axis_us(*y))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(plot_error)?;
        let mut labelled = false;
        for (pairing, points) in &self.series {
            if points.is_empty() {
                continue;
            }
            let c = color(*pairing);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                .map_err(plot_error)?
                .label(pairing.label())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            labelled = true;
        }
        if !labelled {
            return no_data(root);
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(plot_error)
    }
}

/// A µs tick label: as many decimals as the magnitude needs.
fn fmt_axis_us(us: f64) -> String {
    if us >= 10.0 {
        format!("{us:.0}")
    } else if us >= 1.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.3}")
    }
}

/// Writes "no data" in the middle of a figure.
fn no_data<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>) -> io::Result<()> {
    let (w, h) = root.dim_in_pixel();
    let style = TextStyle::from(("sans-serif", 24).into_font()).color(&RGBColor(120, 120, 120));
    root.draw(&Text::new("no data", (w as i32 / 2 - 40, h as i32 / 2), style)).map_err(plot_error)
}

/// One throughput figure: a horizontal bar per (pairing, mode), labelled with its value.
struct ThroughputFigure {
    title: String,
    unit: &'static str,
    /// (label, pairing, value as measured, value drawn: finite and not negative).
    bars: Vec<(String, Pairing, f64, f64)>,
    x_max: f64,
}

impl ThroughputFigure {
    fn new(kind: ThroughputKind, runs: &[&Throughput]) -> ThroughputFigure {
        let bars: Vec<(String, Pairing, f64, f64)> = runs
            .iter()
            .map(|t| {
                let drawn = if t.value.is_finite() { t.value.max(0.0) } else { 0.0 };
                (format!("{} {}", t.pairing.label(), t.mode.label()), t.pairing, t.value, drawn)
            })
            .collect();
        let top = bars.iter().map(|b| b.3).fold(0.0_f64, f64::max);
        // Room at the right for the value labels.
        let x_max = if top > 0.0 { top * 1.3 } else { 1.0 };
        ThroughputFigure {
            title: format!("{} ({})", kind.label(), kind.unit()),
            unit: kind.unit(),
            bars,
            x_max,
        }
    }
}

impl Figure for ThroughputFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> io::Result<()> {
        root.fill(&WHITE).map_err(plot_error)?;
        let n = i32::try_from(self.bars.len()).unwrap_or(i32::MAX).max(1);
        // Segment 0 is at the bottom: bar i goes to segment n - 1 - i, so the first bar is on top.
        let slot = |i: i32| n - 1 - i;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..self.x_max, (0..n - 1).into_segmented())
            .map_err(plot_error)?;
        let label_of = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => usize::try_from(slot(*i))
                .ok()
                .and_then(|i| self.bars.get(i))
                .map(|b| b.0.clone())
                .unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(self.bars.len().max(1))
            .x_desc(self.unit)
            .y_label_formatter(&label_of)
            .x_label_formatter(&|x| fmt_axis_value(*x))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(plot_error)?;
        if self.bars.is_empty() {
            return no_data(root);
        }
        chart
            .draw_series(self.bars.iter().zip(0..).map(|((_, pairing, _, drawn), i)| {
                let mut bar = Rectangle::new(
                    [(0.0, SegmentValue::Exact(slot(i))), (*drawn, SegmentValue::Exact(slot(i) + 1))],
                    color(*pairing).filled(),
                );
                bar.set_margin(6, 6, 0, 0);
                bar
            }))
            .map_err(plot_error)?;
        chart
            .draw_series(self.bars.iter().zip(0..).map(|((_, _, value, drawn), i)| {
                Text::new(
                    format!("  {}", fmt_rate(*value, self.unit)),
                    (*drawn, SegmentValue::CenterOf(slot(i))),
                    ("sans-serif", 14).into_font(),
                )
            }))
            .map_err(plot_error)?;
        Ok(())
    }
}

/// A value-axis tick label: k/M/G prefixes for large rates.
fn fmt_axis_value(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.1}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::*;
    use crate::report::test_support::TempDir;

    const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

    /// The file is a PNG (magic bytes) of [`SIZE`], or an SVG whose root element is `<svg>`.
    fn assert_image(path: &Path) {
        let bytes = fs::read(path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("png") => {
                assert!(bytes.starts_with(PNG_MAGIC), "{} is not a PNG", path.display());
                // IHDR comes first: width and height, big-endian, at bytes 16..24.
                let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
                let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
                assert_eq!((width, height), SIZE);
            }
            Some("svg") => {
                let text = String::from_utf8(bytes).unwrap();
                let body = text.trim_start();
                let body = match body.strip_prefix("<?xml") {
                    Some(rest) => rest.split_once("?>").unwrap().1.trim_start(),
                    None => body,
                };
                assert!(body.starts_with("<svg"), "{}: root is not <svg>", path.display());
                assert!(body.trim_end().ends_with("</svg>"), "{}", path.display());
                assert!(body.contains("<text") || body.contains("<path") || body.contains("<rect"));
            }
            _ => panic!("unexpected file {}", path.display()),
        }
    }

    fn lat(pairing: Pairing, values: &[u64]) -> Latency {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for &v in values {
            hist.record(v).unwrap();
        }
        Latency { pairing, mode: Mode::BusyPoll, proto: Proto::Udp, size: 64, cores: String::new(), hist }
    }

    #[test]
    fn test_plots_are_svg_and_png() {
        let dir = TempDir::new("plot");
        let report = crate::demo::demo_report(3);
        let written = write_plots(&report, dir.path()).unwrap();
        assert_eq!(written.len(), 18, "{written:?}");
        for path in &written {
            assert_image(path);
        }
        let svg = fs::read_to_string(dir.path().join("latency-udp-64B-busy-poll.svg")).unwrap();
        for label in [
            "kernel-kernel",
            "kernel-stack",
            "stack-stack",
            "kernel-reflector",
            "99.9%",
            "udp 64 B, busy-poll",
        ] {
            assert!(svg.contains(label), "{label} not in the latency SVG");
        }
        let svg = fs::read_to_string(dir.path().join("throughput-tcp-conn-rate.svg")).unwrap();
        assert!(svg.contains("kernel-stack busy-poll") && svg.contains("kconn/s"));
    }

    #[test]
    fn test_degenerate_data_still_plots() {
        let dir = TempDir::new("plot-degenerate");
        let report = Report {
            latency: vec![
                lat(Pairing::KernelKernel, &[]),
                lat(Pairing::KernelStack, &[0]),
                lat(Pairing::StackStack, &[5_000]),
                lat(Pairing::Reflector, &[0, 0, 7_000]),
            ],
            throughput: [0.0, f64::NAN, -3.0, f64::INFINITY]
                .into_iter()
                .zip([Pairing::KernelKernel, Pairing::KernelStack, Pairing::StackStack, Pairing::Reflector])
                .map(|(value, pairing)| Throughput {
                    pairing,
                    mode: Mode::Blocking,
                    kind: ThroughputKind::TcpBulk { flows: 8 },
                    value,
                    server_cores: None,
                    server_work: None,
                    duration: Duration::ZERO,
                })
                .collect(),
            ..Report::default()
        };
        let written = write_plots(&report, dir.path()).unwrap();
        assert_eq!(written.len(), 4);
        written.iter().for_each(|p| assert_image(p));

        // Nothing to draw at all: the figure says so.
        let only_empty = Report { latency: vec![lat(Pairing::KernelKernel, &[])], ..Report::default() };
        let written = write_plots(&only_empty, dir.path()).unwrap();
        written.iter().for_each(|p| assert_image(p));
        assert!(fs::read_to_string(&written[0]).unwrap().contains("no data"));
        assert!(write_plots(&Report::default(), dir.path()).unwrap().is_empty());
    }

    #[test]
    fn test_curve_points() {
        let l = lat(Pairing::KernelStack, &(1..=1000).map(|i| i * 1000).collect::<Vec<_>>());
        let points = curve_points(&l);
        assert!(points.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1), "monotonic: {points:?}");
        assert_eq!(points[0], (0.0, 1.0), "0% at the minimum, 1 µs");
        let last = *points.last().unwrap();
        // The curve ends at the maximum, at or right of the percentile of the last of 1000
        // samples, 99.9% (x = 3).
        assert!(last.0 >= 3.0 - 1e-9, "{points:?}");
        assert_eq!(last.1, l.hist.max() as f64 / 1000.0);
        assert_eq!(
            curve_points(&lat(Pairing::KernelStack, &[0])),
            [(0.0, FLOOR_US)],
            "zero clamped, one point"
        );
        assert!(curve_points(&lat(Pairing::KernelStack, &[])).is_empty());
    }

    #[test]
    fn test_labels() {
        let labels: Vec<String> = (0..6).map(|k| percentile_label(k as f64)).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
        assert_eq!(percentile_label(2.5), "");
        assert!((percentile_x(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(slug("udp-echo 4 flow(s)"), "udp-echo-4-flows");
        assert_eq!(slug(&ThroughputKind::TcpConnRate.label()), "tcp-conn-rate");
    }

    #[test]
    fn test_missing_font_names_the_package() {
        // The message the user gets when the font file is absent (checked on the text, since the
        // font is installed here).
        let e = fs::read("/nonexistent/DejaVuSans.ttf").map_err(|e| {
            io::Error::other(format!(
                "cannot read the plot font {FONT_PATH} ({e}): install the package fonts-dejavu-core"
            ))
        });
        assert!(e.unwrap_err().to_string().contains("fonts-dejavu-core"));
    }
}
