//! The measurement manifest and its canonical encoding.
//!
//! Format (v1), specified in `docs/measurement.md`:
//!
//! ```text
//! mse-measurement/v1\n
//! node <sha256 hex>\n
//! runtime <sha256 hex>\n
//! code <count>\n
//! file <sha256 hex> <len>:<path>\n        count times, sorted by path bytes
//! args <count>\n
//! arg <len>:<bytes>\n                     count times, in launch order
//! ```
//!
//! Every variable-length value is written as `<decimal byte length>:<bytes>`, so paths and
//! arguments may hold spaces, newlines or anything else without ambiguity. Hex is lowercase.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use walkdir::WalkDir;

use crate::cache::DigestCache;
use crate::hashing::{digest_files, file_digest_cached};
use crate::runtime::RuntimeDigest;
use crate::{Digest, Error, Result};

/// First line of the canonical manifest; changes with any change of the format.
pub const MANIFEST_HEADER: &str = "mse-measurement/v1";

/// Everything the simulated measurement covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// SHA-256 of the node binary.
    pub node: Digest,
    /// Canonical digest of the Python runtime.
    pub runtime: Digest,
    /// (POSIX relative path, SHA-256 of the bytes as shipped) of every application file.
    pub code: Vec<(String, Digest)>,
    /// The node's launch arguments (`argv[1..]`), in order.
    pub args: Vec<String>,
}

impl Manifest {
    /// Build from what the node runs: its binary, the runtime tree, the (encrypted) app dir as
    /// shipped, and `argv[1..]`.
    pub fn from_parts(
        node_binary: &Path,
        runtime: &RuntimeDigest,
        app_dir: &Path,
        args: &[String],
    ) -> Result<Self> {
        Self::from_parts_cached(
            node_binary,
            runtime,
            app_dir,
            args,
            &mut DigestCache::in_memory(),
        )
    }

    /// [`from_parts`](Self::from_parts), taking the node binary's digest from `cache` when its
    /// `stat` is unchanged. The caller saves the cache.
    pub fn from_parts_cached(
        node_binary: &Path,
        runtime: &RuntimeDigest,
        app_dir: &Path,
        args: &[String],
        cache: &mut DigestCache,
    ) -> Result<Self> {
        Ok(Manifest {
            node: file_digest_cached(node_binary, cache)?,
            runtime: runtime.0,
            code: code_digests(app_dir)?,
            args: args.to_vec(),
        })
    }

    /// The canonical bytes (see the module docs). `code` is encoded sorted by path whatever
    /// order it is in.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut code: Vec<&(String, Digest)> = self.code.iter().collect();
        code.sort();
        let mut out = Vec::with_capacity(160 + 80 * code.len());
        out.extend_from_slice(MANIFEST_HEADER.as_bytes());
        out.push(b'\n');
        put_line(&mut out, &format!("node {}", hex::encode(self.node)));
        put_line(&mut out, &format!("runtime {}", hex::encode(self.runtime)));
        put_line(&mut out, &format!("code {}", code.len()));
        for (path, digest) in code {
            out.extend_from_slice(format!("file {} ", hex::encode(digest)).as_bytes());
            put_bytes(&mut out, path.as_bytes());
            out.push(b'\n');
        }
        put_line(&mut out, &format!("args {}", self.args.len()));
        for arg in &self.args {
            out.extend_from_slice(b"arg ");
            put_bytes(&mut out, arg.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// SHA-256 of the canonical bytes: the simulated MRENCLAVE.
    pub fn measurement(&self) -> Digest {
        Sha256::digest(self.to_canonical_bytes()).into()
    }

    /// Parse canonical bytes back (e.g. to explain a mismatch). Strict: anything
    /// [`to_canonical_bytes`](Self::to_canonical_bytes) would not produce is refused, so
    /// `parse(b).to_canonical_bytes() == b`. Never panics, whatever `bytes` holds.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        r.literal(MANIFEST_HEADER.as_bytes(), "header")?;
        r.literal(b"\nnode ", "node line")?;
        let node = r.digest()?;
        r.literal(b"\nruntime ", "runtime line")?;
        let runtime = r.digest()?;
        r.literal(b"\ncode ", "code line")?;
        let count = r.number()?;
        r.literal(b"\n", "end of line")?;
        let mut code: Vec<(String, Digest)> = Vec::new();
        for _ in 0..count {
            r.literal(b"file ", "file line")?;
            let digest = r.digest()?;
            r.literal(b" ", "space")?;
            let path = r.utf8_string()?;
            r.literal(b"\n", "end of line")?;
            if code
                .last()
                .is_some_and(|(prev, _)| prev.as_bytes() >= path.as_bytes())
            {
                return Err(r.malformed("file paths not strictly sorted"));
            }
            code.push((path, digest));
        }
        r.literal(b"args ", "args line")?;
        let count = r.number()?;
        r.literal(b"\n", "end of line")?;
        let mut args = Vec::new();
        for _ in 0..count {
            r.literal(b"arg ", "arg line")?;
            args.push(r.utf8_string()?);
            r.literal(b"\n", "end of line")?;
        }
        if r.pos != bytes.len() {
            return Err(r.malformed("trailing bytes"));
        }
        Ok(Manifest {
            node,
            runtime,
            code,
            args,
        })
    }
}

/// (POSIX relative path, SHA-256) of every regular file under `app_dir`, sorted by path.
///
/// Directories are not listed (an archive of files recreates them); symlinks and special files
/// are refused, since nothing but plain files is shipped.
pub fn code_digests(app_dir: &Path) -> Result<Vec<(String, Digest)>> {
    let mut listed: Vec<(String, PathBuf)> = Vec::new();
    for entry in WalkDir::new(app_dir).follow_links(false) {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(Path::to_owned)
                .unwrap_or_else(|| app_dir.to_owned());
            let io = e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("unreadable entry"));
            Error::io("walking", path, io)
        })?;
        let file_type = entry.file_type();
        if entry.depth() == 0 || file_type.is_dir() {
            continue;
        }
        if file_type.is_symlink() {
            return Err(Error::SymlinkInCode(entry.path().to_owned()));
        }
        if !file_type.is_file() {
            return Err(Error::UnsupportedFileType(entry.path().to_owned()));
        }
        let rel = entry
            .path()
            .strip_prefix(app_dir)
            .ok()
            .and_then(|r| {
                r.iter()
                    .map(|part| part.to_str())
                    .collect::<Option<Vec<&str>>>()
            })
            .ok_or_else(|| Error::NonUtf8Path(entry.path().to_owned()))?
            .join("/");
        listed.push((rel, entry.path().to_owned()));
    }
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let paths: Vec<PathBuf> = listed.iter().map(|(_, p)| p.clone()).collect();
    let digests = digest_files(&paths)?;
    Ok(listed
        .into_iter()
        .map(|(rel, _)| rel)
        .zip(digests)
        .collect())
}

fn put_line(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

/// `<decimal length>:<bytes>`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn malformed(&self, reason: &'static str) -> Error {
        Error::Malformed {
            offset: self.pos,
            reason,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).ok_or(self.malformed(what))?;
        let out = self.bytes.get(self.pos..end).ok_or(self.malformed(what))?;
        self.pos = end;
        Ok(out)
    }

    fn literal(&mut self, expected: &[u8], what: &'static str) -> Result<()> {
        let start = self.pos;
        if self.take(expected.len(), what)? == expected {
            Ok(())
        } else {
            self.pos = start;
            Err(self.malformed(what))
        }
    }

    fn digest(&mut self) -> Result<Digest> {
        let text = self.take(64, "64 hex digits")?;
        let mut out = [0; 32];
        let lowercase = text.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if !lowercase || hex::decode_to_slice(text, &mut out).is_err() {
            return Err(self.malformed("64 lowercase hex digits"));
        }
        Ok(out)
    }

    /// A decimal number without sign or leading zeros.
    fn number(&mut self) -> Result<usize> {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        let digits = self.bytes.get(start..self.pos).unwrap_or_default();
        if digits.is_empty() || (digits.len() > 1 && digits.first() == Some(&b'0')) {
            return Err(self.malformed("a decimal number without leading zeros"));
        }
        std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(self.malformed("a number that fits in usize"))
    }

    fn utf8_string(&mut self) -> Result<String> {
        let len = self.number()?;
        self.literal(b":", "':' after a length")?;
        let bytes = self.take(len, "as many bytes as the length says")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.malformed("UTF-8 text"))
    }
}
