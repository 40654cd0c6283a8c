//! Canonical digest of the Python runtime trees (standard library, site-packages, ...).
//!
//! Format (v2), specified in `docs/measurement.md`:
//!
//! ```text
//! mse-runtime/v2\n
//! root <index>\n                                  for each root, in the order given
//!   dir <len>:<path>\n                            entries sorted by path bytes
//!   file <x|-> <sha256 hex> <len>:<path>\n
//!   link <len>:<path> <len>:<target>\n
//! ```
//!
//! Paths are relative to their root, components joined by `/`; a root that is a file has the
//! empty path. Symlinks are recorded (target as stored), not followed. Every regular file
//! counts, bytecode too: CPython loads `__pycache__/*.pyc` instead of the source when the
//! source's size and time match its header, and a lone `x.pyc` when no `x.py` exists, so an
//! unmeasured `.pyc` would be code that runs without being measured (v1 skipped them).

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use walkdir::WalkDir;

use crate::cache::{DigestCache, Stamp};
use crate::hashing::digest_files;
use crate::manifest::put_bytes;
use crate::{Digest, Error, Result};

/// First line of the runtime stream.
pub const RUNTIME_HEADER: &str = "mse-runtime/v2";

/// The canonical digest of a Python runtime, SHA-256 of [`runtime_canonical_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuntimeDigest(pub Digest);

/// The runtime roots of a node, in `sys.path` order, as the node measures them: the entries of
/// the interpreter's standard library `stdlib` one by one (sorted by name bytes, without its own
/// `site-packages`, which is not on the app's `sys.path`), then each
/// `site_packages` directory in the order given. A missing `stdlib` contributes nothing.
///
/// The node and the client both call this, so their measurements agree by construction.
pub fn python_runtime_roots(
    stdlib: Option<&Path>,
    site_packages: &[PathBuf],
) -> Result<Vec<PathBuf>> {
    let mut roots = Vec::new();
    if let Some(stdlib) = stdlib.filter(|p| p.is_dir()) {
        let mut entries = Vec::new();
        for entry in fs::read_dir(stdlib)
            .map_err(|e| Error::io("reading the standard library", stdlib, e))?
        {
            let entry = entry.map_err(|e| Error::io("reading the standard library", stdlib, e))?;
            let name = entry.file_name();
            if name != "site-packages" {
                entries.push(entry.path());
            }
        }
        // Byte order of the names: the same on every machine.
        entries.sort_by(|a, b| {
            a.as_os_str()
                .as_encoded_bytes()
                .cmp(b.as_os_str().as_encoded_bytes())
        });
        roots.extend(entries);
    }
    roots.extend(site_packages.iter().cloned());
    Ok(roots)
}

/// Digest of the runtime trees under `roots` (directories or single files, in `sys.path` order).
///
/// The roots' own locations are not part of the digest, only their order and content, so the
/// same runtime unpacked elsewhere gives the same value.
pub fn runtime_digest(roots: &[&Path]) -> Result<RuntimeDigest> {
    runtime_digest_cached(roots, &mut DigestCache::in_memory())
}

/// [`runtime_digest`], reading only the files whose `stat` changed since `cache` saw them.
/// The caller saves the cache.
pub fn runtime_digest_cached(roots: &[&Path], cache: &mut DigestCache) -> Result<RuntimeDigest> {
    let bytes = canonical_bytes(roots, cache)?;
    Ok(RuntimeDigest(Sha256::digest(&bytes).into()))
}

enum Kind {
    Dir,
    File { exec: bool, index: usize },
    Link(Vec<u8>),
}

struct Entry {
    path: Vec<u8>,
    kind: Kind,
}

/// The canonical stream [`runtime_digest`] hashes: diff two of them to see why runtimes differ.
pub fn runtime_canonical_bytes(roots: &[&Path]) -> Result<Vec<u8>> {
    canonical_bytes(roots, &mut DigestCache::in_memory())
}

fn canonical_bytes(roots: &[&Path], cache: &mut DigestCache) -> Result<Vec<u8>> {
    let mut per_root: Vec<Vec<Entry>> = Vec::with_capacity(roots.len());
    let mut files: Vec<(PathBuf, Option<Stamp>)> = Vec::new();
    for root in roots {
        per_root.push(list_root(root, &mut files)?);
    }
    let digests = cached_digests(&files, cache)?;

    let mut out = Vec::with_capacity(64 + files.len() * 120);
    out.extend_from_slice(RUNTIME_HEADER.as_bytes());
    out.push(b'\n');
    for (index, entries) in per_root.iter().enumerate() {
        out.extend_from_slice(format!("root {index}\n").as_bytes());
        for entry in entries {
            match &entry.kind {
                Kind::Dir => {
                    out.extend_from_slice(b"dir ");
                    put_bytes(&mut out, &entry.path);
                }
                Kind::File { exec, index } => {
                    let digest = digests.get(*index).ok_or_else(|| {
                        Error::io(
                            "hashing",
                            "runtime",
                            std::io::Error::other("missing digest"),
                        )
                    })?;
                    out.extend_from_slice(if *exec { b"file x " } else { b"file - " });
                    out.extend_from_slice(hex::encode(digest).as_bytes());
                    out.push(b' ');
                    put_bytes(&mut out, &entry.path);
                }
                Kind::Link(target) => {
                    out.extend_from_slice(b"link ");
                    put_bytes(&mut out, &entry.path);
                    out.push(b' ');
                    put_bytes(&mut out, target);
                }
            }
            out.push(b'\n');
        }
    }
    Ok(out)
}

/// Entries of one root, sorted by path bytes; regular files are appended to `files` for hashing.
fn list_root(root: &Path, files: &mut Vec<(PathBuf, Option<Stamp>)>) -> Result<Vec<Entry>> {
    let meta = fs::metadata(root).map_err(|e| Error::io("opening runtime root", root, e))?;
    if meta.is_file() {
        files.push((root.to_owned(), Stamp::of(&meta)));
        return Ok(vec![Entry {
            path: Vec::new(),
            kind: Kind::File {
                exec: is_exec(&meta),
                index: files.len() - 1,
            },
        }]);
    }
    if !meta.is_dir() {
        return Err(Error::UnsupportedFileType(root.to_owned()));
    }

    let mut entries = Vec::new();
    for entry in WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(Path::to_owned)
                .unwrap_or_else(|| root.to_owned());
            let io = e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("unreadable entry"));
            Error::io("walking", path, io)
        })?;
        if entry.depth() == 0 {
            continue;
        }
        let path = relative_bytes(root, entry.path())?;
        let file_type = entry.file_type();
        let kind = if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_symlink() {
            let target = fs::read_link(entry.path())
                .map_err(|e| Error::io("reading link", entry.path(), e))?;
            Kind::Link(target.into_os_string().into_encoded_bytes())
        } else if file_type.is_file() {
            let meta = entry
                .metadata()
                .map_err(|e| Error::io("reading metadata of", entry.path(), e.into()))?;
            files.push((entry.path().to_owned(), Stamp::of(&meta)));
            Kind::File {
                exec: is_exec(&meta),
                index: files.len() - 1,
            }
        } else {
            return Err(Error::UnsupportedFileType(entry.path().to_owned()));
        };
        entries.push(Entry { path, kind });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// Digests of `files`, in order: from the cache where the stamp is unchanged, hashed (in
/// parallel) and remembered otherwise.
fn cached_digests(
    files: &[(PathBuf, Option<Stamp>)],
    cache: &mut DigestCache,
) -> Result<Vec<Digest>> {
    let cached: Vec<Option<Digest>> = files
        .iter()
        .map(|(path, stamp)| cache.get(path, *stamp))
        .collect();
    let missing: Vec<PathBuf> = files
        .iter()
        .zip(&cached)
        .filter(|(_, c)| c.is_none())
        .map(|((path, _), _)| path.clone())
        .collect();
    let mut fresh = digest_files(&missing)?.into_iter();
    let mut out = Vec::with_capacity(files.len());
    for ((path, stamp), cached) in files.iter().zip(cached) {
        let digest = match cached {
            Some(d) => d,
            None => {
                let d = fresh.next().ok_or_else(|| {
                    Error::io("hashing", path, std::io::Error::other("missing digest"))
                })?;
                cache.put(path, *stamp, d);
                d
            }
        };
        out.push(digest);
    }
    Ok(out)
}

/// Relative path as bytes with `/` separators.
fn relative_bytes(root: &Path, path: &Path) -> Result<Vec<u8>> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| Error::io("walking", path, std::io::Error::other("outside its root")))?;
    let mut out = Vec::new();
    for part in rel.iter() {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part.as_encoded_bytes());
    }
    Ok(out)
}

#[cfg(unix)]
fn is_exec(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_exec(_meta: &fs::Metadata) -> bool {
    false
}
