//! Every kind of bad configuration fails before anything starts, with a message naming the
//! file, the key and the fix. Each test runs `mse deploy` on one broken copy of a good project.

// Test code: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};

use common::{World, stderr, stdout};
use time::{Duration, OffsetDateTime};

/// A valid project in the seed's layout: code/app.py, secrets.json, a certificate for example.com.
fn project(w: &World) -> PathBuf {
    let dir = w.path("proj");
    std::fs::create_dir_all(dir.join("code")).unwrap();
    std::fs::write(
        dir.join("code/app.py"),
        "from flask import Flask\napp = Flask(__name__)\n",
    )
    .unwrap();
    std::fs::write(dir.join("secrets.json"), "{\"login\": \"alice\"}").unwrap();
    let now = OffsetDateTime::now_utc();
    write_cert(
        &dir,
        "example.com",
        now - Duration::days(1),
        now + Duration::days(30),
    );
    std::fs::write(dir.join("mse.toml"), SEED).unwrap();
    dir
}

const SEED: &str = r#"name="helloworld"
project="default"
resource="free"
[code]
location="./code"
python_application="app:app"
healthcheck_endpoint="/whoami"
docker="ghcr.io/cosmian/mse-flask:20230124182826"
secrets="./secrets.json"
[ssl]
domain_name="example.com"
certificate="./cert.secret.pem"
private_key="./key.secret.pem"
"#;

fn write_cert(dir: &Path, domain: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) {
    let tc = mse_cli::cmd::testcert::generate(domain, not_before, not_after).unwrap();
    std::fs::write(dir.join("cert.secret.pem"), &tc.cert_pem).unwrap();
    std::fs::write(dir.join("key.secret.pem"), tc.key_pem.as_bytes()).unwrap();
}

fn edit(dir: &Path, from: &str, to: &str) {
    let p = dir.join("mse.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "fixture lacks {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

/// Deploy fails with exit 2 before anything starts; returns stderr after checking that it names
/// the file, the key (when given) and a fix.
fn deploy_fails(w: &World, dir: &Path, key: Option<&str>) -> String {
    let toml = dir.join("mse.toml");
    let out = w.run(&["deploy", "--path", toml.to_str().unwrap(), "-y"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "deploy must fail as a usage error"
    );
    let err = stderr(&out);
    assert!(
        err.contains(toml.to_str().unwrap()),
        "names the file: {err}"
    );
    if let Some(key) = key {
        assert!(
            err.contains(&format!("key `{key}`")),
            "names the key `{key}`: {err}"
        );
    }
    assert!(err.contains("fix:"), "gives a fix: {err}");
    // Nothing started: no deployment folder, no context, no key.
    assert!(
        !w.conf().join("deployments").exists(),
        "a deployment folder was created"
    );
    err
}

#[test]
fn the_good_project_passes_the_checks() {
    let w = World::new();
    let dir = project(&w);
    let out = w.run(&[
        "deploy",
        "--check",
        "--path",
        dir.join("mse.toml").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("certificate for example.com"));
}

#[test]
fn missing_key() {
    let w = World::new();
    let dir = project(&w);
    edit(&dir, "python_application=\"app:app\"\n", "");
    let err = deploy_fails(&w, &dir, Some("code.python_application"));
    assert!(err.contains("required and missing"), "{err}");
    assert!(
        err.contains("add `python_application = \"app:app\"`"),
        "{err}"
    );
}

#[test]
fn wrong_type() {
    let w = World::new();
    let dir = project(&w);
    edit(
        &dir,
        "healthcheck_endpoint=\"/whoami\"",
        "healthcheck_endpoint=5",
    );
    let err = deploy_fails(&w, &dir, Some("code.healthcheck_endpoint"));
    assert!(err.contains("must be a string, found an integer"), "{err}");
}

#[test]
fn toml_syntax_error() {
    let w = World::new();
    let dir = project(&w);
    edit(&dir, "name=\"helloworld\"", "name=\"helloworld");
    let err = deploy_fails(&w, &dir, None);
    assert!(err.contains("not valid TOML"), "{err}");
    assert!(err.contains("line 1"), "points at the line: {err}");
}

#[test]
fn module_not_found() {
    let w = World::new();
    let dir = project(&w);
    edit(
        &dir,
        "python_application=\"app:app\"",
        "python_application=\"web.main:app\"",
    );
    let err = deploy_fails(&w, &dir, Some("code.python_application"));
    assert!(err.contains("module `web.main` not found"), "{err}");
    assert!(err.contains("web/main.py"), "says where it looked: {err}");
    assert!(
        err.contains("web/main/__init__.py"),
        "says where it looked: {err}"
    );
}

#[test]
fn a_package_module_is_found() {
    let w = World::new();
    let dir = project(&w);
    std::fs::create_dir_all(dir.join("code/web")).unwrap();
    std::fs::write(dir.join("code/web/__init__.py"), "app = None\n").unwrap();
    edit(
        &dir,
        "python_application=\"app:app\"",
        "python_application=\"web:app\"",
    );
    let out = w.run(&[
        "deploy",
        "--check",
        "--path",
        dir.join("mse.toml").to_str().unwrap(),
    ]);
    assert!(out.status.success());
}

#[test]
fn module_excluded_by_mseignore() {
    let w = World::new();
    let dir = project(&w);
    std::fs::write(dir.join("code/.mseignore"), "# keep it small\napp.py\n").unwrap();
    let err = deploy_fails(&w, &dir, Some("code.python_application"));
    assert!(
        err.contains("excluded by the pattern `app.py` of .mseignore"),
        "{err}"
    );
}

#[test]
fn python_application_not_module_variable() {
    let w = World::new();
    let dir = project(&w);
    edit(
        &dir,
        "python_application=\"app:app\"",
        "python_application=\"app\"",
    );
    let err = deploy_fails(&w, &dir, Some("code.python_application"));
    assert!(err.contains("is not `module:variable`"), "{err}");
}

#[test]
fn healthcheck_without_slash() {
    let w = World::new();
    let dir = project(&w);
    edit(
        &dir,
        "healthcheck_endpoint=\"/whoami\"",
        "healthcheck_endpoint=\"whoami\"",
    );
    let err = deploy_fails(&w, &dir, Some("code.healthcheck_endpoint"));
    assert!(err.contains("does not start with `/`"), "{err}");
    assert!(
        err.contains("healthcheck_endpoint = \"/whoami\""),
        "suggests the corrected value: {err}"
    );
}

#[test]
fn unknown_resource() {
    let w = World::new();
    let dir = project(&w);
    edit(&dir, "resource=\"free\"", "resource=\"gigantic\"");
    let err = deploy_fails(&w, &dir, Some("resource"));
    assert!(err.contains("unknown resource profile `gigantic`"), "{err}");
    assert!(
        err.contains("free, small, medium, large"),
        "lists the known ones: {err}"
    );
}

#[test]
fn domain_not_in_certificate() {
    let w = World::new();
    let dir = project(&w);
    let now = OffsetDateTime::now_utc();
    write_cert(
        &dir,
        "other.org",
        now - Duration::days(1),
        now + Duration::days(30),
    );
    let err = deploy_fails(&w, &dir, Some("ssl.domain_name"));
    assert!(err.contains("does not cover `example.com`"), "{err}");
    assert!(err.contains("other.org"), "shows the names it has: {err}");
}

#[test]
fn wildcard_certificate_covers_a_subdomain() {
    let w = World::new();
    let dir = project(&w);
    let now = OffsetDateTime::now_utc();
    write_cert(
        &dir,
        "*.example.com",
        now - Duration::days(1),
        now + Duration::days(30),
    );
    edit(
        &dir,
        "domain_name=\"example.com\"",
        "domain_name=\"app.example.com\"",
    );
    let out = w.run(&[
        "deploy",
        "--check",
        "--path",
        dir.join("mse.toml").to_str().unwrap(),
    ]);
    assert!(out.status.success());
}

#[test]
fn key_not_matching_certificate() {
    let w = World::new();
    let dir = project(&w);
    let other = mse_cli::cmd::testcert::generate(
        "example.com",
        OffsetDateTime::now_utc(),
        OffsetDateTime::now_utc() + Duration::days(1),
    )
    .unwrap();
    std::fs::write(dir.join("key.secret.pem"), other.key_pem.as_bytes()).unwrap();
    let err = deploy_fails(&w, &dir, Some("ssl.private_key"));
    assert!(err.contains("does not belong to the certificate"), "{err}");
}

#[test]
fn expired_certificate() {
    let w = World::new();
    let dir = project(&w);
    let now = OffsetDateTime::now_utc();
    write_cert(
        &dir,
        "example.com",
        now - Duration::days(60),
        now - Duration::days(1),
    );
    let err = deploy_fails(&w, &dir, Some("ssl.certificate"));
    assert!(err.contains("the certificate expired on"), "{err}");
    assert!(err.contains("renew the certificate"), "{err}");
}

#[test]
fn unreadable_secrets() {
    let w = World::new();
    let dir = project(&w);
    std::fs::remove_file(dir.join("secrets.json")).unwrap();
    let err = deploy_fails(&w, &dir, Some("code.secrets"));
    assert!(
        err.contains("cannot read") && err.contains("secrets.json"),
        "{err}"
    );
}

#[test]
fn secrets_path_is_a_folder() {
    let w = World::new();
    let dir = project(&w);
    std::fs::remove_file(dir.join("secrets.json")).unwrap();
    std::fs::create_dir(dir.join("secrets.json")).unwrap();
    let err = deploy_fails(&w, &dir, Some("code.secrets"));
    assert!(err.contains("secrets.json"), "{err}");
}

#[test]
fn secrets_not_json() {
    let w = World::new();
    let dir = project(&w);
    std::fs::write(dir.join("secrets.json"), "{\"login\": alice}").unwrap();
    let err = deploy_fails(&w, &dir, Some("code.secrets"));
    assert!(err.contains("is not valid JSON"), "{err}");
    assert!(err.contains("line 1"), "points at the position: {err}");
}

#[test]
fn private_key_inside_the_code_folder() {
    let w = World::new();
    let dir = project(&w);
    std::fs::rename(dir.join("key.secret.pem"), dir.join("code/key.secret.pem")).unwrap();
    edit(
        &dir,
        "private_key=\"./key.secret.pem\"",
        "private_key=\"./code/key.secret.pem\"",
    );
    let err = deploy_fails(&w, &dir, Some("ssl.private_key"));
    assert!(err.contains("would be shipped with the code"), "{err}");
    // Excluding it with .mseignore is the documented way out.
    std::fs::write(dir.join("code/.mseignore"), "*.secret.pem\n").unwrap();
    let out = w.run(&[
        "deploy",
        "--check",
        "--path",
        dir.join("mse.toml").to_str().unwrap(),
    ]);
    assert!(out.status.success());
}

#[test]
fn code_folder_missing() {
    let w = World::new();
    let dir = project(&w);
    edit(&dir, "location=\"./code\"", "location=\"./src\"");
    let err = deploy_fails(&w, &dir, Some("code.location"));
    assert!(err.contains("code folder"), "{err}");
}

#[test]
fn the_mse_cli_layout_is_checked_too() {
    let w = World::new();
    let dir = project(&w);
    std::fs::write(
        dir.join("mse.toml"),
        "name = \"x\"\npython_application = \"app:app\"\nhealthcheck_endpoint = \"/\"\ntests_cmd = \"pytest\"\ntests_requirements = [\"pytest\"]\n\n[cloud]\ncode = \"code\"\ntests = \"tests\"\ndocker = \"ghcr.io/cosmian/mse-flask:1\"\nproject = \"p\"\nhardware = \"4g-eu-001\"\n\n[cloud.ssl]\ndomain_name = \"nope.org\"\nprivate_key = \"key.secret.pem\"\ncertificate = \"cert.secret.pem\"\n",
    )
    .unwrap();
    let err = deploy_fails(&w, &dir, Some("cloud.ssl.domain_name"));
    assert!(err.contains("does not cover `nope.org`"), "{err}");
}
