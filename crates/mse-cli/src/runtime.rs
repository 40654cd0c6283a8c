//! Python runtimes: one virtual environment per (base, requirements, interpreter), built with the
//! interpreter the node embeds, cached by digest and reused.
//!
//! The base replaces the original's Docker image: `docker = "ghcr.io/cosmian/mse-flask:…"`
//! selects the `flask` base, `mse-fastapi` the `fastapi` base, any other image the `plain` base
//! (the app's requirements.txt only). Without `docker`, the base is `flask`, the seed's framework.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};

use crate::node::LinkedPython;

/// Bump when the layout of a runtime folder changes: old caches are then ignored.
const LAYOUT_VERSION: &str = "mse-runtime v1";
const META_FILE: &str = "mse-runtime.json";

/// The Python interpreter runtimes are built with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Interpreter {
    pub executable: PathBuf,
    /// `major.minor.micro`.
    pub version: String,
    /// How it was found (shown to the user).
    pub found_by: String,
}

/// Find the interpreter the node embeds: `$MSE_PYTHON`; else the libpython the node binary
/// links (its RUNPATH `…/lib` → `…/bin/python3.X`); else `$PYO3_PYTHON`; else `python3`.
/// When the node binary names a libpython version, the interpreter must have the same one.
pub fn find_interpreter(linked: Option<&LinkedPython>) -> anyhow::Result<Interpreter> {
    let mut candidates: Vec<(PathBuf, String)> = Vec::new();
    if let Some(p) = std::env::var_os("MSE_PYTHON").filter(|p| !p.is_empty()) {
        candidates.push((PathBuf::from(p), "$MSE_PYTHON".into()));
    }
    if let Some(lib) = linked {
        for dir in &lib.search_dirs {
            for name in [format!("python{}", lib.version), "python3".into()] {
                let exe = dir.join("..").join("bin").join(name);
                if exe.is_file() {
                    candidates.push((exe, format!("libpython{} linked by the node", lib.version)));
                }
            }
        }
    }
    if let Some(p) = std::env::var_os("PYO3_PYTHON").filter(|p| !p.is_empty()) {
        candidates.push((PathBuf::from(p), "$PYO3_PYTHON".into()));
    }
    candidates.push((PathBuf::from("python3"), "python3 on PATH".into()));

    let mut rejected = Vec::new();
    for (exe, found_by) in candidates {
        match probe(&exe) {
            Ok(version) => {
                if let Some(lib) = linked
                    && minor_version(&version) != lib.version
                {
                    rejected.push(format!(
                        "{} ({found_by}) is Python {version}, the node embeds {}",
                        exe.display(),
                        lib.version
                    ));
                    continue;
                }
                // A normalised path: it names the runtime in the cache key.
                let executable = exe.canonicalize().unwrap_or(exe);
                return Ok(Interpreter {
                    executable,
                    version,
                    found_by,
                });
            }
            Err(e) => rejected.push(format!("{} ({found_by}): {e:#}", exe.display())),
        }
    }
    bail!(
        "no usable Python interpreter for the app runtime:\n  {}\nfix: set MSE_PYTHON to the python3 executable whose libpython the node embeds",
        rejected.join("\n  ")
    )
}

/// Run the interpreter once: it must start and report its version.
fn probe(exe: &Path) -> anyhow::Result<String> {
    let out = Command::new(exe)
        .args([
            "-I",
            "-c",
            "import sys; print('%d.%d.%d' % sys.version_info[:3])",
        ])
        .stdin(Stdio::null())
        .output()
        .context("cannot run it")?;
    if !out.status.success() {
        bail!("it exits with {}", out.status);
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !version.starts_with("3.") {
        bail!("it reports version `{version}`, not Python 3");
    }
    Ok(version)
}

/// The runtime a base image name selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// Flask 3 (the seed's framework); the default.
    Flask,
    /// FastAPI (ASGI).
    Fastapi,
    /// Nothing but the app's requirements.txt.
    Plain,
}

impl Base {
    /// Map the configuration's `docker` image to a base. Returns a note when the image is not
    /// one of the original's, so the user learns what was chosen.
    pub fn from_docker(image: Option<&str>) -> (Base, Option<String>) {
        let Some(image) = image else {
            return (Base::Flask, None);
        };
        let last = image.rsplit('/').next().unwrap_or(image);
        let repo = last.split(['@', ':']).next().unwrap_or(last);
        match repo {
            "mse-flask" => (Base::Flask, None),
            "mse-fastapi" => (Base::Fastapi, None),
            "mse-base" | "mse-docker-base" | "cenclave-base" => (Base::Plain, None),
            _ => (
                Base::Plain,
                Some(format!(
                    "docker image `{image}` is not an mse base image; using the plain runtime (requirements.txt only)"
                )),
            ),
        }
    }

    /// Packages installed before the app's requirements.txt.
    pub fn requirements(self) -> &'static [&'static str] {
        match self {
            Base::Flask => &["flask==3.1.3", "werkzeug==3.1.9"],
            Base::Fastapi => &["fastapi==0.165.0"],
            Base::Plain => &[],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Base::Flask => "flask",
            Base::Fastapi => "fastapi",
            Base::Plain => "plain",
        }
    }
}

/// A built runtime.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Runtime {
    /// The venv folder.
    pub dir: PathBuf,
    /// Hex digest of the inputs: names the folder.
    pub key: String,
    pub base: String,
    pub python_version: String,
    /// `<dir>/lib/python3.X/site-packages`.
    pub site_packages: PathBuf,
    /// The venv's interpreter (`bin/python`), for tools run against the runtime (pytest).
    pub python: PathBuf,
    #[serde(skip)]
    pub reused: bool,
}

/// What a runtime is built from.
pub struct Spec<'a> {
    pub interpreter: &'a Interpreter,
    pub base: Base,
    /// The app's requirements.txt, if any.
    pub requirements: Option<&'a Path>,
    /// Extra packages (the tests' requirements, for `localtest`).
    pub extra: &'a [String],
}

/// The file-digest cache of the runtimes and node binaries this client measures (see
/// `mse_measure::DigestCache`): a second deploy reads only the files that changed.
pub fn digest_cache() -> anyhow::Result<mse_measure::DigestCache> {
    Ok(mse_measure::DigestCache::open(
        &cache_dir()?.join("digest-cache"),
    ))
}

/// Saves the digest cache; a failure only costs time at the next deploy, so it is a warning.
pub fn save_digest_cache(cache: &mut mse_measure::DigestCache) {
    if let Err(e) = cache.save() {
        tracing::warn!(
            "cannot save the digest cache: {e}; the next deploy hashes the runtime again"
        );
    }
}

/// `$MSE_CACHE_DIR`, else `$XDG_CACHE_HOME/mse`, else `~/.cache/mse`.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("MSE_CACHE_DIR").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p).join("mse"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("HOME is not set: set MSE_CACHE_DIR")?;
    Ok(PathBuf::from(home).join(".cache").join("mse"))
}

/// The digest naming a runtime: every input that changes what gets installed.
pub fn key(spec: &Spec<'_>) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field("layout", LAYOUT_VERSION.as_bytes());
    field(
        "interpreter",
        spec.interpreter.executable.to_string_lossy().as_bytes(),
    );
    field("python-version", spec.interpreter.version.as_bytes());
    field("base", spec.base.name().as_bytes());
    for r in spec.base.requirements() {
        field("base-requirement", r.as_bytes());
    }
    if let Some(path) = spec.requirements {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        field("requirements.txt", &bytes);
    }
    for r in spec.extra {
        field("extra", r.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// Build the runtime of `spec` under `cache`, or reuse the one with the same digest.
pub fn ensure(spec: &Spec<'_>, cache: &Path, progress: &dyn Fn(&str)) -> anyhow::Result<Runtime> {
    let key = key(spec)?;
    let root = cache.join("runtimes");
    crate::state::private_dir(&root)?;
    let dir = root.join(&key);
    if let Some(rt) = load(&dir)? {
        return Ok(Runtime { reused: true, ..rt });
    }

    let build = root.join(format!(".build-{key}-{}", std::process::id()));
    let log_path = root.join(format!("{key}.pip.log"));
    if build.exists() {
        std::fs::remove_dir_all(&build).with_context(|| format!("removing {}", build.display()))?;
    }
    let result = build_into(spec, &build, &log_path, progress);
    let built = match result {
        Ok(()) => build,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&build);
            return Err(e);
        }
    };
    let minor = minor_version(&spec.interpreter.version);
    let rt = Runtime {
        site_packages: dir
            .join("lib")
            .join(format!("python{minor}"))
            .join("site-packages"),
        python: dir.join("bin").join("python"),
        dir: dir.clone(),
        key: key.clone(),
        base: spec.base.name().into(),
        python_version: spec.interpreter.version.clone(),
        reused: false,
    };
    std::fs::write(built.join(META_FILE), serde_json::to_vec_pretty(&rt)?)?;
    // Another `mse` may have finished the same runtime meanwhile: theirs is as good as ours.
    if let Err(e) = std::fs::rename(&built, &dir) {
        let _ = std::fs::remove_dir_all(&built);
        if load(&dir)?.is_none() {
            return Err(e).with_context(|| format!("moving the runtime into {}", dir.display()));
        }
    }
    Ok(rt)
}

fn minor_version(version: &str) -> &str {
    version
        .rsplit_once('.')
        .map(|(mm, _)| mm)
        .unwrap_or(version)
}

/// A complete runtime at `dir`, if there is one.
fn load(dir: &Path) -> anyhow::Result<Option<Runtime>> {
    let meta = dir.join(META_FILE);
    match std::fs::read(&meta) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)
            .ok()
            .filter(|rt: &Runtime| rt.site_packages.is_dir())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", meta.display())),
    }
}

fn build_into(
    spec: &Spec<'_>,
    build: &Path,
    log_path: &Path,
    progress: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let py = &spec.interpreter.executable;
    let mut log = std::fs::File::create(log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    // The interpreter's own pip installs into the venv (`pip --python`), so the runtime holds
    // only the app's packages; without pip there, the venv gets its own.
    let host_pip = Command::new(py)
        .args(["-m", "pip", "--version"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    progress("creating the virtual environment");
    let mut venv = Command::new(py);
    venv.args(["-m", "venv"]);
    if host_pip {
        venv.arg("--without-pip");
    }
    venv.arg(build);
    run_logged(&mut venv, &mut log, "python -m venv")?;

    let venv_python = build.join("bin").join("python");
    let mut packages: Vec<String> = spec
        .base
        .requirements()
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    packages.extend(spec.extra.iter().cloned());
    if packages.is_empty() && spec.requirements.is_none() {
        return Ok(());
    }
    progress("installing packages with pip");
    let mut pip = if host_pip {
        let mut c = Command::new(py);
        c.args(["-m", "pip", "--python"]).arg(&venv_python);
        c
    } else {
        let mut c = Command::new(&venv_python);
        c.args(["-m", "pip"]);
        c
    };
    pip.args([
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-warn-script-location",
    ]);
    pip.args(&packages);
    if let Some(req) = spec.requirements {
        pip.arg("-r").arg(req);
    }
    pip.env("PIP_REQUIRE_VIRTUALENV", "0");
    run_logged(&mut pip, &mut log, "pip install").map_err(|e| {
        let tail = tail_lines(log_path, 15);
        anyhow::anyhow!(
            "{e}\n{tail}\nfix: check the package names and versions in {} (full pip log: {})",
            spec.requirements
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the base requirements".into()),
            log_path.display()
        )
    })?;
    Ok(())
}

fn run_logged(cmd: &mut Command, log: &mut std::fs::File, what: &str) -> anyhow::Result<()> {
    let _ = writeln!(log, "$ {cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    let _ = log.write_all(&out.stdout);
    let _ = log.write_all(&out.stderr);
    if !out.status.success() {
        bail!("{what} failed ({})", out.status);
    }
    Ok(())
}

fn tail_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_image_names_select_the_base() {
        assert_eq!(
            Base::from_docker(Some("ghcr.io/cosmian/mse-flask:20230124182826")).0,
            Base::Flask
        );
        assert_eq!(
            Base::from_docker(Some("ghcr.io/cosmian/mse-fastapi:1")).0,
            Base::Fastapi
        );
        assert_eq!(
            Base::from_docker(Some("ghcr.io/cosmian/mse-base:20230720095554")).0,
            Base::Plain
        );
        let (base, note) = Base::from_docker(Some("python:3.11"));
        assert_eq!(base, Base::Plain);
        assert!(note.is_some());
        assert_eq!(Base::from_docker(None), (Base::Flask, None));
    }

    #[test]
    fn the_key_changes_with_every_input() {
        let dir = tempfile::tempdir().unwrap();
        let req = dir.path().join("requirements.txt");
        std::fs::write(&req, "requests==2.34.2\n").unwrap();
        let interp = Interpreter {
            executable: "/py".into(),
            version: "3.11.7".into(),
            found_by: String::new(),
        };
        let k = |base, req: Option<&Path>, extra: &[String]| {
            key(&Spec {
                interpreter: &interp,
                base,
                requirements: req,
                extra,
            })
            .unwrap()
        };
        let a = k(Base::Flask, Some(&req), &[]);
        assert_eq!(a, k(Base::Flask, Some(&req), &[]));
        assert_ne!(a, k(Base::Plain, Some(&req), &[]));
        assert_ne!(a, k(Base::Flask, None, &[]));
        assert_ne!(a, k(Base::Flask, Some(&req), &["pytest".into()]));
        std::fs::write(&req, "requests==2.34.1\n").unwrap();
        assert_ne!(a, k(Base::Flask, Some(&req), &[]));
        let other = Interpreter {
            version: "3.11.8".into(),
            ..interp.clone()
        };
        assert_ne!(
            a,
            key(&Spec {
                interpreter: &other,
                base: Base::Flask,
                requirements: None,
                extra: &[]
            })
            .unwrap()
        );
    }
}
