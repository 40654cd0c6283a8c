//! Encrypting a code directory for shipping, and decrypting it inside the node.
//!
//! Both directions write into a fresh temporary directory next to the destination (so on the
//! same filesystem) and rename it into place only once every file succeeded: a failure leaves
//! nothing behind. Relative paths are built from directory walks, never from file contents, and
//! symlinks are never allowed to lead out of the tree.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use rand_core::{OsRng, RngCore};
use walkdir::WalkDir;
use zeroize::Zeroizing;

use super::{CLEAR_FILES, Nonce, NonceMap, SUFFIX, decrypt, encrypt};
use crate::ignore::IgnoreSet;
use crate::keys::CodeKey;
use crate::{Error, Result};

/// What [`decrypt_tree`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecryptedTree {
    /// POSIX relative paths of the decrypted files (suffix stripped), sorted.
    pub files: Vec<String>,
}

/// Copy `src` to `dst`, encrypting every file except [`CLEAR_FILES`].
///
/// * `dst` must not exist, or be an empty directory; it must not be inside `src`.
/// * Entries whose basename matches an `ignore` pattern (`.mseignore`, see [`crate::ignore`]) are
///   skipped, directories with everything below them.
/// * Hidden entries (name starting with `.`) are skipped too. The original encrypts them and then
///   drops them when it builds `app.tar`, so what ships is the same; unlike the original, the
///   returned map has no nonces for them.
/// * Each encrypted file is named `<name>.enc` and sealed with `nonces[relpath]` when a map is
///   given (a file missing from it is [`Error::NonceNotFound`]; a nonce given to two files is
///   [`Error::NonceReused`]), otherwise with a fresh random nonce.
/// * Symlinks are followed when they stay inside `src` (their content is copied, as Python's
///   `copytree` does) and refused when they lead out of it.
///
/// Returns the nonce map actually used, keyed by POSIX relative path without the suffix. Given
/// that map and the same key, the output is byte-for-byte identical.
pub fn encrypt_tree(
    src: &Path,
    dst: &Path,
    key: &CodeKey,
    nonces: Option<&NonceMap>,
    ignore: &[String],
) -> Result<NonceMap> {
    let src_root = source_root(src)?;
    // Ciphertext is not secret: the usual modes, as for any file that goes into a tar.
    let staging = Staging::new(&src_root, dst, ".mse-encrypt-", 0o644, 0o755)?;
    let ignore = IgnoreSet::new(ignore);

    let walk = WalkDir::new(&src_root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !(is_hidden(e.file_name()) || ignore.is_ignored(e.file_name()))
        });

    let mut used = NonceMap::new();
    let mut owners: HashMap<Nonce, String> = HashMap::new();
    for entry in walk {
        let entry = entry.map_err(walk_error)?;
        if entry.depth() == 0 {
            continue;
        }
        let rel = relative(&src_root, entry.path())?;
        if entry.path_is_symlink() {
            check_link_stays_inside(&src_root, entry.path())?;
        }
        let file_type = entry.file_type();
        if file_type.is_dir() {
            staging.create_dir(&rel)?;
            continue;
        }
        if !file_type.is_file() {
            return Err(Error::UnsupportedFileType(entry.path().to_owned()));
        }
        let name = entry.file_name().to_str().unwrap_or_default();
        if CLEAR_FILES.contains(&name) {
            let bytes =
                fs::read(entry.path()).map_err(|e| Error::io("reading", entry.path(), e))?;
            staging.write_file(&rel, "", &bytes)?;
            continue;
        }

        let nonce = match nonces {
            Some(map) => *map
                .get(&rel)
                .ok_or_else(|| Error::NonceNotFound { path: rel.clone() })?,
            None => {
                let mut n = [0; 24];
                OsRng.fill_bytes(&mut n);
                n
            }
        };
        if let Some(first) = owners.insert(nonce, rel.clone()) {
            return Err(Error::NonceReused { first, second: rel });
        }
        let plaintext = Zeroizing::new(
            fs::read(entry.path()).map_err(|e| Error::io("reading", entry.path(), e))?,
        );
        staging.write_file(&rel, SUFFIX, &encrypt(key, &nonce, &plaintext))?;
        used.insert(rel, nonce);
    }
    staging.commit()?;
    Ok(used)
}

/// Decrypt every `*.enc` file under `src` into `dst`, with one [`SUFFIX`] stripped from each
/// name and relative paths kept. Other files are not copied, symlinks are not followed (a
/// symlink named `*.enc` is refused), and `src` is left untouched.
///
/// All or nothing: `dst` (absent, or an empty directory, not inside `src`) appears only once
/// every file has been authenticated and written; on failure nothing is left and the error
/// names the file. Decrypted files are created readable by the owner only.
pub fn decrypt_tree(src: &Path, dst: &Path, key: &CodeKey) -> Result<DecryptedTree> {
    let src_root = source_root(src)?;
    let staging = Staging::new(&src_root, dst, ".mse-decrypt-", 0o600, 0o700)?;

    let mut files = Vec::new();
    for entry in WalkDir::new(&src_root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(walk_error)?;
        let Some(name) = entry.file_name().to_str() else {
            if entry
                .file_name()
                .as_encoded_bytes()
                .ends_with(SUFFIX.as_bytes())
            {
                return Err(Error::NonUtf8Path(entry.path().to_owned()));
            }
            continue;
        };
        if entry.depth() == 0 || entry.file_type().is_dir() || !name.ends_with(SUFFIX) {
            continue;
        }
        if entry.file_type().is_symlink() {
            return Err(Error::UnsafePath {
                path: entry.path().to_owned(),
                reason: "an encrypted file must be a regular file, not a symlink",
            });
        }
        if !entry.file_type().is_file() {
            return Err(Error::UnsupportedFileType(entry.path().to_owned()));
        }
        let rel_enc = relative(&src_root, entry.path())?;
        let rel = rel_enc
            .strip_suffix(SUFFIX)
            .filter(|r| !r.is_empty() && !r.ends_with('/'))
            .ok_or_else(|| Error::UnsafePath {
                path: entry.path().to_owned(),
                reason: "the name is only the suffix",
            })?
            .to_owned();

        let bytes = fs::read(entry.path()).map_err(|e| Error::io("reading", entry.path(), e))?;
        let plaintext = decrypt(key, &bytes, &rel_enc)?;
        if let Some((parent, _)) = rel.rsplit_once('/') {
            staging.create_dir_all(parent)?;
        }
        staging.write_file(&rel, "", &plaintext)?;
        files.push(rel);
    }
    staging.commit()?;
    Ok(DecryptedTree { files })
}

/// The source directory, with symlinks resolved so containment checks compare real paths.
fn source_root(src: &Path) -> Result<PathBuf> {
    let root = fs::canonicalize(src).map_err(|e| Error::io("opening source directory", src, e))?;
    if !root.is_dir() {
        return Err(Error::UnsafePath {
            path: src.to_owned(),
            reason: "the source is not a directory",
        });
    }
    Ok(root)
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// POSIX relative path of a walked entry; every component must be a plain UTF-8 name.
fn relative(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).map_err(|_| Error::UnsafePath {
        path: path.to_owned(),
        reason: "outside the source directory",
    })?;
    let mut out = String::new();
    for component in rel.components() {
        let Component::Normal(part) = component else {
            return Err(Error::UnsafePath {
                path: path.to_owned(),
                reason: "not a plain relative path",
            });
        };
        let part = part
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path(path.to_owned()))?;
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part);
    }
    if out.is_empty() {
        return Err(Error::UnsafePath {
            path: path.to_owned(),
            reason: "empty relative path",
        });
    }
    Ok(out)
}

fn check_link_stays_inside(root: &Path, link: &Path) -> Result<()> {
    let target = fs::canonicalize(link).map_err(|e| Error::io("resolving symlink", link, e))?;
    if target.starts_with(root) {
        Ok(())
    } else {
        Err(Error::UnsafePath {
            path: link.to_owned(),
            reason: "symlink leads outside the source directory",
        })
    }
}

fn walk_error(e: walkdir::Error) -> Error {
    let path = e.path().map(Path::to_owned).unwrap_or_default();
    if e.loop_ancestor().is_some() {
        return Error::UnsafePath {
            path,
            reason: "symlink loop",
        };
    }
    match e.into_io_error() {
        Some(io) => Error::io("walking", path, io),
        None => Error::UnsafePath {
            path,
            reason: "unreadable directory entry",
        },
    }
}

/// A temporary directory beside the destination, renamed into place by [`Staging::commit`] and
/// removed (with everything written so far) if dropped before that.
struct Staging {
    dir: tempfile::TempDir,
    dst: PathBuf,
    file_mode: u32,
    dir_mode: u32,
}

impl Staging {
    fn new(
        src_root: &Path,
        dst: &Path,
        prefix: &str,
        file_mode: u32,
        dir_mode: u32,
    ) -> Result<Self> {
        match fs::symlink_metadata(dst) {
            Ok(meta) if meta.is_dir() => {
                let mut entries = fs::read_dir(dst).map_err(|e| Error::io("reading", dst, e))?;
                if entries.next().is_some() {
                    return Err(Error::DestinationNotEmpty(dst.to_owned()));
                }
            }
            Ok(_) => return Err(Error::DestinationNotEmpty(dst.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("checking destination", dst, e)),
        }
        let parent = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let real_parent = fs::canonicalize(parent)
            .map_err(|e| Error::io("opening destination parent", parent, e))?;
        if real_parent.starts_with(src_root) {
            return Err(Error::UnsafePath {
                path: dst.to_owned(),
                reason: "the destination is inside the source directory",
            });
        }
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&real_parent)
            .map_err(|e| Error::io("creating a temporary directory in", &real_parent, e))?;
        Ok(Staging {
            dir,
            dst: dst.to_owned(),
            file_mode,
            dir_mode,
        })
    }

    fn path_of(&self, rel: &str) -> PathBuf {
        // `rel` comes from `relative()`: plain components joined by '/'.
        self.dir.path().join(rel)
    }

    fn create_dir(&self, rel: &str) -> Result<()> {
        let path = self.path_of(rel);
        self.dir_builder()
            .create(&path)
            .map_err(|e| Error::io("creating directory", path, e))
    }

    fn create_dir_all(&self, rel: &str) -> Result<()> {
        let path = self.path_of(rel);
        self.dir_builder()
            .recursive(true)
            .create(&path)
            .map_err(|e| Error::io("creating directory", path, e))
    }

    fn dir_builder(&self) -> fs::DirBuilder {
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, self.dir_mode);
        builder
    }

    /// Create `rel + suffix` (never overwriting, never following a symlink) with `bytes`.
    fn write_file(&self, rel: &str, suffix: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path_of(&format!("{rel}{suffix}"));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, self.file_mode);
        let mut file = options
            .open(&path)
            .map_err(|e| Error::io("creating", &path, e))?;
        file.write_all(bytes)
            .map_err(|e| Error::io("writing", &path, e))
    }

    fn commit(self) -> Result<()> {
        let tmp = self.dir.keep();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The staging dir is created 0700; give the result its intended mode.
            fs::set_permissions(&tmp, fs::Permissions::from_mode(self.dir_mode)).map_err(|e| {
                let _ = fs::remove_dir_all(&tmp);
                Error::io("setting permissions of", &tmp, e)
            })?;
        }
        // rename(2) atomically replaces an empty directory, which is the only kind `new` allows.
        fs::rename(&tmp, &self.dst).map_err(|e| {
            let _ = fs::remove_dir_all(&tmp);
            Error::io("moving the result into", &self.dst, e)
        })
    }
}
