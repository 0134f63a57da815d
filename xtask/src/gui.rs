//! The browser GUI (`services/gui`): installed with `npm ci` and built with Vite when its
//! sources changed since the last build, so that `cargo xtask up` always serves the
//! current one at /gui/.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Result, bail};

use crate::{cmd, paths};

pub fn dir() -> PathBuf {
    paths::root().join("services/gui")
}

fn npm() -> Result<Command> {
    match Command::new("npm").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let mut npm = Command::new("npm");
            npm.current_dir(dir());
            Ok(npm)
        }
        _ => bail!(
            "cannot run `npm`, which builds the GUI. Install Node.js 20 or newer with npm \
             (Debian/Ubuntu: `sudo apt-get install nodejs npm`) and run the command again"
        ),
    }
}

/// Installs the GUI's dependencies when `package-lock.json` changed since the last install.
pub fn install() -> Result<()> {
    let lock = dir().join("package-lock.json");
    let installed = dir().join("node_modules/.package-lock.json");
    if newest(std::slice::from_ref(&lock))? <= modified(&installed) {
        return Ok(());
    }
    eprintln!("Installing the GUI's npm packages...");
    cmd::run(npm()?.args(["ci", "--no-audit", "--no-fund"]))
}

/// Builds the GUI into `services/gui/dist` when a source is newer than the build.
pub fn build() -> Result<()> {
    install()?;
    let root = dir();
    let sources = [
        root.join("src"),
        root.join("index.html"),
        root.join("package.json"),
        root.join("package-lock.json"),
        root.join("vite.config.ts"),
        root.join("tsconfig.json"),
    ];
    if newest(&sources)? <= modified(&root.join("dist/index.html")) {
        return Ok(());
    }
    eprintln!("Building the GUI...");
    cmd::run(npm()?.args(["run", "build"]))
}

/// `npm run <script>` in the GUI's folder, its packages installed first: `test` runs the
/// unit tests (vitest), `test:browser` the browser test (which `cargo xtask test` sets up).
pub fn npm_run(script: &str) -> Result<Command> {
    install()?;
    let mut command = npm()?;
    command.args(["run", script]);
    Ok(command)
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time among `paths` (directories walked).
fn newest(paths: &[PathBuf]) -> Result<Option<SystemTime>> {
    let mut newest = None;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else {
            newest = newest.max(meta.modified().ok());
        }
    }
    Ok(newest)
}
