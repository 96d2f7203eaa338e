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
    // Watch the files git really uses, this checkout's HEAD and its branch:
    // in a worktree `.git` is a file and HEAD lives elsewhere, and a path
    // that does not exist would make cargo rerun this script, and rebuild
    // the crate, on every build; other worktrees' commits change nothing.
    let rev_parse = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("rev-parse")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let dir =
        |what: &str| rev_parse(&["--path-format=absolute", what]).map(std::path::PathBuf::from);
    let branch = rev_parse(&["--symbolic-full-name", "HEAD"]).filter(|r| r.starts_with("refs/"));
    let watched = [
        dir("--git-dir").map(|d| d.join("HEAD")),
        dir("--git-common-dir").zip(branch).map(|(d, r)| d.join(r)),
    ];
    println!("cargo:rerun-if-changed=build.rs");
    for path in watched.into_iter().flatten().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
