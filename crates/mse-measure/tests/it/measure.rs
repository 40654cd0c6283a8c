//! The simulated measurement: what changes it, what does not, and the documented example.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::fs;
use std::path::{Path, PathBuf};

use mse_measure::{Manifest, RuntimeDigest, runtime_canonical_bytes, runtime_digest};

struct Inputs {
    _dir: tempfile::TempDir,
    node: PathBuf,
    runtime: Vec<PathBuf>,
    app: PathBuf,
    args: Vec<String>,
}

#[cfg(unix)]
fn set_exec(path: &Path, exec: bool) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if exec { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn write(path: &Path, content: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// The inputs of the worked example in docs/measurement.md.
fn example() -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("mse-node"), b"mse-node test binary\n");

    let rt = root.join("runtime");
    write(&rt.join("bin/python3"), b"#!python\n");
    set_exec(&rt.join("bin/python3"), true);
    write(&rt.join("lib/os.py"), b"import sys\n");
    set_exec(&rt.join("lib/os.py"), false);
    write(&rt.join("lib/__pycache__/os.cpython-311.pyc"), b"bytecode");
    write(&rt.join("lib/sourceless.pyc"), b"bytecode");
    std::os::unix::fs::symlink("bin/python3", rt.join("python")).unwrap();
    let libpython = root.join("libpython3.11.so");
    write(&libpython, b"\x7fELF");
    set_exec(&libpython, false);

    let app = root.join("app");
    write(&app.join("app.py.enc"), b"ciphertext of app.py");
    write(&app.join("requirements.txt"), b"flask==3.1.3\n");
    write(&app.join("pkg/mod.py.enc"), b"ciphertext of pkg/mod.py");

    let args = [
        "--port",
        "8443",
        "--application",
        "app:app",
        "--subject",
        "CN=localhost, O=My App",
    ]
    .map(String::from)
    .to_vec();
    Inputs {
        node: root.join("mse-node"),
        runtime: vec![rt, libpython],
        app,
        args,
        _dir: dir,
    }
}

impl Inputs {
    fn roots(&self) -> Vec<&Path> {
        self.runtime.iter().map(PathBuf::as_path).collect()
    }
    fn runtime_digest(&self) -> RuntimeDigest {
        runtime_digest(&self.roots()).unwrap()
    }
    fn manifest(&self) -> Manifest {
        Manifest::from_parts(&self.node, &self.runtime_digest(), &self.app, &self.args).unwrap()
    }
    fn measurement(&self) -> [u8; 32] {
        self.manifest().measurement()
    }
}

// THREAT: T2 — the measurement covers code, arguments, runtime and node binary.
#[test]
fn worked_example_matches_docs() {
    let inputs = example();
    let doc = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/measurement.md"
    ))
    .expect("docs/measurement.md");
    let runtime_stream =
        String::from_utf8(runtime_canonical_bytes(&inputs.roots()).unwrap()).unwrap();
    let manifest = inputs.manifest();
    let canonical = String::from_utf8(manifest.to_canonical_bytes()).unwrap();
    let measurement = hex::encode(manifest.measurement());
    let runtime = hex::encode(inputs.runtime_digest().0);
    let shown = |s: &str| s.replace('\n', "⏎\n");
    let missing: Vec<String> = [
        ("runtime stream", shown(&runtime_stream)),
        ("runtime digest", runtime),
        ("canonical manifest", shown(&canonical)),
        ("measurement", measurement),
    ]
    .into_iter()
    .filter(|(_, text)| !doc.contains(text.as_str()))
    .map(|(what, text)| format!("the {what}:\n{text}"))
    .collect();
    assert!(
        missing.is_empty(),
        "docs/measurement.md does not show\n{}",
        missing.join("\n")
    );
}

// THREAT: T2 — the measurement covers code, arguments, runtime and node binary.
#[test]
fn identical_inputs_give_identical_measurements() {
    let (a, b) = (example(), example());
    assert_eq!(a.measurement(), b.measurement());
    assert_eq!(
        a.runtime_digest(),
        b.runtime_digest(),
        "independent of where the runtime lies"
    );
}

// THREAT: T2 — the measurement covers code, arguments, runtime and node binary.
#[test]
fn one_byte_of_code_changes_it() {
    let inputs = example();
    let before = inputs.measurement();
    let path = inputs.app.join("pkg/mod.py.enc");
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    fs::write(&path, bytes).unwrap();
    assert_ne!(inputs.measurement(), before);
}

// THREAT: T2 — the measurement covers code, arguments, runtime and node binary.
#[test]
fn a_renamed_or_added_code_file_changes_it() {
    let inputs = example();
    let before = inputs.measurement();
    fs::rename(
        inputs.app.join("app.py.enc"),
        inputs.app.join("main.py.enc"),
    )
    .unwrap();
    let renamed = inputs.measurement();
    assert_ne!(renamed, before);
    fs::create_dir(inputs.app.join("empty")).unwrap();
    assert_eq!(
        inputs.measurement(),
        renamed,
        "directories alone do not ship"
    );
    write(&inputs.app.join("empty/x"), b"");
    assert_ne!(inputs.measurement(), renamed);
}

// THREAT: T2 — the measurement covers code, arguments, runtime and node binary.
#[test]
fn one_argument_or_its_position_changes_it() {
    let mut inputs = example();
    let before = inputs.measurement();
    inputs.args[1] = "8444".into();
    assert_ne!(inputs.measurement(), before);
    let mut inputs = example();
    inputs.args.swap(0, 2);
    assert_ne!(inputs.measurement(), before);
    // Length prefixes: moving a boundary between arguments is a change.
    let mut inputs = example();
    inputs.args = vec!["a b".into()];
    let one = inputs.measurement();
    inputs.args = vec!["a".into(), "b".into()];
    assert_ne!(inputs.measurement(), one);
}

// THREAT: T2 — the measurement covers code, arguments, runtime and node binary.
#[test]
fn the_node_binary_changes_it() {
    let inputs = example();
    let before = inputs.measurement();
    fs::write(&inputs.node, b"mse-node test binary!\n").unwrap();
    assert_ne!(inputs.measurement(), before);
}

// THREAT: T2 — the measurement covers code, arguments, runtime and node binary.
#[test]
fn runtime_content_names_exec_bits_links_and_roots_change_it() {
    let inputs = example();
    let before = inputs.runtime_digest();
    let rt = &inputs.runtime[0];

    write(&rt.join("lib/os.py"), b"import sys \n");
    let changed = inputs.runtime_digest();
    assert_ne!(changed, before, "content");

    fs::rename(rt.join("lib/os.py"), rt.join("lib/os2.py")).unwrap();
    let renamed = inputs.runtime_digest();
    assert_ne!(renamed, changed, "rename");

    set_exec(&rt.join("lib/os2.py"), true);
    let exec = inputs.runtime_digest();
    assert_ne!(exec, renamed, "exec bit");

    fs::remove_file(rt.join("python")).unwrap();
    std::os::unix::fs::symlink("lib/os2.py", rt.join("python")).unwrap();
    let relinked = inputs.runtime_digest();
    assert_ne!(relinked, exec, "symlink target");

    fs::create_dir(rt.join("share")).unwrap();
    let with_dir = inputs.runtime_digest();
    assert_ne!(with_dir, relinked, "empty directory");

    let reversed: Vec<&Path> = inputs.roots().into_iter().rev().collect();
    assert_ne!(runtime_digest(&reversed).unwrap(), with_dir, "root order");

    // And the measurement follows the runtime digest.
    let m = |r: &RuntimeDigest| {
        Manifest::from_parts(&inputs.node, r, &inputs.app, &inputs.args).unwrap()
    };
    assert_ne!(m(&with_dir).measurement(), m(&before).measurement());
}

// THREAT: T2 — CPython runs a matching `__pycache__/*.pyc` instead of its source, and a lone
// `x.pyc` when there is no `x.py`: bytecode the measurement skipped would run unmeasured.
#[test]
fn bytecode_in_the_runtime_changes_it() {
    let inputs = example();
    let rt = &inputs.runtime[0];
    let before = inputs.runtime_digest();

    write(
        &rt.join("lib/__pycache__/os.cpython-311.pyc"),
        b"other bytecode",
    );
    let replaced = inputs.runtime_digest();
    assert_ne!(replaced, before, "a cached module replaced");

    write(&rt.join("lib/__pycache__/new.cpython-311.pyc"), b"x");
    let added = inputs.runtime_digest();
    assert_ne!(added, replaced, "a cached module added");

    write(&rt.join("lib/optional_dep.pyc"), b"x");
    let sourceless = inputs.runtime_digest();
    assert_ne!(sourceless, added, "a sourceless module added");

    fs::remove_file(rt.join("lib/sourceless.pyc")).unwrap();
    assert_ne!(
        inputs.runtime_digest(),
        sourceless,
        "a sourceless module removed"
    );
}

#[test]
fn symlinks_in_the_app_dir_are_refused() {
    let inputs = example();
    std::os::unix::fs::symlink("/etc/hostname", inputs.app.join("link")).unwrap();
    assert!(matches!(
        Manifest::from_parts(
            &inputs.node,
            &inputs.runtime_digest(),
            &inputs.app,
            &inputs.args
        ),
        Err(mse_measure::Error::SymlinkInCode(_))
    ));
}

#[test]
fn missing_inputs_are_errors() {
    let inputs = example();
    let missing = inputs.app.join("nope");
    assert!(runtime_digest(&[&missing]).is_err());
    assert!(Manifest::from_parts(&missing, &inputs.runtime_digest(), &inputs.app, &[]).is_err());
    assert!(Manifest::from_parts(&inputs.node, &inputs.runtime_digest(), &missing, &[]).is_err());
}

#[test]
fn canonical_bytes_round_trip_and_the_parser_is_strict() {
    let manifest = example().manifest();
    let bytes = manifest.to_canonical_bytes();
    assert_eq!(Manifest::from_canonical_bytes(&bytes).unwrap(), manifest);

    // Every strict prefix and every single-byte change of a valid encoding either fails to
    // parse or parses to something that re-encodes to exactly those bytes (never a panic).
    for len in 0..bytes.len() {
        assert!(
            Manifest::from_canonical_bytes(&bytes[..len]).is_err(),
            "prefix {len}"
        );
    }
    for i in 0..bytes.len() {
        for flip in [0x01, 0x20, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            if let Ok(m) = Manifest::from_canonical_bytes(&bad) {
                assert_eq!(m.to_canonical_bytes(), bad, "byte {i} flip {flip:#x}");
            }
        }
    }
    let mut trailing = bytes.clone();
    trailing.push(b'\n');
    assert!(Manifest::from_canonical_bytes(&trailing).is_err());
}

#[test]
fn unsorted_code_is_encoded_sorted() {
    let mut manifest = example().manifest();
    let sorted = manifest.to_canonical_bytes();
    manifest.code.reverse();
    assert_eq!(manifest.to_canonical_bytes(), sorted);
}
