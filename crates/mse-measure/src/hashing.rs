//! SHA-256 of files, one at a time or many in parallel.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use sha2::{Digest as _, Sha256};

use crate::cache::{DigestCache, Stamp};
use crate::{Digest, Error, Result};

/// Read size; big enough that syscalls do not dominate, small enough to stay in cache.
const CHUNK: usize = 256 * 1024;

/// Beyond this many threads, hashing a runtime is bound by the disk, not the CPU.
const MAX_THREADS: usize = 8;

/// SHA-256 of a file's content.
pub fn file_digest(path: &Path) -> Result<Digest> {
    let mut buf = vec![0; CHUNK];
    digest_with(path, &mut buf)
}

fn digest_with(path: &Path, buf: &mut [u8]) -> Result<Digest> {
    let mut file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut hasher = Sha256::new();
    loop {
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading", path, e)),
        }
    }
    Ok(hasher.finalize().into())
}

/// [`file_digest`], reading the file only if its `stat` changed since `cache` saw it (symlinks
/// followed: `/proc/self/exe` is cached as the binary it points to).
pub fn file_digest_cached(path: &Path, cache: &mut DigestCache) -> Result<Digest> {
    let stamp = std::fs::metadata(path).ok().and_then(|m| Stamp::of(&m));
    if let Some(d) = cache.get(path, stamp) {
        return Ok(d);
    }
    let digest = file_digest(path)?;
    cache.put(path, stamp, digest);
    Ok(digest)
}

/// SHA-256 of every file, in the order given; spread over the available cores.
pub(crate) fn digest_files(paths: &[PathBuf]) -> Result<Vec<Digest>> {
    let threads = thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_THREADS)
        .min(paths.len().div_ceil(16).max(1));
    if threads <= 1 {
        let mut buf = vec![0; CHUNK];
        return paths.iter().map(|p| digest_with(p, &mut buf)).collect();
    }

    // Workers take the next index from a shared counter, so one large file does not hold up
    // a whole pre-assigned share.
    let next = AtomicUsize::new(0);
    let worker = || -> Result<Vec<(usize, Digest)>> {
        let mut buf = vec![0; CHUNK];
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(i) else {
                return Ok(done);
            };
            done.push((i, digest_with(path, &mut buf)?));
        }
    };
    let results: Vec<Result<Vec<(usize, Digest)>>> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    });

    let mut digests: Vec<Option<Digest>> = vec![None; paths.len()];
    for result in results {
        for (i, d) in result? {
            if let Some(slot) = digests.get_mut(i) {
                *slot = Some(d);
            }
        }
    }
    // A worker that panicked left holes; report them as errors instead of trusting partial work.
    digests
        .into_iter()
        .zip(paths)
        .map(|(d, p)| {
            d.ok_or_else(|| Error::io("hashing", p, std::io::Error::other("hashing thread failed")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_and_sequential_agree() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..100)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, vec![i as u8; i * 1000]).unwrap();
                p
            })
            .collect();
        let parallel = digest_files(&paths).unwrap();
        for (p, d) in paths.iter().zip(&parallel) {
            assert_eq!(&file_digest(p).unwrap(), d);
        }
        assert_eq!(
            hex::encode(file_digest(&paths[0]).unwrap()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths: Vec<PathBuf> = (0..40)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, b"x").unwrap();
                p
            })
            .collect();
        paths.push(dir.path().join("missing"));
        let err = digest_files(&paths).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
