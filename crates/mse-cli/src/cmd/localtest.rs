//! `mse localtest`: run the app and its tests on this machine, without an enclave and without
//! encryption, in the same server and environment it gets when deployed: `mse-node --no-ssl`
//! on 127.0.0.1 with the seed's paths in a temporary folder; then the tests with pytest from a
//! runtime holding the app's requirements plus `tests_requirements`.
//!
//! Tests see `TEST_REMOTE_URL` (the app's base URL) and `TEST_SECRET_JSON` (the secrets file),
//! as with the original.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::NegativeVerdict;
use crate::config;
use crate::node::{self, Storage};
use crate::runtime::{self, Base};
use crate::ui::{self, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, default_value = config::DEFAULT_FILE)]
    pub path: PathBuf,
    /// Start the app and keep it running (Ctrl-C stops it) instead of running the tests.
    #[arg(long)]
    pub no_tests: bool,
    /// The node binary (default: $MSE_NODE, else mse-node next to mse, else on PATH).
    #[arg(long)]
    pub node: Option<PathBuf>,
    /// Port on 127.0.0.1 (default: a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Seconds to wait for the app's healthcheck.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Run the node without its sandbox (hosts that cannot provide it).
    #[arg(long)]
    pub insecure_no_sandbox: bool,
}

impl Args {
    pub fn run(self, ui: Ui) -> anyhow::Result<ExitCode> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        rt.block_on(self.localtest(ui))
    }

    async fn localtest(self, ui: Ui) -> anyhow::Result<ExitCode> {
        let step = ui.step("Checking the configuration");
        let mut parsed = config::parse_file(&self.path)?;
        // No certificate here: the app is served over plain HTTP on 127.0.0.1.
        parsed.ssl = None;
        let conf = config::check(parsed, time::OffsetDateTime::now_utc())?;
        step.done(&conf.parsed.name);

        let node_binary = node::find_node_binary(self.node.as_deref())?;
        let linked = node::linked_python(&node_binary)?;
        let interpreter = runtime::find_interpreter(linked.as_ref())?;
        let (base, note) = Base::from_docker(conf.parsed.docker.as_deref());
        if let Some(note) = note {
            ui.warn(&note);
        }
        let requirements = conf.parsed.code_dir.join("requirements.txt");
        let requirements = requirements.is_file().then_some(requirements);
        let cache = runtime::cache_dir()?;

        let step = ui.step("Preparing the Python runtime");
        let app_spec = runtime::Spec {
            interpreter: &interpreter,
            base,
            requirements: requirements.as_deref(),
            extra: &[],
        };
        let app_rt = runtime::ensure(&app_spec, &cache, &|m| step.update(m))?;
        step.done(&format!(
            "{} base{}",
            app_rt.base,
            if app_rt.reused { ", cached" } else { "" }
        ));

        let tests_rt = if self.no_tests {
            None
        } else {
            let step = ui.step("Preparing the test runtime");
            let mut extra = conf.parsed.tests.requirements.clone();
            if conf.parsed.tests.cmd == "pytest"
                && !extra.iter().any(|r| r.trim_start().starts_with("pytest"))
            {
                extra.push("pytest".into());
            }
            let spec = runtime::Spec {
                interpreter: &interpreter,
                base,
                requirements: requirements.as_deref(),
                extra: &extra,
            };
            let rt = runtime::ensure(&spec, &cache, &|m| step.update(m))?;
            step.done(if rt.reused { "cached" } else { "" });
            Some(rt)
        };

        // Plain copy of what would be shipped (same .mseignore), in a private temporary folder.
        let work = tempfile::Builder::new()
            .prefix("mse-localtest-")
            .tempdir()
            .context("creating a temporary folder")?;
        crate::state::private_dir(work.path())?;
        let app_dir = work.path().join("app");
        copy_shipped(&conf.parsed.code_dir, &app_dir, &conf.ignore)?;
        let storage = Storage {
            root: work.path().join("storage"),
        };
        let port = match self.port {
            Some(p) => p,
            None => node::free_port()?,
        };
        let id = uuid::Uuid::new_v4();
        let mut node_args: Vec<String> = vec![
            "--no-ssl".into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--app-dir".into(),
            app_dir.to_string_lossy().into_owned(),
            "--id".into(),
            id.to_string(),
            "--tee".into(),
            "sim".into(),
            "--site-packages".into(),
            app_rt.site_packages.to_string_lossy().into_owned(),
        ];
        if self.insecure_no_sandbox {
            node_args.push("--insecure-no-sandbox".into());
        }
        node_args.push(conf.parsed.app.to_string());

        let step = ui.step("Starting the app");
        let log = work.path().join("node.log");
        let mut supervised = node::spawn_supervised(&node::Launch {
            node_binary: &node_binary,
            args: &node_args,
            storage: &storage,
            sim_dir: &node::sim_dir()?,
            state_dir: work.path(),
            log_file: &log,
            lifetime: None,
            cpus: None,
        })?;
        let deadline = Instant::now() + Duration::from_secs(self.timeout);
        let started = async {
            // The configuration server speaks RA-TLS even in --no-ssl mode; nothing secret is
            // at stake locally, so the certificate is taken as served.
            let der = loop {
                if supervised.has_exited() {
                    bail!("the node stopped:\n{}", node::log_tail(&log, 20));
                }
                match mse_client::fetch_certificate_within(
                    "127.0.0.1",
                    port,
                    Duration::from_secs(2),
                )
                .await
                {
                    Ok(der) => break der,
                    Err(e) if Instant::now() >= deadline => {
                        return Err(anyhow::Error::new(e).context("the node did not start in time"));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            let client = mse_client::NodeClient::new(&format!("https://127.0.0.1:{port}"), &der)?;
            let payload = mse_client::ConfigurationPayload {
                uuid: id,
                app_secrets: conf.secrets.as_ref().map(|s| s.value.clone()),
                ..Default::default()
            };
            client
                .configure(&payload)
                .await
                .context("configuring the local node")?;
            supervised.release()?;
            loop {
                if let Ok(status) = http_status(port, &conf.parsed.healthcheck)
                    && status != 503
                {
                    break;
                }
                if supervised.has_exited() {
                    bail!("the app stopped:\n{}", node::log_tail(&log, 30));
                }
                if Instant::now() >= deadline {
                    bail!(
                        "{} did not answer in {} s:\n{}",
                        conf.parsed.healthcheck,
                        self.timeout,
                        node::log_tail(&log, 30)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        };
        let result = tokio::select! {
            r = started => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        if let Err(e) = result {
            drop(step);
            supervised.stop(Duration::from_secs(10));
            return Err(e);
        }
        let url = format!("http://127.0.0.1:{port}");
        step.done(&url);

        let outcome = match &tests_rt {
            None => {
                ui::out(&format!(
                    "The app runs at {url} (log: {}). Ctrl-C stops it.",
                    log.display()
                ))?;
                let _ = tokio::signal::ctrl_c().await;
                Ok(ExitCode::SUCCESS)
            }
            Some(rt) => run_tests(ui, rt, &conf, &url, work.path()),
        };
        supervised.stop(Duration::from_secs(10));
        outcome
    }
}

/// `python -m <tests_cmd> <tests dir>` from the test runtime, in the tests' folder.
fn run_tests(
    ui: Ui,
    rt: &runtime::Runtime,
    conf: &config::DeployConfig,
    url: &str,
    work: &Path,
) -> anyhow::Result<ExitCode> {
    let dir = &conf.parsed.tests.dir;
    if !dir.is_dir() {
        bail!(
            "no tests folder at {}: create it, or run `mse localtest --no-tests`",
            dir.display()
        );
    }
    let mut parts = conf.parsed.tests.cmd.split_whitespace();
    let module = parts.next().context("tests_cmd is empty")?;
    ui.info(&format!(
        "Running `{}` in {}",
        conf.parsed.tests.cmd,
        dir.display()
    ));
    let mut cmd = Command::new(&rt.python);
    cmd.arg("-m").arg(module).args(parts).current_dir(dir);
    cmd.env("TEST_REMOTE_URL", url);
    // pytest's cache would land in the tests folder; keep the user's tree clean.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    if module == "pytest" {
        cmd.arg("-p").arg("no:cacheprovider");
    }
    if let Some(s) = &conf.secrets {
        cmd.env("TEST_SECRET_JSON", &s.path);
    }
    cmd.env("TMPDIR", work);
    let status = cmd
        .status()
        .with_context(|| format!("running {}", conf.parsed.tests.cmd))?;
    if status.success() {
        ui.success("tests passed");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(NegativeVerdict(format!("the tests failed ({status})")).into())
    }
}

/// Copy the files `.mseignore` lets through (and no hidden ones), as deploy would ship them.
fn copy_shipped(src: &Path, dst: &Path, ignore: &[String]) -> anyhow::Result<()> {
    let set = mse_crypto::ignore::IgnoreSet::new(ignore);
    let walk = walkdir::WalkDir::new(src)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_name().to_string_lossy().starts_with('.')
                    || set.is_ignored(e.file_name()))
        });
    for entry in walk {
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        let rel = entry
            .path()
            .strip_prefix(src)
            .context("walking the code folder")?;
        let to = dst.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &to)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Status code of `GET path` over plain HTTP/1.0 on 127.0.0.1.
fn http_status(port: u16, path: &str) -> anyhow::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code = line.split_whitespace().nth(1).context("no status line")?;
    Ok(code.parse()?)
}
