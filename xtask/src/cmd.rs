//! Running external commands the same way everywhere: echoed first, errors that say which
//! command failed.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// Formats `command` as a shell line for the echo, relative paths where possible.
pub fn shell_line(command: &Command) -> String {
    let mut line = String::new();
    let words = std::iter::once(command.get_program()).chain(command.get_args().map(OsStr::new));
    for (i, word) in words.enumerate() {
        if i > 0 {
            line.push(' ');
        }
        let word = word.to_string_lossy();
        let root = format!("{}/", crate::paths::root().display());
        let word = word.replace(&root, "");
        if word.contains([' ', '\'', '"', '*', '$']) {
            let _ = write!(line, "'{}'", word.replace('\'', r"'\''"));
        } else {
            line.push_str(&word);
        }
    }
    line
}

/// Prints the command as `$ ...` on stderr.
pub fn echo(command: &Command) {
    eprintln!("$ {}", shell_line(command));
}

/// Echoes and runs `command` with inherited stdio; fails unless it exits with 0.
pub fn run(command: &mut Command) -> Result<()> {
    echo(command);
    let status = command
        .status()
        .with_context(|| format!("cannot start `{}`", shell_line(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", shell_line(command));
    }
    Ok(())
}

/// Runs `command` quietly and returns what it wrote to stdout; fails with the command line
/// and what it wrote to stderr unless it exits with 0. Callers add what the failure means
/// with `.context()`.
pub fn read(command: &mut Command) -> Result<String> {
    let output = output(command)?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            shell_line(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `command` quietly and returns its output, whatever its exit status.
pub fn output(command: &mut Command) -> Result<Output> {
    command
        .output()
        .with_context(|| format!("cannot start `{}`", shell_line(command)))
}
