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
    // Rebuild when the checked-out commit changes. Ask git where HEAD and
    // the branch refs live: in a worktree `.git` is a file, and a path that
    // does not exist would make cargo rerun this script on every build.
    println!("cargo:rerun-if-changed=build.rs");
    for name in ["HEAD", "refs/heads", "packed-refs"] {
        let path = std::process::Command::new("git")
            .args(["rev-parse", "--git-path", name])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string());
        if let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
