//! Pinned tools that xtask builds once and caches under `target/tools/`: Go programs from a
//! `go.mod` committed beside what they check (Jaeger, kustomize, OpenTofu, ...), and Python
//! programs from PyPI in one virtual environment (checkov, ...).
//!
//! A tool is rebuilt only when the file that pins it (`go.sum`, or the pinned requirement)
//! changed since the last build, so a warm run costs nothing. Every tool that a test needs
//! comes from here: the tests fail, not skip, when a tool cannot be had.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cmd, paths};

/// `target/tools` (honours `CARGO_TARGET_DIR`).
pub fn dir() -> PathBuf {
    paths::target_dir().join("tools")
}

/// A Go program pinned by the `go.mod` in `module_dir` (relative to the workspace root).
#[derive(Debug, Clone, Copy)]
pub struct GoTool {
    /// The file name under `target/tools/`.
    pub name: &'static str,
    /// The directory of the pinning `go.mod` / `go.sum`, relative to the workspace root.
    pub module_dir: &'static str,
    /// The Go packages to build (`go build -o DIR PKG...` when more than one).
    pub packages: &'static [&'static str],
    /// Extra `-ldflags` (for example version stamps), empty for none.
    pub ldflags: &'static str,
    /// Roughly how long a cold build takes here, for the progress message.
    pub cold_build: &'static str,
}

impl GoTool {
    /// The built program (for a tool of several packages: the directory holding them).
    pub fn path(&self) -> PathBuf {
        dir().join(self.name)
    }

    /// Builds the tool unless the build on disk came from the same `go.sum`.
    pub fn ensure(&self) -> Result<PathBuf> {
        let module = paths::root().join(self.module_dir);
        let sum = fs::read_to_string(module.join("go.sum"))
            .with_context(|| format!("cannot read {}/go.sum", self.module_dir))?;
        let stamp_key = format!("{sum}\n{}\n{}", self.packages.join(" "), self.ldflags);
        let out = self.path();
        let stamp = dir().join(format!("{}.stamp", self.name));
        if out.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == stamp_key) {
            return Ok(out);
        }
        require_go(self.name)?;
        fs::create_dir_all(dir())?;
        eprintln!(
            "Building {} from the Go module proxy, pinned in {}/go.mod (first run only; {} cold)...",
            self.name, self.module_dir, self.cold_build
        );
        let started = Instant::now();
        // At low priority: a cold build takes minutes of every core, and the machine is
        // shared with the tests and people's shells.
        let mut go = if Path::new("/usr/bin/nice").exists() {
            let mut nice = Command::new("nice");
            nice.args(["-n", "10", "go"]);
            nice
        } else {
            Command::new("go")
        };
        go.current_dir(&module).args(["build", "-trimpath"]);
        if !self.ldflags.is_empty() {
            go.arg(format!("-ldflags={}", self.ldflags));
        }
        if self.packages.len() > 1 {
            fs::create_dir_all(&out)?;
            // `go build -o DIR/` writes one program per package into DIR.
            go.arg("-o").arg(format!("{}/", out.display()));
        } else {
            go.arg("-o").arg(&out);
        }
        go.args(self.packages);
        cmd::run(&mut go)?;
        fs::write(&stamp, stamp_key)?;
        eprintln!(
            "Built {} in {:.0}s",
            self.name,
            started.elapsed().as_secs_f64()
        );
        Ok(out)
    }
}

fn require_go(what: &str) -> Result<()> {
    if !Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        bail!(
            "cannot run `go`, which builds {what} from the Go module proxy. Install Go 1.24 or \
             newer (Debian: `apt-get install golang`, or https://go.dev/dl) and run the \
             command again"
        );
    }
    Ok(())
}

/// A Go build with cgo switches and build tags (which [`GoTool`] does not know), always into
/// a directory of programs: the local cluster's node, containerd, CoreDNS and the
/// stand-ins' programs.
/// rebuilt only when the pinning `go.sum`, the packages or the switches change.
pub struct GoBuild {
    pub name: &'static str,
    pub module_dir: &'static str,
    pub packages: &'static [&'static str],
    /// `CGO_ENABLED`: "1" for containerd (as its own release builds), "0" for a program
    /// that must be static for a FROM-scratch image.
    pub cgo: &'static str,
    pub tags: &'static str,
    pub ldflags: &'static str,
    pub cold_build: &'static str,
}

impl GoBuild {
    pub fn ensure(&self) -> Result<PathBuf> {
        let module = paths::root().join(self.module_dir);
        let sum = fs::read_to_string(module.join("go.sum"))
            .with_context(|| format!("cannot read {}/go.sum", self.module_dir))?;
        let mut sources = String::new();
        if self.packages.iter().any(|p| p.starts_with("./")) {
            // The module's own programs: their sources are part of the key.
            for package in self.packages {
                for entry in fs::read_dir(module.join(package))? {
                    sources.push_str(&fs::read_to_string(entry?.path())?);
                }
            }
        }
        let key = format!(
            "{sum}\n{}\n{} {} {}\n{sources}",
            self.packages.join(" "),
            self.cgo,
            self.tags,
            self.ldflags
        );
        let out = dir().join(self.name);
        let stamp = dir().join(format!("{}.stamp", self.name));
        if out.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
            return Ok(out);
        }
        eprintln!(
            "    building {} from the Go module proxy, pinned in {}/go.mod ({} cold)...",
            self.name, self.module_dir, self.cold_build
        );
        let started = Instant::now();
        fs::create_dir_all(&out)?;
        // At low priority: the machine is shared with the tests and people's shells.
        let mut go = Command::new("nice");
        go.args(["-n", "10", "go", "build", "-trimpath"])
            .current_dir(&module)
            .env("CGO_ENABLED", self.cgo);
        if !self.tags.is_empty() {
            go.args(["-tags", self.tags]);
        }
        go.arg(format!("-ldflags={}", self.ldflags))
            .arg("-o")
            .arg(format!("{}/", out.display()))
            .args(self.packages);
        cmd::run(&mut go)?;
        fs::write(&stamp, key)?;
        eprintln!(
            "    built {} in {:.0}s",
            self.name,
            started.elapsed().as_secs_f64()
        );
        Ok(out)
    }
}

/// A Python program from PyPI, pinned as `requirement` (`name==version`), installed into
/// the shared virtual environment `target/tools/venv` (or one of its own, [`Self::ensure_in`]).
#[derive(Debug, Clone, Copy)]
pub struct PyTool {
    /// The program's name in the environment's `bin/`.
    pub program: &'static str,
    /// The pinned requirement, e.g. `checkov==3.3.30`.
    pub requirement: &'static str,
}

impl PyTool {
    /// Installs the tool unless the environment already holds this pinned version.
    pub fn ensure(&self) -> Result<PathBuf> {
        self.ensure_in("venv")
    }

    /// As [`Self::ensure`], in the virtual environment `target/tools/<venv>`: for a tool
    /// whose pinned dependencies would replace those of the tools in the shared one.
    pub fn ensure_in(&self, venv: &str) -> Result<PathBuf> {
        let venv = dir().join(venv);
        let program = venv.join("bin").join(self.program);
        let stamp = venv.join(format!("{}.stamp", self.program));
        if program.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == self.requirement) {
            return Ok(program);
        }
        if !venv.join("bin/python").exists() {
            fs::create_dir_all(dir())?;
            cmd::run(Command::new(python()?).args(["-m", "venv"]).arg(&venv)).context(
                "cannot create a Python virtual environment (Debian: `apt-get install \
                 python3-venv`)",
            )?;
        }
        eprintln!(
            "Installing {} from PyPI into {} (first run only)...",
            self.requirement,
            paths::display(&venv)
        );
        cmd::run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(self.requirement),
        )?;
        fs::write(&stamp, self.requirement)?;
        Ok(program)
    }
}

fn python() -> Result<&'static str> {
    for candidate in ["python3", "python"] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(candidate);
        }
    }
    bail!(
        "cannot find python3, which installs the Python tools (Debian: `apt-get install python3 python3-venv`)"
    )
}

/// Where `program` is: on `PATH`, or in `/usr/sbin` (where Debian keeps nginx).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

/// Fails with the install command when a program from the system's packages is missing.
pub fn require_program(program: &str, debian_package: &str) -> Result<PathBuf> {
    find_program(program).with_context(|| {
        format!(
            "cannot find `{program}`. Install it (Debian: `apt-get install {debian_package}`, or \
             `cargo xtask doctor --install` for everything) and run the command again"
        )
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
