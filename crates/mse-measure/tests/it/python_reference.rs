//! The Python reference implementation printed in docs/measurement.md computes the same digests
//! as this crate, on the worked example and on pseudo-random trees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use mse_measure::{Manifest, runtime_digest};

fn python() -> Option<PathBuf> {
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/python");
    let candidate = std::env::var_os("MSE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or(fallback);
    if candidate.exists() {
        return Some(candidate);
    }
    if std::env::var("MSE_TEST_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("MSE_TEST_PYTHON: no Python at {}", candidate.display());
    }
    println!(
        "SKIPPED: MSE_TEST_PYTHON not set and {} missing",
        candidate.display()
    );
    None
}

/// The ```python block under "Reference implementation" in docs/measurement.md.
fn reference_code() -> String {
    let doc = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/measurement.md"
    ))
    .unwrap();
    let section = doc
        .split("## Reference implementation")
        .nth(1)
        .expect("section");
    let code = section.split("```python\n").nth(1).expect("python block");
    code.split("\n```").next().unwrap().to_owned()
}

/// Python's (runtime digest, measurement) for these inputs.
fn python_digests(
    py: &Path,
    node: &Path,
    roots: &[PathBuf],
    app: &Path,
    args: &[String],
) -> (String, String) {
    let driver = r#"
import json, sys
node, roots, app, args = json.loads(sys.argv[1])
roots = [r.encode("utf-8", "surrogateescape") for r in roots]
print(runtime_digest(roots))
print(measurement(node, roots, app, args))
"#;
    let input = serde_like_json(node, roots, app, args);
    let out = Command::new(py)
        .arg("-c")
        .arg(format!("{}\n{driver}", reference_code()))
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    (
        lines.next().unwrap().to_owned(),
        lines.next().unwrap().to_owned(),
    )
}

/// JSON array [node, roots, app, args]; paths here are ASCII temp paths.
fn serde_like_json(node: &Path, roots: &[PathBuf], app: &Path, args: &[String]) -> String {
    let s = |v: &str| {
        let mut out = String::from("\"");
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let p = |p: &Path| s(p.to_str().unwrap());
    format!(
        "[{}, [{}], {}, [{}]]",
        p(node),
        roots.iter().map(|r| p(r)).collect::<Vec<_>>().join(", "),
        p(app),
        args.iter().map(|a| s(a)).collect::<Vec<_>>().join(", ")
    )
}

fn rust_digests(node: &Path, roots: &[PathBuf], app: &Path, args: &[String]) -> (String, String) {
    let roots: Vec<&Path> = roots.iter().map(PathBuf::as_path).collect();
    let rt = runtime_digest(&roots).unwrap();
    let m = Manifest::from_parts(node, &rt, app, args).unwrap();
    (hex::encode(rt.0), hex::encode(m.measurement()))
}

/// xorshift64*: deterministic pseudo-random trees.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: &[&[u8]] = &[
    b"a",
    b"b.py",
    b"B.py",
    b"a b",
    b"__pycache__",
    b"x.pyc",
    b"lib-dynload",
    b"lib.so",
    b"\xc3\xa9t\xc3\xa9.py",
    b"new\nline",
    b"\xff\xfe",
    b"z",
    b"a.b",
    b"a-b",
    b"tab\there",
];

fn random_tree(rng: &mut Rng, dir: &Path, depth: u32) {
    fs::create_dir_all(dir).unwrap();
    for _ in 0..(2 + rng.below(5)) {
        let name = OsStr::from_bytes(NAMES[rng.below(NAMES.len() as u64) as usize]);
        let path = dir.join(name);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        match rng.below(6) {
            0 | 1 if depth < 3 => random_tree(rng, &path, depth + 1),
            2 => {
                let target = NAMES[rng.below(NAMES.len() as u64) as usize];
                symlink(OsStr::from_bytes(target), &path).unwrap();
            }
            _ => {
                let len = rng.below(3000) as usize;
                let content: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                fs::write(&path, content).unwrap();
                let mode = if rng.below(2) == 0 { 0o755 } else { 0o644 };
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
        }
    }
}

#[test]
fn python_reference_agrees_on_random_trees() {
    let Some(py) = python() else { return };
    for seed in 1..=8u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node");
        fs::write(&node, seed.to_le_bytes()).unwrap();
        let roots = vec![
            dir.path().join("rt0"),
            dir.path().join("rt1"),
            dir.path().join("single"),
        ];
        random_tree(&mut rng, &roots[0], 0);
        random_tree(&mut rng, &roots[1], 0);
        fs::write(&roots[2], b"single file root").unwrap();
        // App dirs hold regular files with UTF-8 names only.
        let app = dir.path().join("app");
        for i in 0..(1 + rng.below(6)) {
            let rel = format!(
                "{}/f {i}.enc",
                ["", "pkg", "pkg/sub", "é"][rng.below(4) as usize]
            );
            let path = app.join(rel.trim_start_matches('/'));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(
                path,
                (0..rng.below(500))
                    .map(|_| rng.next() as u8)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        }
        let args: Vec<String> = (0..rng.below(5)).map(|i| format!("arg {i}\n é")).collect();
        assert_eq!(
            rust_digests(&node, &roots, &app, &args),
            python_digests(&py, &node, &roots, &app, &args),
            "seed {seed}"
        );
    }
}
