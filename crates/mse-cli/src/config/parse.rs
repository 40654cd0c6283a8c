//! Text → [`ParsedConfig`]: TOML syntax, layouts, key types and value rules. Pure (no I/O),
//! never panics: this is the fuzzed entry point.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::error::{ConfigError, ConfigErrorKind as K};
use crate::profile::{self, Profile};

/// Which of the two accepted file layouts the configuration uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// The seed's: `name`, `project`, `resource`, `[code]`, `[ssl]`.
    Seed,
    /// mse-cli 1.x: top-level `python_application`…, optional `[cloud]` and `[cloud.ssl]`.
    MseCli,
}

/// `module:variable`, both checked to be Python identifiers (the module may be dotted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonApp {
    pub module: String,
    pub variable: String,
}

impl std::fmt::Display for PythonApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.module, self.variable)
    }
}

/// Paths of `[ssl]`, before the files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslPaths {
    pub domain_name: String,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

/// Where the app's tests live and how they run (`mse localtest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestsConfig {
    pub dir: PathBuf,
    pub cmd: String,
    pub requirements: Vec<String>,
}

/// A configuration whose every key has the right type and shape; files not read yet.
#[derive(Debug, Clone)]
pub struct ParsedConfig {
    pub file: PathBuf,
    pub layout: Layout,
    pub name: String,
    pub project: String,
    pub profile: Profile,
    pub code_dir: PathBuf,
    pub app: PythonApp,
    pub healthcheck: String,
    pub docker: Option<String>,
    pub secrets: Option<PathBuf>,
    pub ssl: Option<SslPaths>,
    pub tests: TestsConfig,
    /// `cloud.expiration_date` (mse-cli layout), UTC when the file gives no offset.
    pub expiration: Option<time::OffsetDateTime>,
    /// Keys the parser did not use: likely typos, reported but not fatal (the original ignored them).
    pub unknown_keys: Vec<String>,
}

/// Defaults of the mse-cli layout when `[cloud]` is absent (the original `home` commands).
const MSE_CLI_CODE_DIR: &str = "mse_src";
const TESTS_DIR: &str = "tests";
const DEFAULT_TESTS_CMD: &str = "pytest";
const DEFAULT_PROJECT: &str = "default";
const DEFAULT_RESOURCE: &str = "free";

/// Parse the text of a configuration file. `file` names it in errors and anchors relative paths.
pub fn parse(text: &str, file: &Path) -> Result<ParsedConfig, ConfigError> {
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let root: Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::new(
            file,
            None,
            K::Syntax {
                message: e.to_string(),
            },
        )
    })?;
    let mut r = Reader {
        file,
        base: &base,
        used: Vec::new(),
    };
    let has_code = root.contains_key("code");
    let has_cloud = root.contains_key("cloud");
    let config = if has_code && has_cloud {
        return Err(ConfigError::new(file, None, K::MixedLayouts));
    } else if has_code {
        seed_layout(&mut r, &root)?
    } else if root.contains_key("python_application") {
        mse_cli_layout(&mut r, &root)?
    } else {
        return Err(ConfigError::new(file, None, K::UnknownLayout));
    };
    let mut unknown = Vec::new();
    collect_unknown(&root, "", &r.used, &mut unknown);
    Ok(ParsedConfig {
        unknown_keys: unknown,
        ..config
    })
}

fn seed_layout(r: &mut Reader<'_>, root: &Table) -> Result<ParsedConfig, ConfigError> {
    let name = r.name(root, "name")?;
    let project = r
        .opt_str(root, "project", "\"default\"")?
        .unwrap_or_else(|| DEFAULT_PROJECT.into());
    let profile = r.profile(root, "resource")?;
    let code = r.table(root, "code", "[code]")?;
    let code_dir = r.path(code, "code.location", "\"./code\"")?;
    let app = r.python_app(code, "code.python_application")?;
    let healthcheck = r.healthcheck(code, "code.healthcheck_endpoint")?;
    let docker = r.docker(code, "code.docker")?;
    let secrets = r.opt_path(code, "code.secrets", "\"./secrets.json\"")?;
    let ssl = match r.opt_table(root, "ssl")? {
        Some(t) => Some(r.ssl(t, "ssl")?),
        None => None,
    };
    let tests = r.tests(root)?;
    Ok(ParsedConfig {
        file: r.file.to_path_buf(),
        layout: Layout::Seed,
        name,
        project,
        profile,
        code_dir,
        app,
        healthcheck,
        docker,
        secrets,
        ssl,
        tests,
        expiration: None,
        unknown_keys: Vec::new(),
    })
}

fn mse_cli_layout(r: &mut Reader<'_>, root: &Table) -> Result<ParsedConfig, ConfigError> {
    let name = r.name(root, "name")?;
    let app = r.python_app(root, "python_application")?;
    let healthcheck = r.healthcheck(root, "healthcheck_endpoint")?;
    let mut tests = r.tests(root)?;
    let Some(cloud) = r.opt_table(root, "cloud")? else {
        return Ok(ParsedConfig {
            file: r.file.to_path_buf(),
            layout: Layout::MseCli,
            name,
            project: DEFAULT_PROJECT.into(),
            profile: r.profile(root, "resource")?,
            code_dir: r.base.join(MSE_CLI_CODE_DIR),
            app,
            healthcheck,
            docker: None,
            secrets: None,
            ssl: None,
            tests,
            expiration: None,
            unknown_keys: Vec::new(),
        });
    };
    let code_dir = r.path(cloud, "cloud.code", "\"mse_src\"")?;
    if let Some(dir) = r.opt_path(cloud, "cloud.tests", "\"tests\"")? {
        tests.dir = dir;
    }
    let docker = r.docker(cloud, "cloud.docker")?;
    let project = r
        .opt_str(cloud, "cloud.project", "\"default\"")?
        .unwrap_or_else(|| DEFAULT_PROJECT.into());
    let profile = r.profile(cloud, "cloud.hardware")?;
    let secrets = r.opt_path(cloud, "cloud.secrets", "\"secrets.json\"")?;
    let expiration = r.datetime(cloud, "cloud.expiration_date")?;
    let ssl = match r.opt_table(cloud, "cloud.ssl")? {
        Some(t) => Some(r.ssl(t, "cloud.ssl")?),
        None => None,
    };
    Ok(ParsedConfig {
        file: r.file.to_path_buf(),
        layout: Layout::MseCli,
        name,
        project,
        profile,
        code_dir,
        app,
        healthcheck,
        docker,
        secrets,
        ssl,
        tests,
        expiration,
        unknown_keys: Vec::new(),
    })
}

/// Typed access to a TOML table, recording which keys were used.
struct Reader<'a> {
    file: &'a Path,
    base: &'a Path,
    used: Vec<String>,
}

fn leaf(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

impl Reader<'_> {
    fn err(&self, key: &str, kind: K) -> ConfigError {
        ConfigError::new(self.file, Some(key), kind)
    }

    fn invalid(&self, key: &str, reason: impl Into<String>, fix: impl Into<String>) -> ConfigError {
        self.err(
            key,
            K::InvalidValue {
                reason: reason.into(),
                fix: fix.into(),
            },
        )
    }

    fn get<'t>(&mut self, t: &'t Table, key: &str) -> Option<&'t Value> {
        let v = t.get(leaf(key));
        if v.is_some() {
            self.used.push(key.to_owned());
        }
        v
    }

    fn opt_str(
        &mut self,
        t: &Table,
        key: &str,
        example: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        match self.get(t, key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(
                key,
                K::WrongType {
                    expected: "a string",
                    found: type_name(v),
                    example,
                },
            )),
        }
    }

    fn str(&mut self, t: &Table, key: &str, example: &'static str) -> Result<String, ConfigError> {
        self.opt_str(t, key, example)?
            .ok_or_else(|| self.err(key, K::MissingKey { example }))
    }

    /// A string of 1..=255 characters after trimming (the original's constraint).
    fn bounded(&self, key: &str, value: &str, example: &str) -> Result<(), ConfigError> {
        if value.trim().is_empty() {
            return Err(self.invalid(
                key,
                "must not be empty",
                format!("write `{} = {example}`", leaf(key)),
            ));
        }
        if value.chars().count() > 255 {
            return Err(self.invalid(key, "is longer than 255 characters", "shorten it"));
        }
        Ok(())
    }

    fn opt_table<'t>(&mut self, t: &'t Table, key: &str) -> Result<Option<&'t Table>, ConfigError> {
        match self.get(t, key) {
            None => Ok(None),
            Some(Value::Table(inner)) => Ok(Some(inner)),
            Some(v) => Err(self.err(
                key,
                K::WrongType {
                    expected: "a table",
                    found: type_name(v),
                    example: "a [section] header",
                },
            )),
        }
    }

    fn table<'t>(
        &mut self,
        t: &'t Table,
        key: &str,
        example: &'static str,
    ) -> Result<&'t Table, ConfigError> {
        self.opt_table(t, key)?
            .ok_or_else(|| self.err(key, K::MissingKey { example }))
    }

    fn name(&mut self, t: &Table, key: &str) -> Result<String, ConfigError> {
        let raw = self.str(t, key, "\"helloworld\"")?;
        let name = raw.trim().to_owned();
        self.bounded(key, &name, "\"helloworld\"")?;
        // The name becomes a folder name and a docker-compatible container name.
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err(self.invalid(
                key,
                format!("`{name}` is not a valid app name"),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
            ));
        }
        Ok(name)
    }

    fn path(
        &mut self,
        t: &Table,
        key: &str,
        example: &'static str,
    ) -> Result<PathBuf, ConfigError> {
        self.opt_path(t, key, example)?
            .ok_or_else(|| self.err(key, K::MissingKey { example }))
    }

    fn opt_path(
        &mut self,
        t: &Table,
        key: &str,
        example: &'static str,
    ) -> Result<Option<PathBuf>, ConfigError> {
        let Some(s) = self.opt_str(t, key, example)? else {
            return Ok(None);
        };
        if s.trim().is_empty() || s.contains('\0') {
            return Err(self.invalid(
                key,
                "is not a usable path",
                format!("write `{} = {example}`", leaf(key)),
            ));
        }
        Ok(Some(self.base.join(s)))
    }

    fn python_app(&mut self, t: &Table, key: &str) -> Result<PythonApp, ConfigError> {
        let s = self.str(t, key, "\"app:app\"")?;
        self.bounded(key, &s, "\"app:app\"")?;
        let fix =
            "write it as `module:variable`, e.g. \"app:app\" for the variable `app` of app.py";
        let parts: Vec<&str> = s.split(':').collect();
        let [module, variable] = parts.as_slice() else {
            return Err(self.invalid(key, format!("`{s}` is not `module:variable`"), fix));
        };
        if !module.split('.').all(is_identifier) {
            return Err(self.invalid(key, format!("`{module}` is not a Python module name"), fix));
        }
        if !is_identifier(variable) {
            return Err(self.invalid(
                key,
                format!("`{variable}` is not a Python variable name"),
                fix,
            ));
        }
        Ok(PythonApp {
            module: (*module).to_owned(),
            variable: (*variable).to_owned(),
        })
    }

    fn healthcheck(&mut self, t: &Table, key: &str) -> Result<String, ConfigError> {
        let s = self.str(t, key, "\"/\"")?;
        self.bounded(key, &s, "\"/\"")?;
        if !s.starts_with('/') {
            return Err(self.invalid(
                key,
                format!("`{s}` does not start with `/`"),
                format!("write `{} = \"/{}\"`", leaf(key), s.trim_start_matches('/')),
            ));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(self.invalid(
                key,
                format!("`{s}` contains spaces or control characters"),
                "percent-encode them",
            ));
        }
        Ok(s)
    }

    fn docker(&mut self, t: &Table, key: &str) -> Result<Option<String>, ConfigError> {
        let example = "\"ghcr.io/cosmian/mse-flask:20230124182826\"";
        let v = self.opt_str(t, key, example)?;
        if let Some(s) = &v
            && s.trim().is_empty()
        {
            return Err(self.invalid(
                key,
                "must not be empty",
                format!("remove it or write `docker = {example}`"),
            ));
        }
        Ok(v)
    }

    fn profile(&mut self, t: &Table, key: &str) -> Result<Profile, ConfigError> {
        let name = self
            .opt_str(t, key, "\"free\"")?
            .unwrap_or_else(|| DEFAULT_RESOURCE.into());
        profile::lookup(name.trim()).ok_or_else(|| {
            self.err(
                key,
                K::UnknownResource {
                    name,
                    known: profile::NAMES.to_vec(),
                },
            )
        })
    }

    fn ssl(&mut self, t: &Table, prefix: &str) -> Result<SslPaths, ConfigError> {
        let dkey = format!("{prefix}.domain_name");
        let domain_name = self
            .str(t, &dkey, "\"example.com\"")?
            .trim()
            .to_ascii_lowercase();
        self.bounded(&dkey, &domain_name, "\"example.com\"")?;
        if !is_dns_name(&domain_name) {
            return Err(self.invalid(
                &dkey,
                format!("`{domain_name}` is not a domain name"),
                "write a DNS name such as \"app.example.com\" (no scheme, port or path)",
            ));
        }
        let certificate =
            self.path(t, &format!("{prefix}.certificate"), "\"./cert.secret.pem\"")?;
        let private_key = self.path(t, &format!("{prefix}.private_key"), "\"./key.secret.pem\"")?;
        Ok(SslPaths {
            domain_name,
            certificate,
            private_key,
        })
    }

    /// `tests_cmd`, `tests_requirements` (top level) and the default tests folder.
    fn tests(&mut self, root: &Table) -> Result<TestsConfig, ConfigError> {
        let cmd = self
            .opt_str(root, "tests_cmd", "\"pytest\"")?
            .unwrap_or_else(|| DEFAULT_TESTS_CMD.into());
        let requirements = match self.get(root, "tests_requirements") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            return Err(self.err(
                                "tests_requirements",
                                K::WrongType {
                                    expected: "an array of strings",
                                    found: type_name(other),
                                    example: "[\"pytest\", \"requests\"]",
                                },
                            ));
                        }
                    }
                }
                out
            }
            Some(v) => {
                return Err(self.err(
                    "tests_requirements",
                    K::WrongType {
                        expected: "an array of strings",
                        found: type_name(v),
                        example: "[\"pytest\", \"requests\"]",
                    },
                ));
            }
        };
        Ok(TestsConfig {
            dir: self.base.join(TESTS_DIR),
            cmd,
            requirements,
        })
    }

    fn datetime(
        &mut self,
        t: &Table,
        key: &str,
    ) -> Result<Option<time::OffsetDateTime>, ConfigError> {
        let example = "2030-01-31T12:00:00Z";
        let text = match self.get(t, key) {
            None => return Ok(None),
            Some(Value::Datetime(d)) => d.to_string(),
            Some(Value::String(s)) => s.trim().replace(' ', "T"),
            Some(v) => {
                return Err(self.err(
                    key,
                    K::WrongType {
                        expected: "a date-time",
                        found: type_name(v),
                        example,
                    },
                ));
            }
        };
        parse_datetime(&text).map(Some).ok_or_else(|| {
            self.invalid(
                key,
                format!("`{text}` is not a date-time"),
                format!("write `expiration_date = {example}`"),
            )
        })
    }
}

/// RFC 3339, or a local date-time without offset (taken as UTC).
fn parse_datetime(text: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let with_z = format!("{text}Z");
    time::OffsetDateTime::parse(&with_z, &Rfc3339).ok()
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// LDH labels separated by dots; a leading `*.` wildcard is accepted only in certificates.
pub(crate) fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Keys present in the file that no rule read: `prefix` is the dotted path of `t`.
fn collect_unknown(t: &Table, prefix: &str, used: &[String], out: &mut Vec<String>) {
    for (k, v) in t {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if !used.contains(&path) {
            out.push(path);
        } else if let Value::Table(inner) = v {
            collect_unknown(inner, &path, used, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
name="helloworld"
project="default"
resource="free"
[code]
location="./code"
python_application="app:app"
healthcheck_endpoint="/whoami"
docker="ghcr.io/cosmian/mse-flask:20230124182826"
secrets="./secrets.json"
[ssl]
domain_name="example.com"
certificate="./cert.secret.pem"
private_key="./key.secret.pem"
"#;

    #[test]
    fn the_seed_example_parses_with_paths_relative_to_the_file() {
        let c = parse(SEED, Path::new("/p/mse.toml")).unwrap();
        assert_eq!(c.layout, Layout::Seed);
        assert_eq!(c.name, "helloworld");
        assert_eq!(c.code_dir, Path::new("/p/./code"));
        assert_eq!(c.app.to_string(), "app:app");
        assert_eq!(c.healthcheck, "/whoami");
        assert_eq!(c.secrets.as_deref(), Some(Path::new("/p/./secrets.json")));
        let ssl = c.ssl.unwrap();
        assert_eq!(ssl.domain_name, "example.com");
        assert_eq!(ssl.private_key, Path::new("/p/./key.secret.pem"));
        assert_eq!(c.profile.name, "free");
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
    }

    #[test]
    fn the_mse_cli_layout_parses_and_maps_cloud_keys() {
        let text = r#"
name = "x"
python_application = "pkg.app:application"
healthcheck_endpoint = "/health"
tests_cmd = "pytest"
tests_requirements = ["pytest==7.2.0", "requests"]
[cloud]
code = "mse_src"
tests = "tests"
docker = "ghcr.io/cosmian/mse-fastapi:1"
project = "p"
hardware = "4g-eu-001"
expiration_date = 2030-01-01T00:00:00Z
[cloud.ssl]
domain_name = "a.example.com"
private_key = "k.pem"
certificate = "c.pem"
"#;
        let c = parse(text, Path::new("d/mse.toml")).unwrap();
        assert_eq!(c.layout, Layout::MseCli);
        assert_eq!(c.app.module, "pkg.app");
        assert_eq!(c.code_dir, Path::new("d/mse_src"));
        assert_eq!(c.project, "p");
        assert_eq!(c.tests.requirements.len(), 2);
        assert!(c.expiration.is_some());
        assert_eq!(c.ssl.unwrap().certificate, Path::new("d/c.pem"));
    }

    #[test]
    fn unknown_keys_are_reported_not_fatal() {
        let text = SEED.replace("resource=\"free\"", "resource=\"free\"\nhealtcheck=\"/\"");
        let c = parse(&text, Path::new("mse.toml")).unwrap();
        assert_eq!(c.unknown_keys, vec!["healtcheck".to_string()]);
    }

    #[test]
    fn hostile_inputs_give_errors_not_panics() {
        for text in [
            "",
            "[code]",
            "code = 1",
            "[code]\nlocation=[]",
            "name=\"\u{0}\"\n[code]",
            "\u{feff}",
        ] {
            let _ = parse(text, Path::new(""));
        }
    }
}
