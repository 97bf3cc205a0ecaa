//! Pictures (plotters; SVG or PNG by the file extension): an episode timeline from the output
//! of `blastradius run`, and the summaries of a sweep.
//!
//! Text needs a TrueType font: `BLASTRADIUS_FONT` (a `.ttf` path) or a DejaVu / Liberation
//! font in the usual system folders (Debian's `fonts-dejavu-core`), loaded at run time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Result, SweepError};
use crate::output::SummaryRow;
use crate::row::EpisodeRow;

/// The font family name the pictures use (registered from a TTF file).
const FAMILY: &str = "sans-serif";

/// Font files tried, in order, after `BLASTRADIUS_FONT`.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a font once; the error says which files were tried.
fn ensure_font() -> std::result::Result<(), String> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let mut tried = Vec::new();
        let env = std::env::var("BLASTRADIUS_FONT").ok();
        for p in env
            .iter()
            .map(String::as_str)
            .chain(FONT_PATHS.iter().copied())
        {
            tried.push(p.to_string());
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no usable TrueType font (set BLASTRADIUS_FONT to a .ttf file, or install \
             fonts-dejavu-core); tried {}",
            tried.join(", ")
        ))
    })
    .clone()
}

/// One scrape of one service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServicePoint {
    /// Scrape time, seconds.
    pub t: f64,
    /// Requests per second.
    pub rps: f64,
    /// Errors per second.
    pub errors_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// A fault's active window.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    /// Label (fault type and target).
    pub label: String,
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds (`None`: still active at the end).
    pub end_s: Option<f64>,
}

/// An agent action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionMark {
    /// When, seconds.
    pub time_s: f64,
    /// What (the action's text).
    pub action: String,
}

/// Everything a timeline shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Title (the run folder's name, or the scenario from `labels.json`).
    pub title: String,
    /// Per-service series, by service name.
    pub series: BTreeMap<String, Vec<ServicePoint>>,
    /// Fault windows.
    pub faults: Vec<FaultWindow>,
    /// Agent actions.
    pub actions: Vec<ActionMark>,
}

fn bad(path: &Path, reason: impl Into<String>) -> SweepError {
    SweepError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses service metrics CSV (sim-core's `Telemetry::service_metrics_csv` columns; needs
/// `time_s, service, rps, errors_per_s, p50_ms, p99_ms`, others are ignored).
pub fn parse_metrics_csv(path: &Path, text: &str) -> Result<BTreeMap<String, Vec<ServicePoint>>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| bad(path, format!("header: {e}")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| bad(path, format!("no column {name:?} in the header")))
    };
    let (ct, cs, cr, ce, c50, c99) = (
        col("time_s")?,
        col("service")?,
        col("rps")?,
        col("errors_per_s")?,
        col("p50_ms")?,
        col("p99_ms")?,
    );
    let mut out: BTreeMap<String, Vec<ServicePoint>> = BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| SweepError::BadLine {
            path: path.to_path_buf(),
            line,
            reason: e.to_string(),
        })?;
        let num = |c: usize, name: &str| -> Result<f64> {
            let s = rec.get(c).unwrap_or("").trim();
            if s.is_empty() || s.eq_ignore_ascii_case("nan") {
                return Ok(f64::NAN);
            }
            s.parse::<f64>().map_err(|e| SweepError::BadLine {
                path: path.to_path_buf(),
                line,
                reason: format!("{name} {s:?}: {e}"),
            })
        };
        let p = ServicePoint {
            t: num(ct, "time_s")?,
            rps: num(cr, "rps")?,
            errors_per_s: num(ce, "errors_per_s")?,
            p50_ms: num(c50, "p50_ms")?,
            p99_ms: num(c99, "p99_ms")?,
        };
        if !p.t.is_finite() {
            return Err(SweepError::BadLine {
                path: path.to_path_buf(),
                line,
                reason: "time_s is not a number".into(),
            });
        }
        out.entry(rec.get(cs).unwrap_or("").to_string())
            .or_default()
            .push(p);
    }
    Ok(out)
}

/// Reads fault windows from a `labels.json` (sim-faults' `GroundTruth`: `faults[]` with
/// `start`/`end` in ns, `fault_type`, `service`, `id`).
pub fn parse_labels(path: &Path, text: &str) -> Result<(Option<String>, Vec<FaultWindow>)> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(path, e.to_string()))?;
    let scenario = v.get("scenario").and_then(|s| s.as_str()).map(String::from);
    let mut out = Vec::new();
    if let Some(faults) = v.get("faults").and_then(|f| f.as_array()) {
        for (i, f) in faults.iter().enumerate() {
            let ns = |k: &str| f.get(k).and_then(|x| x.as_u64());
            let Some(start) = ns("start").or_else(|| ns("start_ns")) else {
                return Err(bad(path, format!("faults[{i}]: no start time (ns)")));
            };
            let end = ns("end").or_else(|| ns("end_ns"));
            let s = |k: &str| f.get(k).and_then(|x| x.as_str()).unwrap_or("");
            let mut label = if s("fault_type").is_empty() {
                s("id").to_string()
            } else {
                s("fault_type").to_string()
            };
            if !s("service").is_empty() {
                label = format!("{label} @ {}", s("service"));
            }
            out.push(FaultWindow {
                label,
                start_s: start as f64 / 1e9,
                end_s: end.map(|e| e as f64 / 1e9),
            });
        }
    }
    Ok((scenario, out))
}

/// Reads agent actions from JSON lines `{"time_s": f, "action": "..."}` (or `time_ns`).
pub fn parse_actions(path: &Path, text: &str) -> Result<Vec<ActionMark>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| SweepError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        let t = v
            .get("time_s")
            .and_then(|x| x.as_f64())
            .or_else(|| v.get("time_ns").and_then(|x| x.as_f64()).map(|n| n / 1e9));
        let (Some(time_s), Some(action)) = (t, v.get("action").and_then(|a| a.as_str())) else {
            return Err(SweepError::BadLine {
                path: path.to_path_buf(),
                line: i + 1,
                reason: "expected {\"time_s\": number, \"action\": string}".into(),
            });
        };
        out.push(ActionMark {
            time_s,
            action: action.to_string(),
        });
    }
    Ok(out)
}

/// Loads a `blastradius run` output folder: `metrics.csv` (required), `labels.json` and
/// `actions.jsonl` (optional).
pub fn load_run(dir: &Path) -> Result<Timeline> {
    let read = |name: &str| -> Result<Option<(PathBuf, String)>> {
        let p = dir.join(name);
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(Some((p, t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SweepError::io(p, e)),
        }
    };
    let (mp, mt) = read("metrics.csv")?.ok_or_else(|| {
        SweepError::io(
            dir.join("metrics.csv"),
            std::io::Error::new(std::io::ErrorKind::NotFound, "not found"),
        )
    })?;
    let mut t = Timeline {
        title: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        series: parse_metrics_csv(&mp, &mt)?,
        ..Default::default()
    };
    if let Some((p, text)) = read("labels.json")? {
        let (scenario, faults) = parse_labels(&p, &text)?;
        if let Some(s) = scenario {
            t.title = s;
        }
        t.faults = faults;
    }
    if let Some((p, text)) = read("actions.jsonl")? {
        t.actions = parse_actions(&p, &text)?;
    }
    Ok(t)
}

/// Picture formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics.
    Svg,
    /// Portable network graphics.
    Png,
}

impl Format {
    /// The format of a path's extension (`.svg` or `.png`).
    pub fn of(path: &Path) -> Result<Format> {
        match path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .as_deref()
        {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(SweepError::Plot {
                path: path.to_path_buf(),
                reason: "the file name must end in .svg or .png".into(),
            }),
        }
    }
}

macro_rules! on_canvas {
    ($path:expr, $size:expr, |$root:ident| $body:expr) => {{
        let path: &Path = $path;
        ensure_font().map_err(|reason| SweepError::Plot {
            path: path.to_path_buf(),
            reason,
        })?;
        let perr = |reason: String| SweepError::Plot {
            path: path.to_path_buf(),
            reason,
        };
        match Format::of(path)? {
            Format::Svg => {
                let $root = SVGBackend::new(path, $size).into_drawing_area();
                let r: std::result::Result<(), String> = $body;
                r.map_err(perr)?;
                $root.present().map_err(|e| perr(e.to_string()))?;
            }
            Format::Png => {
                let $root = BitMapBackend::new(path, $size).into_drawing_area();
                let r: std::result::Result<(), String> = $body;
                r.map_err(perr)?;
                $root.present().map_err(|e| perr(e.to_string()))?;
            }
        }
        Ok(())
    }};
}

fn e2s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Services to show: all when at most `max`, else the `max` with the highest peak p99.
pub fn pick_services(t: &Timeline, max: usize) -> Vec<String> {
    let mut v: Vec<(f64, &String)> = t
        .series
        .iter()
        .map(|(s, pts)| {
            let peak = pts
                .iter()
                .map(|p| p.p99_ms)
                .filter(|x| x.is_finite())
                .fold(0.0, f64::max);
            (peak, s)
        })
        .collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let mut out: Vec<String> = v.into_iter().take(max).map(|(_, s)| s.clone()).collect();
    out.sort();
    out
}

fn series_color(i: usize) -> RGBColor {
    // Tableau 10: distinct, colour-blind friendlier than a rainbow.
    const C: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

const FAULT_FILL: RGBColor = RGBColor(214, 39, 40);

fn draw_timeline_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    t: &Timeline,
    services: &[String],
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(e2s)?;
    let (w, _h) = root.dim_in_pixel();
    let (title, body) = root.split_vertically(44);
    let shown = if services.len() < t.series.len() {
        format!(
            " ({} of {} services, highest peak p99)",
            services.len(),
            t.series.len()
        )
    } else {
        String::new()
    };
    title
        .draw_text(
            &format!("{}{shown}", t.title),
            &(FAMILY, 24).into_font().color(&BLACK),
            (16, 10),
        )
        .map_err(e2s)?;
    let (plots, legend) = body.split_horizontally(w.saturating_sub(300));
    let t_end = t
        .series
        .values()
        .flat_map(|v| v.iter().map(|p| p.t))
        .chain(t.faults.iter().flat_map(|f| f.end_s))
        .chain(t.actions.iter().map(|a| a.time_s))
        .fold(1.0_f64, f64::max);
    let panels = plots.split_evenly((4, 1));
    type Metric = fn(&ServicePoint) -> f64;
    let metrics: [(&str, Metric); 4] = [
        ("requests / s", |p| p.rps),
        ("errors / s", |p| p.errors_per_s),
        ("p50 latency (ms)", |p| p.p50_ms),
        ("p99 latency (ms)", |p| p.p99_ms),
    ];
    for (pi, (panel, (name, get))) in panels.iter().zip(metrics).enumerate() {
        let ymax = services
            .iter()
            .filter_map(|s| t.series.get(s))
            .flat_map(|v| v.iter().map(get))
            .filter(|x| x.is_finite())
            .fold(0.0_f64, f64::max);
        let ymax = if ymax > 0.0 { ymax * 1.08 } else { 1.0 };
        let mut chart = ChartBuilder::on(panel)
            .margin_left(8)
            .margin_right(16)
            .margin_top(6)
            .margin_bottom(4)
            .caption(name, (FAMILY, 17))
            .x_label_area_size(if pi == 3 { 40 } else { 22 })
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_end, 0.0..ymax)
            .map_err(e2s)?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .label_style((FAMILY, 13))
            .y_labels(5)
            .x_labels(10);
        if pi == 3 {
            mesh.x_desc("simulated time (s)");
        }
        mesh.draw().map_err(e2s)?;
        chart
            .draw_series(t.faults.iter().map(|f| {
                Rectangle::new(
                    [(f.start_s, 0.0), (f.end_s.unwrap_or(t_end), ymax)],
                    FAULT_FILL.mix(0.13).filled(),
                )
            }))
            .map_err(e2s)?;
        for (i, s) in services.iter().enumerate() {
            let Some(pts) = t.series.get(s) else { continue };
            let c = series_color(i);
            chart
                .draw_series(LineSeries::new(
                    pts.iter()
                        .filter(|p| get(p).is_finite())
                        .map(|p| (p.t, get(p))),
                    c.stroke_width(2),
                ))
                .map_err(e2s)?;
        }
        for (ai, a) in t.actions.iter().enumerate() {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(a.time_s, 0.0), (a.time_s, ymax)],
                    BLACK.mix(0.7).stroke_width(1),
                )))
                .map_err(e2s)?;
            if pi == 0 {
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("A{}", ai + 1),
                        (a.time_s, ymax),
                        (FAMILY, 13).into_font().color(&BLACK),
                    )))
                    .map_err(e2s)?;
            }
        }
    }
    // Legend: services, fault windows, actions.
    let font = (FAMILY, 14).into_font().color(&BLACK);
    let mut y = 20;
    legend
        .draw_text("services", &(FAMILY, 16).into_font().color(&BLACK), (10, y))
        .map_err(e2s)?;
    y += 24;
    for (i, s) in services.iter().enumerate() {
        legend
            .draw(&PathElement::new(
                vec![(10, y + 8), (40, y + 8)],
                series_color(i).stroke_width(3),
            ))
            .map_err(e2s)?;
        legend
            .draw_text(&truncate(s, 30), &font, (48, y))
            .map_err(e2s)?;
        y += 20;
    }
    if !t.faults.is_empty() {
        y += 12;
        legend
            .draw_text(
                "faults (shaded)",
                &(FAMILY, 16).into_font().color(&BLACK),
                (10, y),
            )
            .map_err(e2s)?;
        y += 24;
        for f in &t.faults {
            legend
                .draw(&Rectangle::new(
                    [(10, y + 2), (40, y + 14)],
                    FAULT_FILL.mix(0.3).filled(),
                ))
                .map_err(e2s)?;
            let end = f.end_s.map(|e| format!("{e:.0}")).unwrap_or("end".into());
            legend
                .draw_text(
                    &truncate(&format!("{} {:.0}-{end}s", f.label, f.start_s), 34),
                    &font,
                    (48, y),
                )
                .map_err(e2s)?;
            y += 20;
        }
    }
    if !t.actions.is_empty() {
        y += 12;
        legend
            .draw_text(
                "agent actions (lines)",
                &(FAMILY, 16).into_font().color(&BLACK),
                (10, y),
            )
            .map_err(e2s)?;
        y += 24;
        for (ai, a) in t.actions.iter().enumerate().take(30) {
            legend
                .draw_text(
                    &truncate(&format!("A{} {:.0}s {}", ai + 1, a.time_s, a.action), 38),
                    &font,
                    (10, y),
                )
                .map_err(e2s)?;
            y += 18;
        }
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Draws an episode timeline (requests/s, errors/s, p50 and p99 per service; fault windows
/// shaded; agent actions as vertical lines, numbered and listed) to `path` (.svg or .png).
/// At most `max_services` services are drawn (those with the highest peak p99).
pub fn draw_timeline(t: &Timeline, path: &Path, max_services: usize) -> Result<()> {
    let services = pick_services(t, max_services.max(1));
    on_canvas!(path, (1500, 1300), |root| draw_timeline_on(
        &root, t, &services
    ))
}

/// One box or bar group of the sweep pictures: a policy (and override) within a scenario.
fn group_label(policy: &str, override_index: u32, n_overrides: usize) -> String {
    if n_overrides > 1 {
        format!("{policy} #{override_index}")
    } else {
        policy.to_string()
    }
}

fn grid_dims(n: usize) -> (usize, usize) {
    let cols = n.clamp(1, 3);
    (n.div_ceil(cols).max(1), cols)
}

fn draw_returns_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[EpisodeRow],
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(e2s)?;
    let (title, body) = root.split_vertically(40);
    title
        .draw_text(
            "Episode return by policy (box: quartiles, whiskers: 1.5 IQR)",
            &(FAMILY, 22).into_font().color(&BLACK),
            (16, 8),
        )
        .map_err(e2s)?;
    let mut by: BTreeMap<&str, BTreeMap<(String, u32), Vec<f64>>> = BTreeMap::new();
    let n_over = rows
        .iter()
        .map(|r| r.override_index)
        .collect::<BTreeSet<_>>()
        .len();
    for r in rows {
        if r.return_.is_finite() {
            by.entry(&r.scenario)
                .or_default()
                .entry((r.policy.clone(), r.override_index))
                .or_default()
                .push(r.return_);
        }
    }
    let (nr, nc) = grid_dims(by.len());
    let panels = body.split_evenly((nr, nc));
    let policies: BTreeSet<&str> = rows.iter().map(|r| r.policy.as_str()).collect();
    let pcolor = |p: &str| series_color(policies.iter().position(|x| *x == p).unwrap_or(0));
    for (panel, (scenario, groups)) in panels.iter().zip(&by) {
        let all: Vec<f64> = groups.values().flatten().copied().collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.08).max(0.5);
        let (lo, hi) = ((lo - pad) as f32, (hi + pad) as f32);
        let labels: Vec<String> = groups
            .keys()
            .map(|(p, o)| group_label(p, *o, n_over))
            .collect();
        let n = groups.len() as i32;
        let mut chart = ChartBuilder::on(panel)
            .margin(10)
            .caption(truncate(scenario, 44), (FAMILY, 17))
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n - 1).into_segmented(), lo..hi)
            .map_err(e2s)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .label_style((FAMILY, 13))
            .y_desc("return")
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels
                    .get(*i as usize)
                    .map(|s| truncate(s, 16))
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(e2s)?;
        for (i, ((policy, _), vals)) in groups.iter().enumerate() {
            let q = Quartiles::new(vals);
            chart
                .draw_series(std::iter::once(
                    Boxplot::new_vertical(SegmentValue::CenterOf(i as i32), &q)
                        .width(26)
                        .whisker_width(0.5)
                        .style(pcolor(policy).stroke_width(2)),
                ))
                .map_err(e2s)?;
        }
    }
    Ok(())
}

fn draw_recovery_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    summary: &[SummaryRow],
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(e2s)?;
    let (title, body) = root.split_vertically(40);
    title
        .draw_text(
            "Recovery rate by policy (error bars: 95% Wilson score CI)",
            &(FAMILY, 22).into_font().color(&BLACK),
            (16, 8),
        )
        .map_err(e2s)?;
    let mut by: BTreeMap<&str, Vec<&SummaryRow>> = BTreeMap::new();
    for s in summary {
        by.entry(&s.scenario).or_default().push(s);
    }
    let n_over = summary
        .iter()
        .map(|s| s.override_index)
        .collect::<BTreeSet<_>>()
        .len();
    let policies: BTreeSet<&str> = summary.iter().map(|s| s.policy.as_str()).collect();
    let pcolor = |p: &str| series_color(policies.iter().position(|x| *x == p).unwrap_or(0));
    let (nr, nc) = grid_dims(by.len());
    let panels = body.split_evenly((nr, nc));
    for (panel, (scenario, groups)) in panels.iter().zip(&by) {
        let labels: Vec<String> = groups
            .iter()
            .map(|s| group_label(&s.policy, s.override_index, n_over))
            .collect();
        let n = groups.len() as i32;
        let mut chart = ChartBuilder::on(panel)
            .margin(10)
            .caption(truncate(scenario, 44), (FAMILY, 17))
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0f64..1.05)
            .map_err(e2s)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .label_style((FAMILY, 13))
            .y_desc("recovered (share)")
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels
                    .get(*i as usize)
                    .map(|s| truncate(s, 16))
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(e2s)?;
        for (i, s) in groups.iter().enumerate() {
            let Some(r) = s.recovery else { continue };
            let c = pcolor(&s.policy);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(i as i32), 0.0),
                        (SegmentValue::Exact(i as i32 + 1), r.mean),
                    ],
                    c.mix(0.55).filled(),
                )))
                .map_err(e2s)?;
            // No error bar for a group without an interval (a single episode).
            let top = match r.interval() {
                Some((lo, hi)) => {
                    chart
                        .draw_series(std::iter::once(ErrorBar::new_vertical(
                            SegmentValue::CenterOf(i as i32),
                            lo,
                            r.mean,
                            hi,
                            BLACK.stroke_width(2),
                            14,
                        )))
                        .map_err(e2s)?;
                    hi
                }
                None => r.mean,
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{:.0}% (n={})", 100.0 * r.mean, s.episodes),
                    (SegmentValue::CenterOf(i as i32), (top + 0.015).min(1.05)),
                    (FAMILY, 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))
                .map_err(e2s)?;
        }
    }
    Ok(())
}

/// Draws the sweep pictures into `dir`: `returns.<ext>` (return distribution per policy, one
/// panel per scenario) and `recovery.<ext>` (recovery rate with its 95% Wilson score interval
/// as an error bar; none for a group of one episode, see [`crate::MeanCi`]) for each of
/// `formats`. Returns the files written.
pub fn draw_sweep(
    rows: &[EpisodeRow],
    summary: &[SummaryRow],
    dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| SweepError::io(dir, e))?;
    let scenarios = rows
        .iter()
        .map(|r| &r.scenario)
        .collect::<BTreeSet<_>>()
        .len();
    let (nr, nc) = grid_dims(scenarios);
    let size = (40 + 520 * nc as u32, 40 + 380 * nr as u32);
    let mut out = Vec::new();
    for f in formats {
        let ext = match f {
            Format::Svg => "svg",
            Format::Png => "png",
        };
        let p = dir.join(format!("returns.{ext}"));
        let r: Result<()> = on_canvas!(&p, size, |root| draw_returns_on(&root, rows));
        r?;
        out.push(p);
        let p = dir.join(format!("recovery.{ext}"));
        let r: Result<()> = on_canvas!(&p, size, |root| draw_recovery_on(&root, summary));
        r?;
        out.push(p);
    }
    Ok(out)
}
