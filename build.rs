//! Records the git commit (when built from a checkout) for `turnpike version`
//! and `--version`. Outside a checkout (a packaged source), set
//! `TURNPIKE_GIT_COMMIT` at build time; it also overrides a checkout's.
fn main() {
    println!("cargo:rerun-if-env-changed=TURNPIKE_GIT_COMMIT");
    let commit = std::env::var("TURNPIKE_GIT_COMMIT")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::process::Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TURNPIKE_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
