//! The example app (examples/helloworld), measured as the client computes it: the code
//! re-encrypted with the kept key and nonces gives the very bytes the node received, so the
//! client's measurement equals the node's; one byte of code, one launch argument or the
//! runtime changes it. The end-to-end check against a running node (the node's quote) is in
//! crates/mse-cli/tests/it/verify.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::fs;
use std::path::{Path, PathBuf};

use mse_measure::{Manifest, runtime_digest};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct World {
    dir: tempfile::TempDir,
    code: PathBuf,
    key: mse_crypto::CodeKey,
    nonces: mse_crypto::code::NonceMap,
    node: PathBuf,
    runtime: PathBuf,
    args: Vec<String>,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        fs::create_dir(&code).unwrap();
        for f in ["app.py", "requirements.txt"] {
            fs::copy(
                workspace().join("examples/helloworld/code").join(f),
                code.join(f),
            )
            .unwrap();
        }
        let key = mse_crypto::CodeKey::from_bytes([0x5a; 32]);
        // What `mse deploy` does first: encrypt with fresh nonces, and keep them.
        let nonces =
            mse_crypto::code::encrypt_tree(&code, &dir.path().join("shipped"), &key, None, &[])
                .unwrap();
        let node = dir.path().join("mse-node");
        fs::write(&node, b"stand-in for the node binary").unwrap();
        let runtime = dir.path().join("runtime");
        fs::create_dir_all(runtime.join("lib")).unwrap();
        fs::write(runtime.join("lib/flask.py"), b"# flask\n").unwrap();
        let args = ["--application", "app:app", "--port", "8443"]
            .map(String::from)
            .to_vec();
        World {
            dir,
            code,
            key,
            nonces,
            node,
            runtime,
            args,
        }
    }

    /// What the node measures: the app dir it received.
    fn node_side(&self) -> [u8; 32] {
        let rt = runtime_digest(&[self.runtime.as_path()]).unwrap();
        Manifest::from_parts(
            &self.node,
            &rt,
            &self.dir.path().join("shipped"),
            &self.args,
        )
        .unwrap()
        .measurement()
    }

    /// What the client recomputes: re-encrypt its code folder with the kept key and nonces.
    fn client_side(&self, tag: &str, args: &[String], runtime: &Path) -> [u8; 32] {
        let app = self.dir.path().join(format!("client-{tag}"));
        mse_crypto::code::encrypt_tree(&self.code, &app, &self.key, Some(&self.nonces), &[])
            .unwrap();
        let rt = runtime_digest(&[runtime]).unwrap();
        Manifest::from_parts(&self.node, &rt, &app, args)
            .unwrap()
            .measurement()
    }
}

// THREAT: T2 — the client's expected measurement equals the node's, and differs after one
// byte of code, one launch argument, or a change of the runtime.
#[test]
fn t2_helloworld_client_measurement_equals_the_nodes_and_tracks_every_input() {
    let w = World::new();
    let node = w.node_side();
    assert_eq!(w.client_side("same", &w.args, &w.runtime), node);

    // One byte of code (same key, same nonce: only the byte differs).
    let app_py = w.code.join("app.py");
    let mut src = fs::read(&app_py).unwrap();
    let original = src.clone();
    src[0] ^= 0x20;
    fs::write(&app_py, &src).unwrap();
    assert_ne!(w.client_side("code", &w.args, &w.runtime), node);
    fs::write(&app_py, &original).unwrap();
    assert_eq!(w.client_side("restored", &w.args, &w.runtime), node);

    // One launch argument.
    let mut args = w.args.clone();
    args[3] = "8444".into();
    assert_ne!(w.client_side("arg", &args, &w.runtime), node);

    // The runtime: one byte of one file.
    fs::write(w.runtime.join("lib/flask.py"), b"# flask!\n").unwrap();
    assert_ne!(w.client_side("runtime", &w.args, &w.runtime), node);
}
