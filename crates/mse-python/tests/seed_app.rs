//! The seed's example app (docs: "Develop your app"), with a secrets file, served as the node will.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use common::*;
use mse_python::{Interface, PyApp};

const SEED_APP: &str = r#"
import os
import json
from http import HTTPStatus
from pathlib import Path
from datetime import datetime
from flask import Flask, Response
app = Flask(__name__)
WORKFILE: Path = Path(os.getenv("HOME")) / "date.txt"
@app.route('/whoami')
def whoami():
    """A simple example manipulating secrets."""
    secrets = json.loads(Path(os.getenv("SECRETS_PATH")).read_text())
    return secrets["login"]
@app.post('/')
def write_date():
    """A simple example of file writting."""
    WORKFILE.write_text(str(datetime.now()))
    return Response(status=HTTPStatus.OK)
@app.route('/')
def read_date():
    """A simple example of file reading."""
    if not WORKFILE.exists():
        return Response(response="You should write before read",
                        status=HTTPStatus.NOT_FOUND)
    txt = WORKFILE.read_text()
    WORKFILE.unlink()
    return txt
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_example_app_reads_its_secrets_and_its_home() {
    init_logs();
    let Some(site) = site_packages("the_seed_example_app_reads_its_secrets_and_its_home") else {
        return;
    };
    let dir = AppDir::new(&[("app.py", SEED_APP)]);
    let home = dir.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let secrets = dir.path("home/.cache/mse/secrets.json");
    std::fs::create_dir_all(secrets.parent().unwrap()).unwrap();
    std::fs::write(
        &secrets,
        r#"{"login": "alice@example.com", "password": "not-in-the-code"}"#,
    )
    .unwrap();

    let mut cfg = dir.config("app:app", &site);
    cfg.env = vec![
        ("HOME".into(), home.to_str().unwrap().into()),
        ("SECRETS_PATH".into(), secrets.to_str().unwrap().into()),
    ];
    let app = PyApp::load(cfg).unwrap();
    assert_eq!(app.interface(), Interface::Wsgi);
    let addr = serve(app.clone()).await;

    let r = send(addr, get("/whoami")).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "alice@example.com")
    );

    let r = send(addr, get("/")).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (404, "You should write before read")
    );

    let r = send(addr, post("/", "text/plain", "")).await;
    assert_eq!(r.status, 200);
    assert!(home.join("date.txt").is_file(), "the app writes into $HOME");

    let r = send(addr, get("/")).await;
    assert_eq!(r.status, 200);
    let written = r.text();
    assert!(
        written.starts_with("20") && written.contains(':'),
        "a datetime, got {written:?}"
    );
    assert!(
        !home.join("date.txt").exists(),
        "the app removes the file after reading it"
    );

    let r = send(addr, get("/")).await;
    assert_eq!(r.status, 404);

    app.shutdown().await;
    let r = send(addr, get("/whoami")).await;
    assert_eq!(r.status, 503, "a shut-down app answers 503");
}
