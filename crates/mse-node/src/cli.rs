//! Command line: the original bootstrap's flags, plus the TEE backend and the resource limits.
//!
//! Every argument is part of the measured launch (argv feeds the simulated measurement, and the
//! Gramine manifest in SGX), so parsing is strict: a value we would not honour exactly is an error.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Parser, ValueEnum};
use uuid::Uuid;

use crate::identity::subject::{self, Subject};

/// Python worker threads when `--threads` is not given (the measured sweet spot, rust-stack.md §3.3).
pub const DEFAULT_THREADS: u16 = 8;
/// Lifetime of the RA-TLS certificate in the modes where it only protects the configuration server.
const NON_RATLS_CERT_LIFETIME: Duration = Duration::from_secs(10 * 3600);

#[derive(Debug, Parser)]
#[command(
    name = "mse-node",
    version,
    about = "Run a Python web app inside a TEE: attest, receive its keys and secrets, serve it over HTTPS.",
    group(ArgGroup::new("ssl").required(true).args(["ratls", "certificate", "no_ssl"]))
)]
pub struct Cli {
    /// Serve the app with the RA-TLS certificate, valid until this Unix time (seconds).
    #[arg(long, value_name = "EXPIRATION")]
    pub ratls: Option<i64>,

    /// Serve the app with the owner's certificate chain (PEM); its private key arrives in the
    /// configuration payload (`ssl_private_key`).
    #[arg(long, value_name = "PATH")]
    pub certificate: Option<PathBuf>,

    /// Serve the app over plain HTTP (behind a TLS-terminating proxy). The configuration server
    /// still uses RA-TLS.
    #[arg(long)]
    pub no_ssl: bool,

    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,

    /// Port of the configuration server and then of the app.
    #[arg(long, default_value_t = 443)]
    pub port: u16,

    /// Subject of the RA-TLS certificate, RFC 4514 (e.g. "CN=localhost,O=My Company,C=FR").
    #[arg(long, value_name = "RFC4514")]
    pub subject: Option<String>,

    /// Subject alternative name of the RA-TLS certificate: an IP address or a DNS name.
    #[arg(long, default_value = "localhost")]
    pub san: String,

    /// Directory holding the app's code as shipped (encrypted `*.enc` files, or clear code).
    #[arg(long, value_name = "DIR")]
    pub app_dir: PathBuf,

    /// The app's UUID; a configuration payload for another id is refused.
    #[arg(long, value_name = "UUID")]
    pub id: Uuid,

    /// Stop waiting for the configuration after this many seconds and start clear code without
    /// secrets.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,

    /// Log at debug level. The simulated quote then says "debug enclave", as debug logs can leak.
    #[arg(long)]
    pub debug: bool,

    /// Accepted for compatibility with the original bootstrap, which ignores it too.
    #[arg(long, hide = true)]
    pub plaincode: bool,

    /// Where the quote comes from. `auto` probes Gramine then configfs-tsm, and falls back to the
    /// simulation with a loud warning (a verifier's default policy refuses simulated quotes).
    #[arg(long, value_enum, default_value_t = TeeArg::Auto)]
    pub tee: TeeArg,

    /// Python `site-packages` directories of the runtime (the app's dependencies), measured.
    #[arg(
        long = "site-packages",
        value_name = "DIR",
        env = "MSE_SITE_PACKAGES",
        value_delimiter = ':'
    )]
    pub site_packages: Vec<PathBuf>,

    /// Python worker threads serving requests.
    #[arg(long, default_value_t = DEFAULT_THREADS, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,

    /// Event loop of an ASGI app: uvloop when the runtime has it (auto), or the one named.
    #[arg(long = "loop", value_name = "LOOP", value_enum, default_value_t = LoopArg::Auto)]
    pub event_loop: LoopArg,

    /// Memory limit of the node process (address space), e.g. 4G or 512M.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,

    /// Quota of the app's writable storage (HOME, TMP_PATH, ...), e.g. 10G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "10G")]
    pub storage_quota: u64,

    /// Run without the sandbox (private RAM storage, Landlock, seccomp): for development on hosts
    /// that cannot provide it. Measured like every argument, so a verifier can refuse it.
    #[arg(long)]
    pub insecure_no_sandbox: bool,

    /// The app: `module:variable`, imported from MODULE_PATH (e.g. `app:app`).
    #[arg(value_name = "MODULE:VARIABLE", value_parser = parse_application)]
    pub application: Application,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TeeArg {
    Auto,
    Sim,
    Gramine,
    Tsm,
}

/// `--loop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoopArg {
    Auto,
    Asyncio,
    Uvloop,
}

impl From<LoopArg> for mse_python::EventLoop {
    fn from(l: LoopArg) -> Self {
        match l {
            LoopArg::Auto => Self::Auto,
            LoopArg::Asyncio => Self::Asyncio,
            LoopArg::Uvloop => Self::Uvloop,
        }
    }
}

impl From<TeeArg> for mse_tee::Choice {
    fn from(t: TeeArg) -> Self {
        match t {
            TeeArg::Auto => mse_tee::Choice::Auto,
            TeeArg::Sim => mse_tee::Choice::Sim,
            TeeArg::Gramine => mse_tee::Choice::Gramine,
            TeeArg::Tsm => mse_tee::Choice::Tsm,
        }
    }
}

/// `module:variable`, checked to be importable names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub module: String,
    pub variable: String,
}

impl std::fmt::Display for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.module, self.variable)
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn parse_application(s: &str) -> std::result::Result<Application, String> {
    let hint =
        "expected MODULE:VARIABLE such as `app:app` (a dotted module path and a variable name)";
    let (module, variable) = s.split_once(':').ok_or_else(|| format!("`{s}`: {hint}"))?;
    if !module.split('.').all(is_identifier) || !is_identifier(variable) {
        return Err(format!("`{s}`: {hint}"));
    }
    Ok(Application {
        module: module.to_owned(),
        variable: variable.to_owned(),
    })
}

/// Sizes as `4096M`, `4G`, `512K` or a plain byte count (binary multiples, like Gramine's).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let hint = "expected a size such as 512M, 4G or a number of bytes";
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 10),
        Some((i, 'M' | 'm')) => (&t[..i], 20),
        Some((i, 'G' | 'g')) => (&t[..i], 30),
        Some((i, 'T' | 't')) => (&t[..i], 40),
        _ => (t, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("`{s}`: {hint}"))?;
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or_else(|| format!("`{s}`: too large"))?;
    if bytes == 0 {
        return Err(format!("`{s}`: must not be zero"));
    }
    Ok(bytes)
}

/// How the app is served once configured (§2.6 of the protocol notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslMode {
    /// The RA-TLS certificate serves both the configuration server and the app.
    RaTls,
    /// The owner's chain (read at start, checked against the key received later).
    Certificate(PathBuf),
    /// Plain HTTP for the app.
    NoSsl,
}

impl SslMode {
    pub fn name(&self) -> &'static str {
        match self {
            SslMode::RaTls => "RATLS_CERTIFICATE",
            SslMode::Certificate(_) => "CUSTOM_CERTIFICATE",
            SslMode::NoSsl => "NO_SSL",
        }
    }
}

/// Everything the node needs from its command line, validated.
#[derive(Debug)]
pub struct Launch {
    pub ssl: SslMode,
    pub host: String,
    pub port: u16,
    pub subject: Subject,
    pub san: San,
    /// Last instant the RA-TLS certificate is valid.
    pub expiration: SystemTime,
    pub app_dir: PathBuf,
    pub id: Uuid,
    pub timeout: Option<Duration>,
    pub debug: bool,
    pub tee: TeeArg,
    pub site_packages: Vec<PathBuf>,
    pub threads: usize,
    pub event_loop: mse_python::EventLoop,
    pub memory: Option<u64>,
    pub storage_quota: u64,
    pub sandbox: bool,
    pub application: Application,
    /// argv[1..] verbatim: part of the measurement.
    pub args: Vec<String>,
}

/// The certificate's single subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Ip(IpAddr),
    Dns(String),
}

impl San {
    pub fn parse(s: &str) -> Result<Self> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let valid = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*' || b == b'_')
            });
        if !valid {
            bail!(
                "--san `{s}`: not an IP address nor a DNS name; pass e.g. --san localhost or --san 127.0.0.1"
            );
        }
        Ok(San::Dns(s.to_owned()))
    }
}

impl Cli {
    /// Checks what clap cannot and derives the launch settings. `args` is argv[1..].
    pub fn into_launch(self, args: Vec<String>, now: SystemTime) -> Result<Launch> {
        let (ssl, expiration) = match (self.ratls, self.certificate, self.no_ssl) {
            (Some(exp), None, false) => {
                let secs = u64::try_from(exp).map_err(|_| {
                    anyhow::anyhow!("--ratls {exp}: the expiration must be a Unix time in seconds")
                })?;
                let at = UNIX_EPOCH + Duration::from_secs(secs);
                if at <= now {
                    bail!(
                        "--ratls {exp}: this expiration date is in the past; pass a future Unix time (seconds)"
                    );
                }
                (SslMode::RaTls, at)
            }
            (None, Some(path), false) => {
                if !path.is_file() {
                    bail!(
                        "--certificate {}: no such file; pass the PEM certificate chain shipped with the app",
                        path.display()
                    );
                }
                (SslMode::Certificate(path), now + NON_RATLS_CERT_LIFETIME)
            }
            (None, None, true) => (SslMode::NoSsl, now + NON_RATLS_CERT_LIFETIME),
            _ => bail!("pass exactly one of --ratls EXPIRATION, --certificate PATH or --no-ssl"),
        };
        let subject = match &self.subject {
            Some(s) => subject::parse_rfc4514(s).with_context(|| format!("--subject `{s}`"))?,
            None => Subject::default_subject(),
        };
        let san = San::parse(&self.san)?;
        if !self.app_dir.is_dir() {
            bail!(
                "--app-dir {}: not a directory; pass the directory holding the app's code",
                self.app_dir.display()
            );
        }
        let app_dir = std::path::absolute(&self.app_dir)
            .with_context(|| format!("--app-dir {}", self.app_dir.display()))?;
        for dir in &self.site_packages {
            if !dir.is_dir() {
                bail!(
                    "--site-packages {}: not a directory; pass the runtime's site-packages (or set MSE_SITE_PACKAGES)",
                    dir.display()
                );
            }
        }
        if self.timeout == Some(0) {
            bail!(
                "--timeout 0: pass a number of seconds greater than zero, or omit it to wait forever"
            );
        }
        if self.plaincode {
            tracing::warn!(
                "--plaincode is ignored (as by the original bootstrap): clear code is detected"
            );
        }
        Ok(Launch {
            ssl,
            host: self.host,
            port: self.port,
            subject,
            san,
            expiration,
            app_dir,
            id: self.id,
            timeout: self.timeout.map(Duration::from_secs),
            debug: self.debug,
            tee: self.tee,
            site_packages: self.site_packages,
            threads: usize::from(self.threads),
            event_loop: self.event_loop.into(),
            memory: self.memory,
            storage_quota: self.storage_quota,
            sandbox: !self.insecure_no_sandbox,
            application: self.application,
            args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mse-node").chain(args.iter().copied()))
    }

    #[test]
    fn the_original_command_line_parses() {
        let cli = parse(&[
            "--ratls",
            "1714058115",
            "--host",
            "0.0.0.0",
            "--port",
            "443",
            "--subject",
            "CN=localhost,O=MyApp Company,C=FR,L=Paris,ST=Ile-de-France",
            "--san",
            "localhost",
            "--app-dir",
            "/opt/input/app",
            "--id",
            "63322f85-1ff8-4483-91ae-f18d7398d157",
            "app:app",
        ])
        .unwrap();
        assert_eq!(cli.ratls, Some(1714058115));
        assert_eq!(
            cli.application,
            Application {
                module: "app".into(),
                variable: "app".into()
            }
        );
        assert_eq!(cli.tee, TeeArg::Auto);
        assert_eq!(cli.threads, DEFAULT_THREADS);
    }

    #[test]
    fn exactly_one_ssl_mode_is_required() {
        let base = [
            "--app-dir",
            "/x",
            "--id",
            "63322f85-1ff8-4483-91ae-f18d7398d157",
            "app:app",
        ];
        let err = parse(&base).unwrap_err().to_string();
        assert!(err.contains("--ratls") && err.contains("--no-ssl"), "{err}");
        let mut two = vec!["--no-ssl", "--ratls", "5"];
        two.extend(base);
        let err = parse(&two).unwrap_err().to_string();
        assert!(err.contains("cannot be used with"), "{err}");
    }

    #[test]
    fn bad_values_name_their_flag() {
        let err = parse(&["--no-ssl", "--app-dir", "/x", "--id", "nope", "app:app"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--id"), "{err}");
        let err = parse(&[
            "--no-ssl",
            "--app-dir",
            "/x",
            "--id",
            "63322f85-1ff8-4483-91ae-f18d7398d157",
            "app",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("MODULE:VARIABLE"), "{err}");
        let err = parse(&[
            "--no-ssl",
            "--app-dir",
            "/x",
            "--id",
            "63322f85-1ff8-4483-91ae-f18d7398d157",
            "--memory",
            "lots",
            "app:app",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("--memory") && err.contains("512M"), "{err}");
    }

    #[test]
    fn applications_are_python_names() {
        assert!(parse_application("pkg.sub.mod:application").is_ok());
        for bad in [
            "app",
            ":app",
            "app:",
            "a-b:app",
            "app:a.b",
            "1app:app",
            "app:app:app",
        ] {
            assert!(parse_application(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096M"), Ok(4096 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("123"), Ok(123));
        for bad in ["", "G", "0", "-1G", "1.5G", "99999999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn past_expiration_and_missing_dirs_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let app_dir = dir.path().to_str().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let cli = parse(&[
            "--ratls",
            "1714058115",
            "--app-dir",
            app_dir,
            "--id",
            "63322f85-1ff8-4483-91ae-f18d7398d157",
            "app:app",
        ])
        .unwrap();
        let err = cli.into_launch(vec![], now).unwrap_err().to_string();
        assert!(
            err.contains("--ratls 1714058115") && err.contains("future"),
            "{err}"
        );

        let cli = parse(&[
            "--no-ssl",
            "--app-dir",
            "/nonexistent/dir",
            "--id",
            "63322f85-1ff8-4483-91ae-f18d7398d157",
            "app:app",
        ])
        .unwrap();
        let err = cli.into_launch(vec![], now).unwrap_err().to_string();
        assert!(err.contains("--app-dir /nonexistent/dir"), "{err}");

        let cli = parse(&[
            "--ratls",
            "2000000100",
            "--san",
            "bad name!",
            "--app-dir",
            app_dir,
            "--id",
            "63322f85-1ff8-4483-91ae-f18d7398d157",
            "app:app",
        ])
        .unwrap();
        let err = cli.into_launch(vec![], now).unwrap_err().to_string();
        assert!(err.contains("--san"), "{err}");

        let cli = parse(&[
            "--ratls",
            "2000000100",
            "--subject",
            "CN=a,,",
            "--app-dir",
            app_dir,
            "--id",
            "63322f85-1ff8-4483-91ae-f18d7398d157",
            "app:app",
        ])
        .unwrap();
        let err = format!("{:#}", cli.into_launch(vec![], now).unwrap_err());
        assert!(err.contains("--subject"), "{err}");
    }

    #[test]
    fn san_is_ip_when_it_parses() {
        assert_eq!(
            San::parse("127.0.0.1").unwrap(),
            San::Ip("127.0.0.1".parse().unwrap())
        );
        assert_eq!(San::parse("::1").unwrap(), San::Ip("::1".parse().unwrap()));
        assert_eq!(
            San::parse("app.example.com").unwrap(),
            San::Dns("app.example.com".into())
        );
    }
}
