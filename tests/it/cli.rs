//! Every subcommand as a real process: exit codes and output for success and misuse.

use crate::fixtures;
use crate::helpers::{Sandbox, Server, bare_kitteh, migration_names};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_prints_the_package_version() {
    let sb = Sandbox::sqlite();
    let out = sb.kitteh().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        format!("kitteh {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn version_verbose_names_commit_target_rustc_profile_and_newest_migration() {
    let sb = Sandbox::sqlite();
    let out = sb.kitteh().args(["version", "--verbose"]).output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    for field in [
        "commit:",
        "target:",
        "rustc:",
        "profile:",
        "allocator:",
        "newest migration:",
    ] {
        assert!(text.contains(field), "missing {field} in {text}");
    }
    assert!(text.contains("allocator:        mimalloc"), "{text}");
    assert!(text.contains("x86_64"), "{text}");
    assert!(text.contains(&crate::helpers::newest_migration()), "{text}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_success() {
    // A reader that stops early (`| head -1`, `| grep -q`) closes the pipe
    // before the command has written everything.
    let sb = Sandbox::sqlite();
    let with_stdout_closed = |args: &[&str]| {
        let mut child = sb
            .kitteh()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    };
    let out = with_stdout_closed(&["version", "--verbose"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");

    // A command with work to do finishes it (`migrate | head -1` applies
    // every migration, not only the first).
    let out = with_stdout_closed(&["migrate"]);
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    let status = sb.kitteh().args(["migrate", "status"]).output().unwrap();
    let text = stdout(&status);
    assert!(status.status.success());
    assert!(
        !text.contains("pending") && text.contains("applied"),
        "{text}"
    );
}

#[test]
fn version_json_is_parseable_and_complete() {
    let sb = Sandbox::sqlite();
    let out = sb.kitteh().args(["version", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    for key in [
        "commit",
        "target",
        "rustc",
        "profile",
        "allocator",
        "newest_migration",
    ] {
        assert!(
            v[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key} in {v}"
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    let sb = Sandbox::sqlite();
    let commands: &[&[&str]] = &[
        &["serve"],
        &["migrate"],
        &["migrate", "up"],
        &["migrate", "status"],
        &["migrate", "down"],
        &["migrate", "fresh"],
        &["variants"],
        &["variants", "status"],
        &["variants", "rebuild"],
        &["storage"],
        &["storage", "check"],
        &["storage", "migrate"],
        &["version"],
        &["config"],
        &["healthcheck"],
    ];
    for cmd in commands {
        let out = sb.kitteh().args(*cmd).arg("--help").output().unwrap();
        let label = cmd.join(" ");
        assert!(
            out.status.success(),
            "{label} --help failed: {}",
            stderr(&out)
        );
        let text = stdout(&out);
        assert!(
            text.contains(&format!("Usage: kitteh {label}")),
            "{label}: {text}"
        );
    }
    let flags: &[(&[&str], &str)] = &[
        (&["migrate", "down"], "--steps"),
        (&["migrate", "fresh"], "--yes"),
        (&["variants", "rebuild"], "--failed"),
        (&["storage", "migrate"], "--jobs"),
        (&["version"], "--json"),
        (&["config"], "--check"),
    ];
    for (cmd, flag) in flags {
        let out = sb.kitteh().args(*cmd).arg("--help").output().unwrap();
        assert!(out.status.success(), "{cmd:?} --help failed");
        assert!(stdout(&out).contains(flag), "{cmd:?} lacks {flag}");
    }
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    let sb = Sandbox::sqlite();
    let out = sb.kitteh().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unrecognized subcommand"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_subcommand_prints_usage_and_fails() {
    let sb = Sandbox::sqlite();
    let out = sb.kitteh().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Usage: kitteh"));
}

#[test]
fn a_missing_config_file_given_explicitly_is_an_error() {
    let sb = Sandbox::sqlite();
    let out = sb
        .kitteh()
        .args(["--config", "nope.toml", "config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nope.toml does not exist"),
        "{}",
        stderr(&out)
    );
    // The same through the environment variable.
    let out = sb
        .kitteh()
        .env("KITTEH_CONFIG", "gone.toml")
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("gone.toml does not exist"));
}

#[test]
fn migrate_fresh_refuses_without_yes_and_keeps_the_data() {
    let sb = Sandbox::sqlite();
    {
        let server = Server::start(&sb, &["--migrate"]);
        let res = server.upload("keep.png", "image/png", &fixtures::png(8, 8));
        assert_eq!(res.status, 201, "{}", res.text());
    }
    assert_eq!(sb.count_rows(), 1);
    let out = sb.kitteh().args(["migrate", "fresh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));

    // Nothing was dropped: every migration is still applied, and the row
    // is still there.
    let status = sb.kitteh().args(["migrate", "status"]).output().unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let lines: Vec<String> = stdout(&status).lines().map(str::to_string).collect();
    let expected: Vec<String> = migration_names()
        .into_iter()
        .map(|name| format!("applied  {name}"))
        .collect();
    assert_eq!(lines, expected);
    assert_eq!(sb.count_rows(), 1);
}

#[test]
fn migrate_down_rejects_zero_steps() {
    let sb = Sandbox::sqlite();
    let out = sb
        .kitteh()
        .args(["migrate", "down", "-n", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn healthcheck_against_nothing_listening_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::helpers::free_port();
    let out = bare_kitteh(dir.path())
        .args(["healthcheck", &format!("http://127.0.0.1:{port}/readyz")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn healthcheck_rejects_https_urls_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = bare_kitteh(dir.path())
        .args(["healthcheck", "https://127.0.0.1:1/readyz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("only http://"));
}
