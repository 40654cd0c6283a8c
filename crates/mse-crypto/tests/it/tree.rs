//! encrypt_tree / decrypt_tree behaviour, in Rust only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly
use crate::common;

use std::fs;
use std::path::Path;

use common::{read_tree, write_tree};
use mse_crypto::code::{self, NonceMap, decrypt_tree, encrypt_tree, read_mseignore};
use mse_crypto::{CodeKey, Error};

const FILES: &[(&str, &[u8])] = &[
    (
        "app.py",
        b"from flask import Flask\napp = Flask(__name__)\n",
    ),
    ("requirements.txt", b"flask==3.1.3\n"),
    ("pkg/__init__.py", b""),
    ("pkg/mod.py", b"X = 1\n"),
    ("pkg/requirements.txt", b"nested in clear too\n"),
    ("pkg/data.bin.enc", b"already named .enc"),
    ("Makefile", b"all:\n"),
    ("pkg/__pycache__/mod.cpython-311.pyc", b"bytecode"),
    ("notes.pyc", b"bytecode"),
    ("secrets.json", b"{\"password\": \"hunter2\"}"),
    (".hidden", b"dotfile"),
    (".git/config", b"[core]"),
    ("pkg/.env", b"TOKEN=1"),
    (
        ".mseignore",
        b"# ignore these\n__pycache__\n*.py[cod]\nsecrets.json\n.vscode/\n\n",
    ),
];

fn key() -> CodeKey {
    CodeKey::from_bytes([0x42; 32])
}

fn source() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), FILES);
    dir
}

fn encrypt(src: &Path, out: &Path, nonces: Option<&NonceMap>) -> mse_crypto::Result<NonceMap> {
    encrypt_tree(src, out, &key(), nonces, &read_mseignore(src)?)
}

#[test]
fn ships_encrypted_files_clear_requirements_and_nothing_ignored_or_hidden() {
    let src = source();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("enc");
    let nonces = encrypt(src.path(), &out, None).unwrap();

    let names: Vec<String> = read_tree(&out).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        names,
        [
            "Makefile.enc",
            "app.py.enc",
            "pkg/__init__.py.enc",
            "pkg/data.bin.enc.enc",
            "pkg/mod.py.enc",
            "pkg/requirements.txt",
            "requirements.txt",
        ]
    );
    assert_eq!(
        nonces.keys().collect::<Vec<_>>(),
        [
            "Makefile",
            "app.py",
            "pkg/__init__.py",
            "pkg/data.bin.enc",
            "pkg/mod.py"
        ]
    );
    assert_eq!(
        fs::read(out.join("requirements.txt")).unwrap(),
        b"flask==3.1.3\n"
    );
    let enc = fs::read(out.join("app.py.enc")).unwrap();
    assert_eq!(enc.len(), FILES[0].1.len() + code::OVERHEAD);
    assert_eq!(&enc[..24], &nonces["app.py"]);
    // No leftovers beside the destination.
    assert_eq!(fs::read_dir(work.path()).unwrap().count(), 1);
}

// THREAT: T2
#[test]
fn same_key_and_nonce_map_give_identical_bytes() {
    let src = source();
    let work = tempfile::tempdir().unwrap();
    let nonces = encrypt(src.path(), &work.path().join("a"), None).unwrap();
    let again = encrypt(src.path(), &work.path().join("b"), Some(&nonces)).unwrap();
    assert_eq!(nonces, again);
    assert_eq!(
        read_tree(&work.path().join("a")),
        read_tree(&work.path().join("b"))
    );
    // Without the map, fresh nonces: different ciphertext.
    encrypt(src.path(), &work.path().join("c"), None).unwrap();
    assert_ne!(
        read_tree(&work.path().join("a")),
        read_tree(&work.path().join("c"))
    );
}

#[test]
fn a_file_missing_from_the_nonce_map_is_an_error_and_leaves_nothing() {
    let src = source();
    let work = tempfile::tempdir().unwrap();
    let mut nonces = encrypt(src.path(), &work.path().join("a"), None).unwrap();
    nonces.remove("pkg/mod.py");
    let out = work.path().join("b");
    match encrypt(src.path(), &out, Some(&nonces)) {
        Err(Error::NonceNotFound { path }) => assert_eq!(path, "pkg/mod.py"),
        other => panic!("{other:?}"),
    }
    assert!(!out.exists());
    assert_eq!(
        fs::read_dir(work.path()).unwrap().count(),
        1,
        "no temp dir left"
    );
}

#[test]
fn a_nonce_map_reusing_a_nonce_is_refused() {
    let src = source();
    let work = tempfile::tempdir().unwrap();
    let mut nonces = encrypt(src.path(), &work.path().join("a"), None).unwrap();
    let n = nonces["app.py"];
    nonces.insert("pkg/mod.py".into(), n);
    assert!(matches!(
        encrypt(src.path(), &work.path().join("b"), Some(&nonces)),
        Err(Error::NonceReused { .. })
    ));
}

#[test]
fn round_trip_decrypts_exactly_the_encrypted_files() {
    let src = source();
    let work = tempfile::tempdir().unwrap();
    let enc = work.path().join("enc");
    encrypt(src.path(), &enc, None).unwrap();
    let dec = work.path().join("dec");
    let tree = decrypt_tree(&enc, &dec, &key()).unwrap();
    assert_eq!(
        tree.files,
        [
            "Makefile",
            "app.py",
            "pkg/__init__.py",
            "pkg/data.bin.enc",
            "pkg/mod.py"
        ]
    );
    let expected: Vec<(String, Vec<u8>)> = tree
        .files
        .iter()
        .map(|f| (f.clone(), fs::read(src.path().join(f)).unwrap()))
        .collect();
    assert_eq!(read_tree(&dec), expected, "requirements.txt is not copied");
    // The sources are left in place.
    assert!(enc.join("app.py.enc").exists());
}

// THREAT: T7
#[cfg(unix)]
#[test]
fn decrypted_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let src = source();
    let work = tempfile::tempdir().unwrap();
    encrypt(src.path(), &work.path().join("enc"), None).unwrap();
    decrypt_tree(&work.path().join("enc"), &work.path().join("dec"), &key()).unwrap();
    let mode = fs::metadata(work.path().join("dec/pkg/mod.py"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

// THREAT: T14
#[test]
fn decrypt_is_all_or_nothing_and_names_the_bad_file() {
    let src = source();
    let work = tempfile::tempdir().unwrap();
    let enc = work.path().join("enc");
    encrypt(src.path(), &enc, None).unwrap();
    let target = enc.join("pkg/mod.py.enc");
    let good = fs::read(&target).unwrap();

    // Flip a byte in each region (nonce, tag, ciphertext), then truncate.
    let mut cases: Vec<Vec<u8>> = [0, 24, 40, good.len() - 1]
        .iter()
        .map(|&i| {
            let mut bad = good.clone();
            bad[i] ^= 0x80;
            bad
        })
        .collect();
    cases.push(good[..good.len() - 1].to_vec());
    cases.push(good[..39].to_vec());
    cases.push(Vec::new());
    for bad in cases {
        fs::write(&target, &bad).unwrap();
        let dec = work.path().join("dec");
        let err = decrypt_tree(&enc, &dec, &key()).unwrap_err();
        assert!(err.to_string().contains("pkg/mod.py.enc"), "{err}");
        assert!(!dec.exists(), "nothing half-written");
        assert_eq!(
            fs::read_dir(work.path()).unwrap().count(),
            1,
            "no temp dir left"
        );
    }
}

// THREAT: T14
#[test]
fn wrong_key_fails_on_the_first_file() {
    let src = source();
    let work = tempfile::tempdir().unwrap();
    let enc = work.path().join("enc");
    encrypt(src.path(), &enc, None).unwrap();
    let err = decrypt_tree(
        &enc,
        &work.path().join("dec"),
        &CodeKey::from_bytes([1; 32]),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Decrypt { what } if what == "Makefile.enc"),
        "{err}"
    );
}

#[test]
fn destination_rules() {
    let src = source();
    let work = tempfile::tempdir().unwrap();
    // An empty existing directory is fine.
    let empty = work.path().join("empty");
    fs::create_dir(&empty).unwrap();
    encrypt(src.path(), &empty, None).unwrap();
    assert!(empty.join("app.py.enc").exists());
    // A non-empty one, or a file, is refused.
    assert!(matches!(
        encrypt(src.path(), &empty, None),
        Err(Error::DestinationNotEmpty(_))
    ));
    let file = work.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        encrypt(src.path(), &file, None),
        Err(Error::DestinationNotEmpty(_))
    ));
    // Inside the source: refused.
    assert!(matches!(
        encrypt(src.path(), &src.path().join("out"), None),
        Err(Error::UnsafePath { .. })
    ));
    assert!(matches!(
        decrypt_tree(&empty, &empty.join("out"), &key()),
        Err(Error::UnsafePath { .. })
    ));
}

// THREAT: T15
#[cfg(unix)]
#[test]
fn symlinks_leaving_the_tree_are_refused_in_both_directions() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("passwd"), b"root:x:0:0").unwrap();

    // Encrypt: a link out of the source is refused, a link inside is followed.
    let src = source();
    let work = tempfile::tempdir().unwrap();
    symlink("pkg/mod.py", src.path().join("alias.py")).unwrap();
    let nonces = encrypt(src.path(), &work.path().join("ok"), None).unwrap();
    assert!(nonces.contains_key("alias.py"));
    symlink(outside.path().join("passwd"), src.path().join("leak.py")).unwrap();
    assert!(matches!(
        encrypt(src.path(), &work.path().join("bad"), None),
        Err(Error::UnsafePath { .. })
    ));
    fs::remove_file(src.path().join("leak.py")).unwrap();
    symlink(outside.path(), src.path().join("leakdir")).unwrap();
    assert!(matches!(
        encrypt(src.path(), &work.path().join("bad"), None),
        Err(Error::UnsafePath { .. })
    ));
    fs::remove_file(src.path().join("leakdir")).unwrap();
    symlink(".", src.path().join("pkg/loop")).unwrap();
    assert!(
        encrypt(src.path(), &work.path().join("bad"), None).is_err(),
        "loop"
    );
    assert!(!work.path().join("bad").exists());

    // Decrypt: an encrypted file must not be a symlink (it could point anywhere).
    let enc = work.path().join("ok");
    let outside_enc = outside.path().join("x.enc");
    fs::copy(enc.join("app.py.enc"), &outside_enc).unwrap();
    symlink(&outside_enc, enc.join("evil.py.enc")).unwrap();
    assert!(matches!(
        decrypt_tree(&enc, &work.path().join("dec"), &key()),
        Err(Error::UnsafePath { .. })
    ));
    fs::remove_file(enc.join("evil.py.enc")).unwrap();
    // A symlinked directory is not followed.
    fs::create_dir(outside.path().join("d")).unwrap();
    fs::copy(enc.join("app.py.enc"), outside.path().join("d/y.py.enc")).unwrap();
    symlink(outside.path().join("d"), enc.join("linked")).unwrap();
    let tree = decrypt_tree(&enc, &work.path().join("dec"), &key()).unwrap();
    assert!(
        tree.files.iter().all(|f| !f.starts_with("linked")),
        "{:?}",
        tree.files
    );
}

#[test]
fn a_file_named_only_the_suffix_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let enc = work.path().join("enc");
    fs::create_dir(&enc).unwrap();
    fs::write(enc.join(".enc"), code::encrypt(&key(), &[0; 24], b"x")).unwrap();
    assert!(matches!(
        decrypt_tree(&enc, &work.path().join("dec"), &key()),
        Err(Error::UnsafePath { .. })
    ));
}

#[test]
fn mseignore_is_optional() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_mseignore(dir.path()).unwrap().is_empty());
    fs::write(dir.path().join(".mseignore"), b"\xff\xfe").unwrap();
    assert!(read_mseignore(dir.path()).is_err(), "not UTF-8");
}
