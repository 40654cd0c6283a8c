//! The app's environment: the directories of the seed's paths table, read from the same
//! environment variables as the original, with its defaults, and handed to the app.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where everything lives. All absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `$HOME`: the app's home (caches, its own files).
    pub home: PathBuf,
    /// `$SECRETS_PATH`: `app_secrets` as received.
    pub secrets: PathBuf,
    /// `$SEALED_SECRETS_PATH`: the opened `app_sealed_secrets`.
    pub sealed_secrets: PathBuf,
    /// `$TMP_PATH`: temporary files (also the app's `TMPDIR`).
    pub tmp: PathBuf,
    /// `$MODULE_PATH`: the decrypted code, first on `sys.path`.
    pub module: PathBuf,
    /// `$KEY_PATH`: the node's keys and certificates.
    pub key: PathBuf,
}

impl Paths {
    /// Reads the environment through `var` (the process environment in production).
    pub fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let get = |name: &str, default: &dyn Fn() -> PathBuf| -> Result<PathBuf> {
            let path = match var(name) {
                Some(v) if v.is_empty() => {
                    bail!("{name} is set but empty; unset it or give it a directory")
                }
                Some(v) => PathBuf::from(v),
                None => default(),
            };
            std::path::absolute(&path)
                .with_context(|| format!("{name}={}: cannot make it absolute", path.display()))
        };
        let home = get("HOME", &|| PathBuf::from("/root"))?;
        let cache = home.join(".cache").join("mse");
        Ok(Paths {
            secrets: get("SECRETS_PATH", &|| cache.join("secrets.json"))?,
            sealed_secrets: get("SEALED_SECRETS_PATH", &|| cache.join("sealed_secrets.json"))?,
            tmp: get("TMP_PATH", &|| PathBuf::from("/tmp"))?,
            module: get("MODULE_PATH", &|| PathBuf::from("/mse-app"))?,
            key: get("KEY_PATH", &|| PathBuf::from("/key"))?,
            home,
        })
    }

    /// Directories the node creates and the app may write (the storage plan).
    pub fn writable_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![
            self.home.clone(),
            self.tmp.clone(),
            self.module.clone(),
            self.key.clone(),
        ];
        for file in [&self.secrets, &self.sealed_secrets] {
            if let Some(parent) = file.parent() {
                dirs.push(parent.to_path_buf());
            }
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Creates the directories; KEY_PATH is private to the node's user.
    pub fn create(&self) -> Result<()> {
        if self.module.starts_with(&self.key) || self.key.starts_with(&self.module) {
            bail!("MODULE_PATH and KEY_PATH overlap; the app would see the node's keys");
        }
        for dir in self.writable_dirs() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| {
                    format!(
                        "cannot create {}; check the path and its permissions",
                        dir.display()
                    )
                })?;
        }
        fs::set_permissions(&self.key, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict KEY_PATH {}", self.key.display()))?;
        Ok(())
    }

    /// The variables the app sees, as the original's Gramine manifest set them, plus `TMPDIR`
    /// so that Python's `tempfile` stays inside TMP_PATH.
    pub fn app_env(&self) -> Vec<(String, String)> {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            ("HOME".into(), s(&self.home)),
            ("SECRETS_PATH".into(), s(&self.secrets)),
            ("SEALED_SECRETS_PATH".into(), s(&self.sealed_secrets)),
            ("TMP_PATH".into(), s(&self.tmp)),
            ("TMPDIR".into(), s(&self.tmp)),
            ("MODULE_PATH".into(), s(&self.module)),
            ("KEY_PATH".into(), s(&self.key)),
        ]
    }

    pub fn enclave_key(&self) -> PathBuf {
        self.key.join("enclave.key")
    }
    pub fn enclave_pub(&self) -> PathBuf {
        self.key.join("enclave.pub")
    }
    pub fn ratls_cert(&self) -> PathBuf {
        self.key.join("cert.ratls.pem")
    }
    pub fn ratls_key(&self) -> PathBuf {
        self.key.join("key.ratls.pem")
    }
    /// Private key of the owner's certificate (custom-certificate mode).
    pub fn ssl_key(&self) -> PathBuf {
        self.key.join("key.pem")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_the_originals() {
        let p = Paths::from_env(env(&[])).unwrap();
        assert_eq!(p.home, Path::new("/root"));
        assert_eq!(p.secrets, Path::new("/root/.cache/mse/secrets.json"));
        assert_eq!(
            p.sealed_secrets,
            Path::new("/root/.cache/mse/sealed_secrets.json")
        );
        assert_eq!(p.tmp, Path::new("/tmp"));
        assert_eq!(p.module, Path::new("/mse-app"));
        assert_eq!(p.key, Path::new("/key"));
        assert_eq!(p.enclave_key(), Path::new("/key/enclave.key"));
    }

    #[test]
    fn secrets_follow_home_and_overrides_win() {
        let p = Paths::from_env(env(&[
            ("HOME", "/h"),
            ("MODULE_PATH", "/m"),
            ("SEALED_SECRETS_PATH", "/s/x.json"),
        ]))
        .unwrap();
        assert_eq!(p.secrets, Path::new("/h/.cache/mse/secrets.json"));
        assert_eq!(p.sealed_secrets, Path::new("/s/x.json"));
        assert_eq!(p.module, Path::new("/m"));
        let app = p.app_env();
        assert!(app.contains(&("MODULE_PATH".to_owned(), "/m".to_owned())));
        assert!(app.contains(&("TMPDIR".to_owned(), "/tmp".to_owned())));
    }

    #[test]
    fn empty_values_are_refused() {
        let err = Paths::from_env(env(&[("KEY_PATH", "")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("KEY_PATH"), "{err}");
    }

    #[test]
    fn create_makes_private_dirs_and_refuses_overlap() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_str().unwrap().to_owned();
        let p = Paths::from_env(env(&[
            ("HOME", &format!("{root}/home")),
            ("TMP_PATH", &format!("{root}/tmp")),
            ("MODULE_PATH", &format!("{root}/app")),
            ("KEY_PATH", &format!("{root}/key")),
        ]))
        .unwrap();
        p.create().unwrap();
        assert!(p.secrets.parent().unwrap().is_dir());
        let mode = fs::metadata(&p.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let bad = Paths {
            key: p.module.join("key"),
            ..p
        };
        assert!(bad.create().unwrap_err().to_string().contains("overlap"));
    }
}
