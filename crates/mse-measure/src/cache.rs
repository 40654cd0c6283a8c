//! A file-digest cache keyed by what `stat` says, so that a node start (or a deploy) does not
//! read the whole Python runtime again when nothing changed.
//!
//! Only the *simulated* measurement needs it: on hardware the CPU or the VMM measures, and the
//! node never hashes its runtime. The cache lives next to the simulation root (node) or the
//! runtime cache (CLI), on the host, which the simulation does not defend against anyway; a
//! wrong entry can only make the simulated measurement differ from the client's, which then
//! refuses the node.
//!
//! An entry is reused when device, inode, size, modification and status-change times are all
//! unchanged (what `git` trusts for its index). A file changed within [`SETTLE`] of being hashed
//! is not cached: file times are only as fine as the kernel's clock tick, and a second write in
//! the same tick would otherwise go unnoticed.
//!
//! File format (v1), one line per file, every field space-separated, the path hex-encoded:
//!
//! ```text
//! mse-digest-cache/v1\n
//! <sha256 hex> <dev> <ino> <len> <mtime s> <mtime ns> <ctime s> <ctime ns> <path hex>\n
//! ```
//!
//! A cache that does not parse is ignored as a whole (everything is hashed again). When saved,
//! the cache drops the entries of files that no longer exist (a rebuilt runtime, a removed venv),
//! so it does not grow with every runtime the machine ever had.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Digest, Error, Result};

/// First line of the cache file.
pub const CACHE_HEADER: &str = "mse-digest-cache/v1";

/// Files modified more recently than this before being hashed are not cached.
pub const SETTLE: Duration = Duration::from_secs(2);

/// What `stat` says about a file; any change means "hash again".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    #[cfg(unix)]
    pub(crate) fn of(meta: &Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_meta: &Metadata) -> Option<Stamp> {
        None
    }

    /// Changed (content or status) within [`SETTLE`] of `now`, or in the future.
    fn is_recent(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(UNIX_EPOCH) else {
            return true;
        };
        let newest = self.mtime.max(self.ctime);
        let Ok(secs) = u64::try_from(newest.0) else {
            return true;
        };
        let changed = Duration::from_secs(secs)
            .saturating_add(Duration::from_nanos(u64::try_from(newest.1).unwrap_or(0)));
        changed.saturating_add(SETTLE) > now
    }
}

/// One cached digest, and whether this process used it (unused ones are checked at save).
#[derive(Clone, Copy, Debug)]
struct Entry {
    stamp: Stamp,
    digest: Digest,
    used: bool,
}

/// A file-digest cache; see the module docs.
#[derive(Debug, Default)]
pub struct DigestCache {
    file: Option<PathBuf>,
    /// Keyed by the path's bytes: hashing them is much cheaper than `Path`'s component-wise
    /// hash, and a start looks up every file of the runtime.
    entries: HashMap<Box<[u8]>, Entry>,
    dirty: bool,
}

fn key(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

impl DigestCache {
    /// A cache that is never saved (every digest is computed once per process).
    pub fn in_memory() -> Self {
        DigestCache::default()
    }

    /// The cache stored in `file`. A missing, unreadable or malformed file gives an empty
    /// cache: the cache can only save time, never change a result.
    pub fn open(file: &Path) -> Self {
        let entries = fs::read(file)
            .ok()
            .and_then(|bytes| parse(&bytes))
            .unwrap_or_default();
        DigestCache {
            file: Some(file.to_owned()),
            entries,
            dirty: false,
        }
    }

    /// A cache parsed from the bytes of a cache file (not tied to a file); `None` if they do
    /// not parse. Never panics, whatever the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        parse(bytes).map(|entries| DigestCache {
            file: None,
            entries,
            dirty: false,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The digest of `path` if its stamp is unchanged.
    pub(crate) fn get(&mut self, path: &Path, stamp: Option<Stamp>) -> Option<Digest> {
        let stamp = stamp?;
        let entry = self.entries.get_mut(key(path))?;
        entry.used = true;
        (entry.stamp == stamp).then_some(entry.digest)
    }

    /// Remember a digest just computed, unless the file changed too recently to be sure.
    pub(crate) fn put(&mut self, path: &Path, stamp: Option<Stamp>, digest: Digest) {
        self.put_at(path, stamp, digest, SystemTime::now());
    }

    fn put_at(&mut self, path: &Path, stamp: Option<Stamp>, digest: Digest, now: SystemTime) {
        let Some(stamp) = stamp else { return };
        if stamp.is_recent(now) {
            self.entries.remove(key(path));
        } else {
            let entry = Entry {
                stamp,
                digest,
                used: true,
            };
            self.entries.insert(key(path).into(), entry);
        }
        self.dirty = true;
    }

    /// Write the cache back (atomically: a temporary file renamed over it), if anything changed.
    pub fn save(&mut self) -> Result<()> {
        let Some(file) = self.file.as_deref().filter(|_| self.dirty) else {
            return Ok(());
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        // Entries this process did not use may belong to another runtime: keep those whose file
        // still exists.
        self.entries
            .retain(|k, e| e.used || path_of(k).is_some_and(|p| fs::symlink_metadata(p).is_ok()));
        let mut out = Vec::with_capacity(64 + self.entries.len() * 200);
        out.extend_from_slice(CACHE_HEADER.as_bytes());
        out.push(b'\n');
        let mut entries: Vec<_> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (path, e) in entries {
            let s = &e.stamp;
            out.extend_from_slice(
                format!(
                    "{} {} {} {} {} {} {} {} {}\n",
                    hex::encode(e.digest),
                    s.dev,
                    s.ino,
                    s.len,
                    s.mtime.0,
                    s.mtime.1,
                    s.ctime.0,
                    s.ctime.1,
                    hex::encode(path),
                )
                .as_bytes(),
            );
        }
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Error::io("creating a temporary file in", dir, e))?;
        tmp.write_all(&out)
            .map_err(|e| Error::io("writing", tmp.path().to_owned(), e))?;
        tmp.persist(file)
            .map_err(|e| Error::io("replacing", file, e.error))?;
        self.dirty = false;
        Ok(())
    }
}

/// The entries of a cache file, or `None` if anything is off.
fn parse(bytes: &[u8]) -> Option<HashMap<Box<[u8]>, Entry>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.split_terminator('\n');
    if lines.next()? != CACHE_HEADER {
        return None;
    }
    let mut entries = HashMap::new();
    for line in lines {
        let mut f = line.split(' ');
        let mut digest: Digest = [0; 32];
        hex::decode_to_slice(f.next()?, &mut digest).ok()?;
        let mut num = || f.next().and_then(|s| s.parse::<u64>().ok());
        let (dev, ino, len) = (num()?, num()?, num()?);
        let mut signed = || f.next().and_then(|s| s.parse::<i64>().ok());
        let mtime = (signed()?, signed()?);
        let ctime = (signed()?, signed()?);
        let path = hex::decode(f.next()?).ok()?;
        if f.next().is_some() {
            return None;
        }
        path_of(&path)?;
        let stamp = Stamp {
            dev,
            ino,
            len,
            mtime,
            ctime,
        };
        let entry = Entry {
            stamp,
            digest,
            used: false,
        };
        entries.insert(path.into_boxed_slice(), entry);
    }
    Some(entries)
}

/// Bytes back to a path: any bytes on Unix, UTF-8 elsewhere.
#[cfg(unix)]
fn path_of(bytes: &[u8]) -> Option<&Path> {
    use std::os::unix::ffi::OsStrExt;
    Some(Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

#[cfg(not(unix))]
fn path_of(bytes: &[u8]) -> Option<&Path> {
    std::str::from_utf8(bytes).ok().map(Path::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, content).unwrap();
        p
    }

    /// A clock past SETTLE: the files just written count as settled.
    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    #[test]
    fn round_trip_and_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), "a", b"hello");
        let stamp = Stamp::of(&fs::metadata(&p).unwrap());
        let file = dir.path().join("cache");
        let mut cache = DigestCache::open(&file);
        cache.put_at(&p, stamp, [7; 32], later());
        cache.save().unwrap();
        let mut cache = DigestCache::open(&file);
        assert_eq!(cache.get(&p, stamp), Some([7; 32]));
    }

    #[test]
    fn saving_drops_entries_of_files_that_are_gone_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let kept = file(dir.path(), "kept", b"of another runtime");
        let gone = file(dir.path(), "gone", b"removed venv");
        let used = file(dir.path(), "used", b"this runtime");
        let stamp = |p: &Path| Stamp::of(&fs::metadata(p).unwrap());
        let cache_file = dir.path().join("cache");
        let mut cache = DigestCache::open(&cache_file);
        for (p, d) in [(&kept, 1), (&gone, 2), (&used, 3)] {
            cache.put_at(p, stamp(p), [d; 32], later());
        }
        cache.save().unwrap();
        fs::remove_file(&gone).unwrap();

        // A later process uses one entry and adds one; the unused ones are checked at save.
        let mut cache = DigestCache::open(&cache_file);
        assert_eq!(cache.get(&used, stamp(&used)), Some([3; 32]));
        let new = file(dir.path(), "new", b"x");
        cache.put_at(&new, stamp(&new), [4; 32], later());
        cache.save().unwrap();

        let mut cache = DigestCache::open(&cache_file);
        assert_eq!(cache.len(), 3, "kept, used and new; not gone");
        assert_eq!(cache.get(&kept, stamp(&kept)), Some([1; 32]));
        assert_eq!(cache.get(&new, stamp(&new)), Some([4; 32]));
    }

    #[test]
    fn a_rewritten_file_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), "a", b"hello");
        let stamp = Stamp::of(&fs::metadata(&p).unwrap());
        let mut cache = DigestCache::in_memory();
        cache.put_at(&p, stamp, [7; 32], later());
        // Same size, and the modification time put back: the status-change time still moves.
        std::thread::sleep(Duration::from_millis(20));
        let before = fs::metadata(&p).unwrap().modified().unwrap();
        fs::write(&p, b"HELLO").unwrap();
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(before)
            .unwrap();
        let now = Stamp::of(&fs::metadata(&p).unwrap());
        assert_eq!(cache.get(&p, now), None);
    }

    #[test]
    fn a_file_changed_just_now_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fresh");
        fs::write(&p, b"x").unwrap();
        let stamp = Stamp::of(&fs::metadata(&p).unwrap());
        let mut cache = DigestCache::in_memory();
        cache.put(&p, stamp, [1; 32]);
        assert_eq!(cache.get(&p, stamp), None);
    }

    #[test]
    fn malformed_caches_are_ignored_whole() {
        for bad in [
            &b""[..],
            b"mse-digest-cache/v2\n",
            b"mse-digest-cache/v1\nzz 1 2 3 4 5 6 7 61\n",
            b"mse-digest-cache/v1\n0000000000000000000000000000000000000000000000000000000000000000 1 2 3 4 5 6 7\n",
            b"mse-digest-cache/v1\n0000000000000000000000000000000000000000000000000000000000000000 1 2 3 4 5 6 7 61 extra\n",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        let good = b"mse-digest-cache/v1\n0000000000000000000000000000000000000000000000000000000000000000 1 2 3 4 5 6 7 61\n";
        assert_eq!(parse(good).map(|e| e.len()), Some(1));
    }
}
