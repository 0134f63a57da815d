//! Where things are: the workspace root and the directories under `target/` that xtask owns.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// `target/infra`: jars, configuration, data and logs of the local servers.
pub fn infra_dir() -> PathBuf {
    root().join("target").join("infra")
}

/// `deployment/local`: the committed configuration of the local servers.
pub fn local_config_dir() -> PathBuf {
    root().join("deployment").join("local")
}

/// A path relative to the workspace root when it is inside it, for messages.
pub fn display(path: &Path) -> String {
    let root = root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"))
}

/// This xtask program, for the commands it hands to children (the browser test stops and
/// starts the notifier with it). During `cargo xtask test`, Cargo may link a new xtask
/// over the running one (the workspace build unifies other features), which leaves
/// `current_exe()` naming a deleted file; `/proc/<pid>/exe` still runs this process's own
/// program on Linux.
pub fn xtask_program() -> std::io::Result<PathBuf> {
    let own = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    if own.exists() {
        Ok(own)
    } else {
        std::env::current_exe()
    }
}
