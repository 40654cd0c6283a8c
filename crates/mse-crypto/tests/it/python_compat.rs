//! Cross-checks against the original library (mse-lib-crypto 1.4), PyNaCl, `cryptography` and
//! Python's fnmatch, run from the test venv (`MSE_TEST_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use crate::common;

use std::collections::BTreeMap;
use std::fs;

use common::{read_tree, run, test_python, write_tree};
use mse_crypto::code::{NonceMap, decrypt_tree, encrypt_tree, read_mseignore};
use mse_crypto::ignore::fnmatch;
use mse_crypto::{CodeKey, EnclaveSecretKey, fernet, sealed};

const FILES: &[(&str, &[u8])] = &[
    ("app.py", b"print('hello')\n"),
    ("requirements.txt", b"flask\n"),
    ("pkg/__init__.py", b""),
    ("pkg/mod.py", "é = '€'\n".as_bytes()),
    ("pkg/sub/requirements.txt", b"x\n"),
    ("pkg/sub/data.json", b"{}"),
    ("pkg/__pycache__/mod.cpython-311.pyc", b"bytecode"),
    ("pkg/keep.pyi", b"stub"),
    ("secrets.json", b"{}"),
    ("a[b].py", b"brackets"),
    ("notes.txt ", b"trailing space in name"),
    (
        ".mseignore",
        b"__pycache__\n*.py[cod]\nsecrets.json\n.vscode/\n# comment\nnotes.txt \n",
    ),
];

/// Python: encrypt_directory with the .mseignore, print {relpath: nonce hex}.
const PY_ENCRYPT: &str = r##"
import json, sys
from pathlib import Path
from mse_lib_crypto.xsalsa20_poly1305 import encrypt_directory
src, out, key = Path(sys.argv[1]), Path(sys.argv[2]), bytes.fromhex(sys.argv[3])
nonces = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
if nonces is not None:
    nonces = {k: bytes.fromhex(v) for k, v in nonces.items()}
ignore = [l for l in (src / ".mseignore").read_text().splitlines() if l.strip() and not l.strip().startswith("#")]
used = encrypt_directory(src, "*", key, nonces, ["requirements.txt"], ignore, out)
print(json.dumps({k: v.hex() for k, v in used.items()}))
"##;

const PY_DECRYPT: &str = r#"
import sys
from pathlib import Path
from mse_lib_crypto.xsalsa20_poly1305 import decrypt_directory
decrypt_directory(Path(sys.argv[1]), bytes.fromhex(sys.argv[2]), ".enc", Path(sys.argv[3]))
"#;

fn key() -> CodeKey {
    CodeKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(7)))
}

fn is_hidden(rel: &str) -> bool {
    rel.split('/').any(|part| part.starts_with('.'))
}

#[test]
fn python_encrypts_rust_decrypts_and_rust_reencrypts_identically() {
    let Some(py) = test_python() else { return };
    let src = tempfile::tempdir().unwrap();
    write_tree(src.path(), FILES);
    let work = tempfile::tempdir().unwrap();
    let py_out = work.path().join("py");
    let key = key();
    let stdout = run(
        &py,
        PY_ENCRYPT,
        &[
            src.path().to_str().unwrap(),
            py_out.to_str().unwrap(),
            &key.to_hex(),
        ],
    );
    let py_nonces: BTreeMap<String, String> = serde_json::from_slice(&stdout).unwrap();

    // Rust decrypts what Python encrypted.
    let dec = work.path().join("dec");
    let tree = decrypt_tree(&py_out, &dec, &key).unwrap();
    for (rel, content) in read_tree(&dec) {
        assert_eq!(content, fs::read(src.path().join(&rel)).unwrap(), "{rel}");
    }
    assert!(tree.files.contains(&"pkg/mod.py".to_owned()));

    // Rust re-encrypts with Python's nonce map: the shipped (non-hidden) files are identical.
    let nonces: NonceMap = py_nonces
        .iter()
        .map(|(k, v)| (k.clone(), hex::decode(v).unwrap().try_into().unwrap()))
        .collect();
    let rust_out = work.path().join("rust");
    let used = encrypt_tree(
        src.path(),
        &rust_out,
        &key,
        Some(&nonces),
        &read_mseignore(src.path()).unwrap(),
    )
    .unwrap();
    let shipped_by_python: Vec<_> = read_tree(&py_out)
        .into_iter()
        .filter(|(rel, _)| !is_hidden(rel))
        .collect();
    assert_eq!(read_tree(&rust_out), shipped_by_python);
    let python_visible: NonceMap = nonces.into_iter().filter(|(k, _)| !is_hidden(k)).collect();
    assert_eq!(used, python_visible);
    // Same ignore decisions: the ignored files are absent from both.
    assert!(!rust_out.join("secrets.json.enc").exists());
    assert!(!rust_out.join("notes.txt .enc").exists());
    assert!(rust_out.join("pkg/keep.pyi.enc").exists());
}

#[test]
fn rust_encrypts_python_decrypts() {
    let Some(py) = test_python() else { return };
    let src = tempfile::tempdir().unwrap();
    write_tree(src.path(), FILES);
    let work = tempfile::tempdir().unwrap();
    let enc = work.path().join("enc");
    let key = key();
    let nonces = encrypt_tree(
        src.path(),
        &enc,
        &key,
        None,
        &read_mseignore(src.path()).unwrap(),
    )
    .unwrap();
    // decrypt_directory deletes the .enc files it decrypts: keep a copy of what we shipped.
    let shipped = read_tree(&enc);
    let out = work.path().join("out");
    run(
        &py,
        PY_DECRYPT,
        &[enc.to_str().unwrap(), &key.to_hex(), out.to_str().unwrap()],
    );
    let decrypted = read_tree(&out);
    assert_eq!(
        decrypted.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        nonces.keys().cloned().collect::<Vec<_>>()
    );
    for (rel, content) in decrypted {
        assert_eq!(content, fs::read(src.path().join(&rel)).unwrap(), "{rel}");
    }
    // And Python re-encrypting with our nonce map gives our bytes.
    let map_json = serde_json::to_string(
        &nonces
            .iter()
            .map(|(k, v)| (k, hex::encode(v)))
            .collect::<BTreeMap<_, _>>(),
    )
    .unwrap();
    let src_visible = tempfile::tempdir().unwrap();
    write_tree(
        src_visible.path(),
        &FILES
            .iter()
            .copied()
            .filter(|(p, _)| !is_hidden(p))
            .collect::<Vec<_>>(),
    );
    // Python needs the ignore list but would encrypt .mseignore itself: pass it via a copy.
    fs::write(
        src_visible.path().join(".mseignore"),
        fs::read(src.path().join(".mseignore")).unwrap(),
    )
    .unwrap();
    let py_out = work.path().join("py");
    let script = PY_ENCRYPT.replace(
        "used = encrypt_directory",
        "(src / '.mseignore').unlink()\nused = encrypt_directory",
    );
    run(
        &py,
        &script,
        &[
            src_visible.path().to_str().unwrap(),
            py_out.to_str().unwrap(),
            &key.to_hex(),
            &map_json,
        ],
    );
    // (.mseignore was read before being removed, so nothing hidden is left to encrypt.)
    assert_eq!(read_tree(&py_out), shipped);
}

#[test]
fn fnmatch_agrees_with_python() {
    let Some(py) = test_python() else { return };
    let patterns = [
        "*",
        "?",
        "*.py",
        "*.py[cod]",
        "[!a]*",
        "[]]",
        "[!]]",
        "[a-]",
        "[-a]",
        "[a-c-e]",
        "[z-a]",
        "[!b-a]",
        "[b-ac-d]",
        "[",
        "[!",
        "[]",
        "a[",
        "[!]",
        "x[a-z0-9_]y",
        "[\\]",
        "[\\-]",
        "*[!.]",
        ".*",
        "__pycache__/",
        "a*b*c",
        "*a*",
        "[^a]",
        "[&&]",
        "[a-a]",
        "é*",
        "[à-ÿ]",
        "?*?",
    ];
    let names = [
        "",
        "a",
        "b",
        "-",
        "]",
        "[",
        "!",
        "^",
        "\\",
        "&",
        "app.py",
        "app.pyc",
        "app.pyo",
        "x.py",
        "xay",
        "x_y",
        "x-y",
        "abc",
        "aXbYc",
        "acb",
        ".git",
        "__pycache__",
        "c",
        "d",
        "e",
        "é",
        "ê",
        "éa",
        "z",
        "a[",
        "[]",
        "ab",
        "a.b",
    ];
    let mut rust = String::new();
    let mut input = String::new();
    for p in patterns {
        for n in names {
            rust.push(if fnmatch(n, p) { '1' } else { '0' });
            input.push_str(&format!("{}\x00{}\x00", p, n));
        }
    }
    let script = r#"
import sys, fnmatch
parts = open(sys.argv[1], encoding="utf-8").read().split("\x00")[:-1]
print("".join("1" if fnmatch.fnmatchcase(parts[i + 1], parts[i]) else "0" for i in range(0, len(parts), 2)), end="")
"#;
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), input).unwrap();
    let python = String::from_utf8(run(&py, script, &[file.path().to_str().unwrap()])).unwrap();
    let mut mismatches = Vec::new();
    for (i, (r, p)) in rust.chars().zip(python.chars()).enumerate() {
        if r != p {
            mismatches.push(format!(
                "pattern {:?} name {:?}: rust {r} python {p}",
                patterns[i / names.len()],
                names[i % names.len()]
            ));
        }
    }
    assert_eq!(python.len(), rust.len());
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn sealed_boxes_both_ways_with_pynacl_and_the_original() {
    let Some(py) = test_python() else { return };
    let sk = EnclaveSecretKey::generate();
    let msg = br#"{"code_secret_key": "00ff", "result_sk": "abc"}"#;

    // Rust seals, PyNaCl and mse_lib_crypto open.
    let sealed = sealed::seal(&sk.public_key(), msg);
    let script = r#"
import sys
from nacl.public import PrivateKey, SealedBox
from mse_lib_crypto.seal_box import unseal
sk, ct = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
a = SealedBox(PrivateKey(sk)).decrypt(ct)
b = unseal(ct, sk)
assert a == b
print(a.hex(), end="")
"#;
    let out = run(
        &py,
        script,
        &[&hex::encode(*sk.to_bytes()), &hex::encode(&sealed)],
    );
    assert_eq!(hex::decode(out).unwrap(), msg);

    // PyNaCl seals to our public key, Rust opens.
    let script = r#"
import sys
from nacl.public import PublicKey, SealedBox
print(SealedBox(PublicKey(bytes.fromhex(sys.argv[1]))).encrypt(bytes.fromhex(sys.argv[2])).hex(), end="")
"#;
    let out = run(&py, script, &[&sk.public_key().to_hex(), &hex::encode(msg)]);
    let from_python = hex::decode(out).unwrap();
    assert_eq!(&sealed::open(&sk, &from_python).unwrap()[..], msg);
    assert!(sealed::open(&EnclaveSecretKey::generate(), &from_python).is_err());

    // The public key derivation agrees with the original's x25519_pk_from_sk.
    let script = r#"
import sys
from mse_lib_crypto.x25519 import x25519_pk_from_sk
print(x25519_pk_from_sk(bytes.fromhex(sys.argv[1])).hex(), end="")
"#;
    let out = run(&py, script, &[&hex::encode(*sk.to_bytes())]);
    assert_eq!(String::from_utf8(out).unwrap(), sk.public_key().to_hex());
}

#[test]
fn fernet_both_ways_with_cryptography() {
    let Some(py) = test_python() else { return };
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let msg = b"result: 42\n\x00\xff";
    let token = fernet::encrypt(key, msg).unwrap();
    let script = r#"
import sys
from cryptography.fernet import Fernet
f = Fernet(sys.argv[1].encode())
if sys.argv[2] == "decrypt":
    print(f.decrypt(sys.argv[3].encode()).hex(), end="")
else:
    print(f.encrypt(bytes.fromhex(sys.argv[3])).decode(), end="")
"#;
    let out = run(&py, script, &[key, "decrypt", &token]);
    assert_eq!(hex::decode(out).unwrap(), msg);
    let out = run(&py, script, &[key, "encrypt", &hex::encode(msg)]);
    let python_token = String::from_utf8(out).unwrap();
    assert_eq!(&fernet::decrypt(key, &python_token).unwrap()[..], msg);
}
