//! `mse logs NAME [-f]`: the node's log (its stdout and stderr, plus the supervisor's lines).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::state::Home;
use crate::ui::{self, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The deployment (`name` in mse.toml).
    pub name: String,
    /// Keep printing new lines until the node stops (or Ctrl-C).
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long)]
    pub lines: Option<usize>,
    /// One JSON string per line (JSON Lines), for scripts.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    pub fn run(self, _ui: Ui) -> anyhow::Result<ExitCode> {
        let dep = Home::open()?.deployment(&self.name)?;
        if !dep.exists() {
            bail!("no deployment named `{}` (see `mse list`)", self.name);
        }
        let path = dep.log_path();
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        // The app writes what it likes: bytes that are not UTF-8 are shown replaced, not fatal.
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let start = self.lines.map_or(0, |n| lines.len().saturating_sub(n));
        for line in &lines[start..] {
            self.emit(line)?;
        }
        if !self.follow {
            return Ok(ExitCode::SUCCESS);
        }
        let mut pos = file.stream_position()?;
        // Bytes, split at newlines before decoding: a read may end inside a character.
        let mut partial: Vec<u8> = Vec::new();
        loop {
            let running = super::list::summarize(&dep).running;
            file.seek(SeekFrom::Start(pos))?;
            let mut more = Vec::new();
            let n = file
                .read_to_end(&mut more)
                .with_context(|| format!("reading {}", path.display()))?;
            pos += n as u64;
            partial.extend_from_slice(&more);
            while let Some(i) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=i).collect();
                self.emit(String::from_utf8_lossy(&line[..i]).as_ref())?;
            }
            if !running && n == 0 {
                if !partial.is_empty() {
                    self.emit(String::from_utf8_lossy(&partial).as_ref())?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn emit(&self, line: &str) -> anyhow::Result<()> {
        if self.json {
            ui::out(&serde_json::to_string(line)?)
        } else {
            ui::out(line)
        }
    }
}
