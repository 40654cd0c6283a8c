//! The command line itself, without a node: `--json` on every read command, shell completions,
//! and the client's folder kept private.

// Test code: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::os::unix::fs::PermissionsExt as _;

use clap::CommandFactory as _;
use common::{World, stderr, stdout};

/// The commands that only read: each has `--json`.
const READ_COMMANDS: &[&str] = &["list", "status", "context", "verify", "logs"];

#[test]
fn every_read_command_has_json() {
    let cli = mse_cli::cmd::Cli::command();
    for name in READ_COMMANDS {
        let sub = cli
            .find_subcommand(name)
            .unwrap_or_else(|| panic!("no `mse {name}`"));
        assert!(
            sub.get_arguments().any(|a| a.get_long() == Some("json")),
            "`mse {name}` has no --json"
        );
    }
}

#[test]
fn read_commands_print_json_with_no_deployments() {
    let w = World::new();
    let list = w.run(&["list", "--json"]);
    assert!(list.status.success());
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));

    let ctx = w.run(&["context", "--json"]);
    assert!(ctx.status.success());
    let ctx: serde_json::Value = serde_json::from_slice(&ctx.stdout).unwrap();
    assert_eq!(ctx["contexts"], serde_json::json!([]));
    assert_eq!(ctx["root"], w.conf().to_str().unwrap());

    // An unknown deployment is an error on stderr, exit 2, and nothing half-written on stdout.
    for args in [
        &["status", "nope", "--json"][..],
        &["context", "nope", "--json"],
        &["logs", "nope", "--json"],
    ] {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stdout(&out).is_empty(), "{args:?}");
        assert!(
            stderr(&out).contains("no deployment named `nope`"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn shell_completions_cover_the_commands() {
    let w = World::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = w.run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = stdout(&out);
        for verb in [
            "scaffold",
            "localtest",
            "deploy",
            "status",
            "context",
            "verify",
        ] {
            assert!(script.contains(verb), "{shell} completion lacks {verb}");
        }
        assert!(
            !script.contains("__supervise"),
            "{shell} completion offers the internal supervisor"
        );
    }
    let bad = w.run(&["completions", "cmd.exe"]);
    assert_eq!(bad.status.code(), Some(2));
}

// THREAT: T17
#[test]
fn t17_the_client_folder_is_made_private_whatever_it_was() {
    let w = World::new();
    let conf = w.conf();
    std::fs::create_dir_all(conf.join("deployments/old")).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(w.run(&["list"]).status.success());
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{} is {mode:o}", conf.display());

    let ctx = w.run(&["context", "--json"]);
    let ctx: serde_json::Value = serde_json::from_slice(&ctx.stdout).unwrap();
    assert_eq!(ctx["contexts"][0]["name"], "old");
    // A context with no key file yet says so rather than inventing one.
    assert!(ctx["contexts"][0]["code_secret_key"].is_null(), "{ctx}");
}
