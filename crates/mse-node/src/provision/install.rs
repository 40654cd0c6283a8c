//! Putting the code into MODULE_PATH, all or nothing.
//!
//! The code is first decrypted (or copied) into `MODULE_PATH/.mse-staging`, inside MODULE_PATH so
//! that the final renames never cross a file system (MODULE_PATH may be its own mount). Only when
//! every file is authenticated are the staged entries renamed into MODULE_PATH and the staging
//! directory removed. A start that finds a staging directory knows the previous install was
//! interrupted: it empties MODULE_PATH and asks for the configuration again.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use mse_crypto::CodeKey;

/// Name of the staging directory inside MODULE_PATH.
pub const STAGING: &str = ".mse-staging";
/// Prefix of mse-crypto's own temporary directory (next to its destination, our staging dir).
const DECRYPT_TEMP_PREFIX: &str = ".mse-decrypt-";

fn is_ours(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name == STAGING || name.starts_with(DECRYPT_TEMP_PREFIX)
}

/// Whether MODULE_PATH already holds installed code (the restart case, §2.7).
///
/// Leftovers of an interrupted install are removed first, and then the code counts as absent.
pub fn is_installed(module: &Path) -> io::Result<bool> {
    let entries: Vec<_> = match fs::read_dir(module) {
        Ok(rd) => rd.collect::<io::Result<_>>()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if entries.iter().any(|e| is_ours(&e.file_name())) {
        tracing::warn!(
            module = %module.display(),
            "a previous code install was interrupted: emptying MODULE_PATH and waiting for the configuration again"
        );
        for e in &entries {
            remove_any(&e.path())?;
        }
        return Ok(false);
    }
    Ok(!entries.is_empty())
}

/// Number of encrypted (`*.enc`) files under the app dir.
pub fn encrypted_file_count(app_dir: &Path) -> io::Result<usize> {
    let mut count = 0;
    let mut stack = vec![app_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if entry
                .file_name()
                .to_string_lossy()
                .ends_with(mse_crypto::code::SUFFIX)
            {
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The code does not authenticate under this key (wrong key, truncated or modified file).
    #[error("{0}")]
    Decrypt(mse_crypto::Error),
    /// The app dir holds something we do not ship (symlink, device...).
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Io(String),
}

/// Code staged in MODULE_PATH, not yet visible. Dropping it removes the staging directory.
#[derive(Debug)]
pub struct StagedCode {
    module: PathBuf,
    staging: PathBuf,
    committed: bool,
}

impl StagedCode {
    fn new(module: &Path) -> Result<Self, InstallError> {
        let staging = module.join(STAGING);
        if staging.exists() {
            remove_any(&staging).map_err(|e| io_error("removing a stale", &staging, &e))?;
        }
        Ok(StagedCode {
            module: module.to_path_buf(),
            staging,
            committed: false,
        })
    }

    /// Decrypts every `*.enc` file of `app_dir` (only those, as the original).
    pub fn decrypt(app_dir: &Path, module: &Path, key: &CodeKey) -> Result<Self, InstallError> {
        let staged = Self::new(module)?;
        match mse_crypto::code::decrypt_tree(app_dir, &staged.staging, key) {
            Ok(tree) => {
                tracing::info!(files = tree.files.len(), "code decrypted and authenticated");
                Ok(staged)
            }
            Err(e @ (mse_crypto::Error::Decrypt { .. } | mse_crypto::Error::Truncated { .. })) => {
                Err(InstallError::Decrypt(e))
            }
            Err(
                e @ (mse_crypto::Error::UnsafePath { .. }
                | mse_crypto::Error::UnsupportedFileType(_)),
            ) => Err(InstallError::Unsupported(e.to_string())),
            Err(e) => Err(InstallError::Io(e.to_string())),
        }
    }

    /// Copies clear code (the original's package without `--encrypt`): every regular file.
    pub fn copy(app_dir: &Path, module: &Path) -> Result<Self, InstallError> {
        let staged = Self::new(module)?;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&staged.staging)
            .map_err(|e| io_error("creating", &staged.staging, &e))?;
        copy_tree(app_dir, &staged.staging)?;
        Ok(staged)
    }

    /// Makes the staged code the app's code.
    pub fn commit(mut self) -> Result<(), InstallError> {
        let result = (|| -> Result<(), InstallError> {
            let entries =
                fs::read_dir(&self.staging).map_err(|e| io_error("reading", &self.staging, &e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_error("reading", &self.staging, &e))?;
                let target = self.module.join(entry.file_name());
                fs::rename(entry.path(), &target)
                    .map_err(|e| io_error("moving code into", &target, &e))?;
            }
            fs::remove_dir(&self.staging).map_err(|e| io_error("removing", &self.staging, &e))
        })();
        if result.is_err() {
            // Leave nothing half-installed: what was moved goes too.
            if let Ok(rd) = fs::read_dir(&self.module) {
                for e in rd.flatten() {
                    let _ = remove_any(&e.path());
                }
            }
        }
        self.committed = result.is_ok();
        result
    }
}

impl Drop for StagedCode {
    fn drop(&mut self) {
        if !self.committed
            && self.staging.exists()
            && let Err(e) = remove_any(&self.staging)
        {
            tracing::error!(path = %self.staging.display(), error = %e, "cannot remove staged code");
        }
    }
}

fn copy_tree(src: &Path, dst: &Path) -> Result<(), InstallError> {
    for entry in fs::read_dir(src).map_err(|e| io_error("reading", src, &e))? {
        let entry = entry.map_err(|e| io_error("reading", src, &e))?;
        let path = entry.path();
        let ty = entry
            .file_type()
            .map_err(|e| io_error("reading", &path, &e))?;
        let target = dst.join(entry.file_name());
        if ty.is_dir() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&target)
                .map_err(|e| io_error("creating", &target, &e))?;
            copy_tree(&path, &target)?;
        } else if ty.is_file() {
            // Content only, no metadata (the original avoided copystat, which Gramine lacks).
            let mut from = fs::File::open(&path).map_err(|e| io_error("reading", &path, &e))?;
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&target)
                .map_err(|e| io_error("creating", &target, &e))?;
            io::copy(&mut from, &mut to).map_err(|e| io_error("copying", &path, &e))?;
        } else {
            return Err(InstallError::Unsupported(format!(
                "{}: only regular files and directories are installed (symlinks and special files are refused)",
                path.display()
            )));
        }
    }
    Ok(())
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn io_error(action: &str, path: &Path, e: &io::Error) -> InstallError {
    InstallError::Io(format!("{action} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                    out.push(format!("{rel}/"));
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("in");
        let module = t.path().join("app");
        fs::create_dir_all(app.join("pkg")).unwrap();
        fs::create_dir_all(&module).unwrap();
        (t, app, module)
    }

    #[test]
    fn encrypted_code_is_decrypted_then_committed() {
        let (_t, app, module) = setup();
        let key = CodeKey::from_bytes([7; 32]);
        fs::write(
            app.join("app.py.enc"),
            mse_crypto::code::encrypt(&key, &[1; 24], b"print('hi')"),
        )
        .unwrap();
        fs::write(
            app.join("pkg/m.py.enc"),
            mse_crypto::code::encrypt(&key, &[2; 24], b"x = 1"),
        )
        .unwrap();
        fs::write(app.join("requirements.txt"), "flask").unwrap();
        assert_eq!(encrypted_file_count(&app).unwrap(), 2);

        let staged = StagedCode::decrypt(&app, &module, &key).unwrap();
        assert_eq!(
            tree(&module),
            vec![
                ".mse-staging/",
                ".mse-staging/app.py",
                ".mse-staging/pkg/",
                ".mse-staging/pkg/m.py"
            ]
        );
        staged.commit().unwrap();
        assert_eq!(tree(&module), vec!["app.py", "pkg/", "pkg/m.py"]);
        assert_eq!(fs::read(module.join("app.py")).unwrap(), b"print('hi')");
        assert!(is_installed(&module).unwrap());
    }

    #[test]
    fn a_tampered_file_leaves_nothing() {
        let (_t, app, module) = setup();
        let key = CodeKey::from_bytes([7; 32]);
        fs::write(
            app.join("a.py.enc"),
            mse_crypto::code::encrypt(&key, &[1; 24], b"SECRET_PLAINTEXT"),
        )
        .unwrap();
        let mut bad = mse_crypto::code::encrypt(&key, &[2; 24], b"more code");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        fs::write(app.join("b.py.enc"), bad).unwrap();
        let err = StagedCode::decrypt(&app, &module, &key).unwrap_err();
        assert!(matches!(err, InstallError::Decrypt(_)));
        assert!(err.to_string().contains("b.py.enc"), "{err}");
        assert!(tree(&module).is_empty(), "{:?}", tree(&module));
        assert!(!is_installed(&module).unwrap());
    }

    #[test]
    fn clear_code_is_copied_whole() {
        let (_t, app, module) = setup();
        fs::write(app.join("app.py"), "x").unwrap();
        fs::write(app.join("pkg/requirements.txt"), "flask").unwrap();
        StagedCode::copy(&app, &module).unwrap().commit().unwrap();
        assert_eq!(
            tree(&module),
            vec!["app.py", "pkg/", "pkg/requirements.txt"]
        );
    }

    #[test]
    fn symlinks_are_not_copied() {
        let (_t, app, module) = setup();
        std::os::unix::fs::symlink("/etc/hostname", app.join("link")).unwrap();
        let err = StagedCode::copy(&app, &module).unwrap_err();
        assert!(matches!(err, InstallError::Unsupported(_)));
        assert!(tree(&module).is_empty());
    }

    #[test]
    fn an_interrupted_install_is_wiped() {
        let (_t, _app, module) = setup();
        fs::create_dir_all(module.join(STAGING)).unwrap();
        fs::write(module.join("half.py"), "x").unwrap();
        assert!(!is_installed(&module).unwrap());
        assert!(tree(&module).is_empty());
        assert!(!is_installed(&module.join("missing")).unwrap());
    }
}
