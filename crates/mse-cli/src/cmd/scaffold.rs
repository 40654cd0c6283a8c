//! `mse scaffold NAME`: a new app folder in the seed's layout that deploys and tests as is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// App name: the folder created and `name` in mse.toml.
    pub name: String,
    /// Where to create the folder (default: the current folder).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

/// (path in the new folder, content, private): `{name}` is replaced by the app name.
const FILES: &[(&str, &str, bool)] = &[
    ("mse.toml", include_str!("scaffold/mse.toml"), false),
    ("secrets.json", include_str!("scaffold/secrets.json"), true),
    ("README.md", include_str!("scaffold/README.md"), false),
    (".gitignore", include_str!("scaffold/gitignore"), false),
    ("code/app.py", include_str!("scaffold/app.py"), false),
    (
        "code/requirements.txt",
        include_str!("scaffold/requirements.txt"),
        false,
    ),
    ("code/.mseignore", include_str!("scaffold/mseignore"), false),
    (
        "tests/conftest.py",
        include_str!("scaffold/conftest.py"),
        false,
    ),
    (
        "tests/test_app.py",
        include_str!("scaffold/test_app.py"),
        false,
    ),
];

impl Args {
    pub fn run(self, ui: Ui) -> anyhow::Result<ExitCode> {
        let name = self.name.trim();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            && name.len() <= 255;
        if !valid {
            bail!(
                "`{name}` is not a valid app name: use letters, digits, `_`, `.` and `-`, starting with a letter or digit"
            );
        }
        let root = self.dir.join(name);
        if root.exists() {
            bail!(
                "{} already exists: choose another name or remove it",
                root.display()
            );
        }
        write_project(&root, name)?;
        ui.success(&format!("created {}", root.display()));
        ui.info(&format!(
            "next:\n  cd {}\n  mse localtest    # run the app and its tests locally\n  mse deploy       # deploy it in a node",
            root.display()
        ));
        Ok(ExitCode::SUCCESS)
    }
}

fn write_project(root: &Path, name: &str) -> anyhow::Result<()> {
    for (rel, content, private) in FILES {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = content.replace("{name}", name);
        if *private {
            crate::state::write_private(&path, text.as_bytes())?;
        } else {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
