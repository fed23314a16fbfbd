//! The result table: one row per figure, as a Markdown table so it can be
//! pasted into `docs/benchmarks.md`.

use crate::stats::Summary;

/// One printed figure.
pub struct Row {
    pub figure: String,
    pub backend: &'static str,
    pub value: Option<Summary>,
    pub unit: &'static str,
    pub floor: Option<Summary>,
    pub ratio: Option<Summary>,
    pub target: String,
    /// `Some(true)` met, `Some(false)` missed, `None` no target.
    pub met: Option<bool>,
}

impl Row {
    pub fn new(figure: impl Into<String>, backend: &'static str, value: Option<Summary>, unit: &'static str) -> Self {
        Self { figure: figure.into(), backend, value, unit, floor: None, ratio: None, target: String::new(), met: None }
    }

    pub fn floor(mut self, floor: Option<Summary>) -> Self {
        self.floor = floor;
        self
    }

    pub fn ratio(mut self, ratio: Option<Summary>) -> Self {
        self.ratio = ratio;
        self
    }

    /// Sets the target text and whether `check` holds for the value's median (or ratio's median when `on_ratio`).
    pub fn target(mut self, text: &str, on_ratio: bool, check: impl Fn(f64) -> bool) -> Self {
        let subject = if on_ratio { self.ratio } else { self.value };
        self.target = text.to_owned();
        self.met = subject.map(|summary| check(summary.median));
        self
    }
}

pub fn print(rows: &[Row]) {
    let header = ["Figure", "Backend", "Median (min–max)", "Floor median (min–max)", "Ratio median (min–max)", "Target", "Met"];
    let lines: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                row.figure.clone(),
                row.backend.to_owned(),
                format_summary(row.value, row.unit),
                format_summary(row.floor, row.unit),
                format_summary(row.ratio, ""),
                row.target.clone(),
                match row.met {
                    Some(true) => "yes".to_owned(),
                    Some(false) => "NO".to_owned(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let mut widths = header.map(|title| title.chars().count());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    print_line(&header.map(str::to_owned), &widths);
    println!("|{}|", widths.iter().map(|width| "-".repeat(width + 2)).collect::<Vec<_>>().join("|"));
    for line in &lines {
        print_line(line, &widths);
    }
}

fn print_line(cells: &[String; 7], widths: &[usize; 7]) {
    let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!(" {cell:<width$} ")).collect();
    println!("|{}|", padded.join("|"));
}

fn format_summary(summary: Option<Summary>, unit: &str) -> String {
    match summary {
        None => String::new(),
        Some(summary) => format!("{} ({}–{}){}", number(summary.median), number(summary.min), number(summary.max), unit),
    }
}

fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
