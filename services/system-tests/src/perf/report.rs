//! The bench's report: one row per figure (its P-number, the platform's figure, the
//! baseline's, their ratio and the goal), written as `results.md` with a description of
//! the machine, and the latency distributions drawn as `latency.svg`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::Sizes;
use super::cpu::CpuRun;
use super::stats::Latencies;

/// One figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub p: &'static str,
    pub what: String,
    pub platform: String,
    pub baseline: String,
    /// The ratio (or the value) compared with the goal, as text.
    pub ratio: String,
    pub goal: String,
    /// Whether the goal is met; `None` for a row that has no goal (it explains another).
    pub met: Option<bool>,
}

impl Row {
    /// A ratio that should be at least `goal`.
    pub fn goal_at_least(
        p: &'static str,
        what: &str,
        platform: String,
        baseline: String,
        ratio: f64,
        goal: f64,
    ) -> Self {
        Self {
            goal: format!(">= {goal}"),
            met: Some(ratio >= goal),
            ..Self::info(p, what, platform, baseline, ratio)
        }
    }

    /// A value (a ratio when `unit` is empty) that should be at most `goal`.
    pub fn goal_at_most(
        p: &'static str,
        what: &str,
        platform: String,
        baseline: String,
        value: f64,
        goal: f64,
        unit: &str,
    ) -> Self {
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        Self {
            p,
            what: what.to_owned(),
            platform,
            baseline,
            ratio: format!("{value:.2}{unit}"),
            goal: format!("<= {goal}{unit}"),
            met: Some(value <= goal),
        }
    }

    /// A yes/no property.
    pub fn check(p: &'static str, what: &str, outcome: String, met: bool) -> Self {
        Self {
            p,
            what: what.to_owned(),
            platform: outcome,
            baseline: "-".into(),
            ratio: "-".into(),
            goal: "yes".into(),
            met: Some(met),
        }
    }

    /// A ratio without a goal, measured to explain another figure's.
    pub fn info(
        p: &'static str,
        what: &str,
        platform: String,
        baseline: String,
        ratio: f64,
    ) -> Self {
        Self {
            p,
            what: what.to_owned(),
            platform,
            baseline,
            ratio: format!("{ratio:.2}"),
            goal: "-".into(),
            met: None,
        }
    }
}

/// Two latency series drawn against each other.
#[derive(Debug, Clone)]
struct Plot {
    title: String,
    platform: Vec<Duration>,
    baseline: Vec<Duration>,
}

/// Every figure of one run.
#[derive(Debug, Clone)]
pub struct Report {
    sizes: Sizes,
    rows: Vec<Row>,
    plots: Vec<Plot>,
    cpu: Vec<CpuRun>,
}

impl Report {
    pub fn new(sizes: Sizes) -> Self {
        Self {
            sizes,
            rows: Vec::new(),
            plots: Vec::new(),
            cpu: Vec::new(),
        }
    }

    /// Each figure's CPU per operation, by process.
    pub fn cpu(&mut self, runs: Vec<CpuRun>) {
        self.cpu = runs;
    }

    pub fn push(&mut self, row: Row) {
        eprintln!(
            "  {} {}: {} | baseline {} | {} (goal {}){}",
            row.p,
            row.what,
            row.platform,
            row.baseline,
            row.ratio,
            row.goal,
            if row.met == Some(false) {
                "  NOT MET"
            } else {
                ""
            }
        );
        self.rows.push(row);
    }

    pub fn plot(&mut self, title: &str, platform: &Latencies, baseline: &Latencies) {
        self.plots.push(Plot {
            title: title.to_owned(),
            platform: platform.sorted(),
            baseline: baseline.sorted(),
        });
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The Markdown table, with the machine it ran on.
    pub fn markdown(&self, machine: &str) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "# kafka-cqrs bench\n");
        let _ = writeln!(
            text,
            "Release build; each figure next to a raw baseline measured in the same run on the same servers.\n"
        );
        let _ = writeln!(text, "Machine: {machine}\n");
        let _ = writeln!(text, "Sizes: {:?}\n", self.sizes);
        let _ = writeln!(
            text,
            "| P | figure | platform | baseline | ratio | goal | met |"
        );
        let _ = writeln!(text, "|---|---|---|---|---|---|---|");
        for row in &self.rows {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.p,
                row.what,
                row.platform,
                row.baseline,
                row.ratio,
                row.goal,
                match row.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "-",
                }
            );
        }
        let _ = writeln!(text, "\nLatency distributions: `latency.svg`.");
        self.cpu_table(&mut text);
        text
    }

    /// CPU time per operation of every process over each side of each figure: where a
    /// ratio's difference is spent when all processes share the machine's cores.
    fn cpu_table(&self, text: &mut String) {
        if self.cpu.is_empty() {
            return;
        }
        let mut processes: Vec<&str> = Vec::new();
        for run in &self.cpu {
            for (name, _) in &run.cpu {
                if !processes.contains(&name.as_str()) {
                    processes.push(name);
                }
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let _ = writeln!(
            text,
            "\n## CPU per operation\n\nMicroseconds of CPU (user + system) each process spent per operation over the measured runs of each side (P5: per delivery). `bound` is the rate {cores} cores would allow if that CPU were all that limited it; `used` is the share of the cores busy during the run.\n"
        );
        let _ = writeln!(
            text,
            "| run | operations | {} | total | bound | used |",
            processes.join(" | ")
        );
        let _ = writeln!(
            text,
            "|---|---|{}---|---|---|",
            "---|".repeat(processes.len())
        );
        for run in &self.cpu {
            let cells: Vec<String> = processes
                .iter()
                .map(|p| {
                    if run.cpu.iter().any(|(name, _)| name == p) {
                        format!("{:.1}", run.micros_per_op(p))
                    } else {
                        "-".to_owned()
                    }
                })
                .collect();
            let total = run.total_micros_per_op();
            let busy: f64 = run.cpu.iter().map(|(_, d)| d.as_secs_f64()).sum();
            let _ = writeln!(
                text,
                "| {} | {} | {} | {total:.1} | {:.0}/s | {:.0} % |",
                run.label,
                run.operations,
                cells.join(" | "),
                cores as f64 * 1e6 / total.max(1e-9),
                100.0 * busy / (cores as f64 * run.wall.as_secs_f64().max(1e-9)),
            );
        }
    }

    /// Writes `results.md` and `latency.svg` into `dir`.
    pub fn write(&self, dir: &Path, machine: &str) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("results.md"), self.markdown(machine))?;
        std::fs::write(dir.join("latency.svg"), self.svg())?;
        Ok(())
    }

    /// The cumulative distributions of each plot's two series, one panel per plot, on a
    /// logarithmic time axis.
    pub fn svg(&self) -> String {
        const WIDTH: f64 = 720.0;
        const PANEL: f64 = 300.0;
        const LEFT: f64 = 60.0;
        const TOP: f64 = 40.0;
        let height = PANEL * self.plots.len().max(1) as f64;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        for (i, plot) in self.plots.iter().enumerate() {
            let y0 = i as f64 * PANEL;
            let (w, h) = (WIDTH - LEFT - 20.0, PANEL - TOP - 40.0);
            let all = plot.platform.iter().chain(&plot.baseline);
            let lo = all
                .clone()
                .map(|d| d.as_secs_f64())
                .fold(f64::MAX, f64::min)
                .max(1e-5);
            let hi = all
                .map(|d| d.as_secs_f64())
                .fold(0.0, f64::max)
                .max(lo * 10.0);
            let (llo, lhi) = (lo.log10().floor(), hi.log10().ceil());
            let x = |seconds: f64| LEFT + (seconds.max(lo).log10() - llo) / (lhi - llo) * w;
            let y = |q: f64| y0 + TOP + (1.0 - q) * h;
            let _ = writeln!(
                svg,
                "<text x=\"{LEFT}\" y=\"{}\" font-size=\"14\">{}</text>",
                y0 + 20.0,
                escape(&plot.title)
            );
            let _ = writeln!(
                svg,
                "<rect x=\"{LEFT}\" y=\"{}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#999\"/>",
                y0 + TOP
            );
            let mut decade = llo;
            while decade <= lhi {
                let seconds = 10f64.powf(decade);
                let px = x(seconds);
                let _ = writeln!(
                    svg,
                    "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
                    y0 + TOP,
                    y0 + TOP + h
                );
                let _ = writeln!(
                    svg,
                    "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    y0 + TOP + h + 15.0,
                    label(seconds)
                );
                decade += 1.0;
            }
            for q in [0.5, 0.99] {
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">p{}</text>",
                    LEFT - 5.0,
                    y(q) + 4.0,
                    (q * 100.0) as u32
                );
            }
            for (series, colour, name, offset) in [
                (&plot.platform, "#d62728", "platform", 0.0),
                (&plot.baseline, "#1f77b4", "baseline", 90.0),
            ] {
                let points: Vec<String> = series
                    .iter()
                    .enumerate()
                    .map(|(k, d)| {
                        format!(
                            "{:.1},{:.1}",
                            x(d.as_secs_f64()),
                            y((k + 1) as f64 / series.len() as f64)
                        )
                    })
                    .collect();
                let _ = writeln!(
                    svg,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
                    points.join(" ")
                );
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{name}</text>",
                    LEFT + 10.0 + offset,
                    y0 + TOP + 15.0
                );
            }
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">latency (cumulative share of requests)</text>",
                LEFT + w / 2.0,
                y0 + TOP + h + 32.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn label(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.0} s")
    } else if seconds >= 1e-3 {
        format!("{:.0} ms", seconds * 1e3)
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_whether_their_goal_is_met() {
        let at_least = |ratio| Row::goal_at_least("P1", "x", "a".into(), "b".into(), ratio, 0.6);
        let at_most =
            |value| Row::goal_at_most("P5", "x", "a".into(), "-".into(), value, 16.0, "KiB");
        let met = |row: Row| row.met;
        assert_eq!(met(at_least(0.61)), Some(true));
        assert_eq!(met(at_least(0.59)), Some(false));
        assert_eq!(met(at_most(16.0)), Some(true));
        assert_eq!(met(at_most(17.0)), Some(false));
        assert_eq!(met(Row::info("P6", "x", "a".into(), "b".into(), 0.5)), None);
    }

    #[test]
    fn the_table_names_each_figure_and_the_memory_per_stream() {
        let mut report = Report::new(Sizes::SHORT);
        report.push(Row::goal_at_least(
            "P1",
            "commands/s",
            "900/s".into(),
            "1000/s".into(),
            0.9,
            0.6,
        ));
        report.push(Row::goal_at_most(
            "P5",
            "memory",
            "12.0 KiB per idle stream".into(),
            "-".into(),
            12.0,
            16.0,
            "KiB",
        ));
        report.push(Row::info(
            "P6",
            "reads/s vs a bare server",
            "700/s".into(),
            "1000/s".into(),
            0.7,
        ));
        let text = report.markdown("test machine");
        assert!(
            text.contains("| P1 | commands/s | 900/s | 1000/s | 0.90 | >= 0.6 | yes |"),
            "{text}"
        );
        assert!(text.contains("KiB per idle stream"), "{text}");
        assert!(
            text.contains("| P6 | reads/s vs a bare server | 700/s | 1000/s | 0.70 | - | - |"),
            "a row without a goal is neither met nor missed: {text}"
        );
        assert!(text.contains("Machine: test machine"));
    }

    #[test]
    fn the_cpu_table_charges_each_process_per_operation_and_marks_absent_ones() {
        let mut report = Report::new(Sizes::SHORT);
        let run = |label: &str, cpu: Vec<(&str, u64)>| CpuRun {
            label: label.into(),
            operations: 1000,
            wall: Duration::from_secs(1),
            cpu: cpu
                .into_iter()
                .map(|(name, ms)| (name.to_owned(), Duration::from_millis(ms)))
                .collect(),
        };
        report.cpu(vec![
            run("P6 baseline", vec![("client", 20), ("cassandra", 80)]),
            run(
                "P6 platform",
                vec![("client", 50), ("cassandra", 90), ("reader", 60)],
            ),
        ]);
        let text = report.markdown("test machine");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // 20 ms and 80 ms over 1,000 reads: 20 and 80 µs each; no reader on this side.
        let bound = cores as f64 * 1e6 / 100.0;
        assert!(
            text.contains(&format!(
                "| P6 baseline | 1000 | 20.0 | 80.0 | - | 100.0 | {bound:.0}/s |"
            )),
            "{text}"
        );
        assert!(
            text.contains("| P6 platform | 1000 | 50.0 | 90.0 | 60.0 | 200.0 |"),
            "{text}"
        );
    }

    #[test]
    fn the_plot_draws_both_series_of_each_panel() {
        let mut report = Report::new(Sizes::SHORT);
        let series =
            |ms: &[u64]| Latencies::new(ms.iter().map(|&m| Duration::from_millis(m)).collect());
        report.plot("P2", &series(&[1, 2, 3]), &series(&[1, 1, 2]));
        let svg = report.svg();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">P2<"));
    }
}
