//! Terminal output. Results go to stdout (plain text or JSON); progress and diagnostics to
//! stderr: a spinner per step on a terminal, one plain line per step otherwise (CI, pipes).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use console::Style;
use indicatif::{ProgressBar, ProgressStyle};

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    Always,
    Never,
}

/// Output settings decided once in `main`.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    color: bool,
    /// stderr is a terminal: spinners instead of lines.
    live: bool,
}

impl Ui {
    pub fn new(choice: ColorChoice) -> Self {
        let live = std::io::stderr().is_terminal();
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => live && std::env::var_os("NO_COLOR").is_none(),
        };
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(color);
        Self { color, live }
    }

    /// Colours are on (for callers building their own styled text).
    pub fn color(&self) -> bool {
        self.color
    }

    fn mark(&self, colored: &str, plain: &str, style: Style) -> String {
        if self.color {
            style.apply_to(colored).to_string()
        } else {
            plain.to_owned()
        }
    }

    /// A progress step; finish it with [`Step::done`] (a dropped step reports failure).
    pub fn step(&self, what: &str) -> Step {
        let bar = if self.live {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
                bar.set_style(style);
            }
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        } else {
            eprintln!("{} {what}...", self.mark("•", "-", Style::new().dim()));
            None
        };
        Step {
            ui: *self,
            what: what.to_owned(),
            bar,
            start: Instant::now(),
            finished: false,
        }
    }

    pub fn info(&self, msg: &str) {
        eprintln!("{msg}");
    }

    pub fn warn(&self, msg: &str) {
        eprintln!(
            "{} {msg}",
            self.mark("warning:", "warning:", Style::new().yellow().bold())
        );
    }

    pub fn success(&self, msg: &str) {
        eprintln!(
            "{} {msg}",
            self.mark("✔", "ok:", Style::new().green().bold())
        );
    }

    pub fn error(&self, msg: &str) {
        eprintln!(
            "{} {msg}",
            self.mark("error:", "error:", Style::new().red().bold())
        );
    }

    /// Bold text for stdout results (URLs, commands to paste).
    pub fn strong(&self, text: &str) -> String {
        if self.color {
            Style::new().bold().apply_to(text).to_string()
        } else {
            text.to_owned()
        }
    }

    /// Ask a yes/no question on the terminal; `false` when there is no terminal to ask.
    pub fn confirm(&self, question: &str) -> bool {
        if !std::io::stdin().is_terminal() {
            return false;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }
}

/// One step of a long command.
pub struct Step {
    ui: Ui,
    what: String,
    bar: Option<ProgressBar>,
    start: Instant,
    finished: bool,
}

impl Step {
    /// Change the running message (e.g. a sub-phase).
    pub fn update(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{}: {msg}", self.what));
        }
    }

    /// The step succeeded; `detail` is shown after its name.
    pub fn done(mut self, detail: &str) {
        self.finished = true;
        let secs = self.start.elapsed().as_secs_f64();
        let mark = self.ui.mark("✔", "ok:", Style::new().green());
        let line = if detail.is_empty() {
            format!("{mark} {} ({secs:.1}s)", self.what)
        } else {
            format!("{mark} {}: {detail} ({secs:.1}s)", self.what)
        };
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!("{line}");
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if !self.finished {
            let mark = self.ui.mark("✘", "failed:", Style::new().red());
            eprintln!("{mark} {}", self.what);
        }
    }
}

/// One line of result on stdout; a closed pipe is an error the caller can map to exit 0.
pub fn out(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    Ok(())
}

/// Print a serialisable value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}
