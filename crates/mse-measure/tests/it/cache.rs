//! The digest cache changes how long a measurement takes, never its value.

use std::fs;
use std::path::Path;
use std::time::Duration;

use mse_measure::{DigestCache, SETTLE, runtime_digest, runtime_digest_cached};

fn tree(root: &Path) {
    for (name, content) in [
        ("lib/os.py", &b"import sys\n"[..]),
        ("lib/json/__init__.py", b"# json\n"),
        ("site/flask/app.py", b"class Flask: pass\n"),
    ] {
        let p = root.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
}

#[test]
fn a_cached_runtime_digest_equals_the_uncached_one_and_sees_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let rt = dir.path().join("rt");
    tree(&rt);
    let roots = [rt.join("lib"), rt.join("site")];
    let roots: Vec<&Path> = roots.iter().map(|p| p.as_path()).collect();
    let cache_file = dir.path().join("digest-cache");
    let fresh = runtime_digest(&roots).unwrap();

    // Files younger than SETTLE are hashed but not cached.
    let mut cache = DigestCache::open(&cache_file);
    assert_eq!(runtime_digest_cached(&roots, &mut cache).unwrap(), fresh);
    assert!(cache.is_empty(), "fresh files must not be cached");

    std::thread::sleep(SETTLE + Duration::from_millis(100));
    let mut cache = DigestCache::open(&cache_file);
    assert_eq!(runtime_digest_cached(&roots, &mut cache).unwrap(), fresh);
    cache.save().unwrap();
    let mut cache = DigestCache::open(&cache_file);
    assert_eq!(cache.len(), 3, "settled files are cached and saved");
    assert_eq!(runtime_digest_cached(&roots, &mut cache).unwrap(), fresh);

    // Same size, new content: the stamp changes, so the cache cannot hide it.
    fs::write(rt.join("site/flask/app.py"), b"class Flask: PASS\n").unwrap();
    let changed = runtime_digest_cached(&roots, &mut cache).unwrap();
    assert_ne!(changed, fresh);
    assert_eq!(changed, runtime_digest(&roots).unwrap());
}

#[test]
fn a_corrupt_cache_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let rt = dir.path().join("rt");
    tree(&rt);
    let cache_file = dir.path().join("digest-cache");
    fs::write(&cache_file, b"mse-digest-cache/v1\nnot a line\n").unwrap();
    let mut cache = DigestCache::open(&cache_file);
    assert!(cache.is_empty());
    let roots = [rt.as_path()];
    assert_eq!(
        runtime_digest_cached(&roots, &mut cache).unwrap(),
        runtime_digest(&roots).unwrap()
    );
}
