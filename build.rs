//! Stamps build facts into the binary for `kitteh version --verbose`.
//! Nothing here may fail the build: a tarball without git, or a toolchain
//! that hides its version, still builds, reporting `unknown`.

use std::process::Command;

fn main() {
    // A container build has no .git; the Dockerfile passes the commit in.
    let commit = std::env::var("KITTEH_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| run("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());

    println!("cargo:rustc-env=KITTEH_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=KITTEH_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=KITTEH_TARGET={target}");
    println!("cargo:rustc-env=KITTEH_PROFILE={profile}");
    println!("cargo:rerun-if-env-changed=KITTEH_GIT_COMMIT");
    // Re-stamp when HEAD moves; harmless when these files are absent.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-changed=build.rs");
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
