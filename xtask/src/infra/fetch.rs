//! Fetching the servers' jars from Maven Central with `mvn`, into a cache that later runs
//! reuse. The versions are pinned in `deployment/local/pom.xml` only; the cache is keyed
//! by that file's content, so editing a version fetches again.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::paths;

use super::server::Server;

/// Makes sure `server.lib_dir()` holds the jars of the pom's profile for `server`.
pub fn ensure_jars(server: &Server) -> Result<()> {
    let pom_path = paths::local_config_dir().join("pom.xml");
    let pom = fs::read_to_string(&pom_path)
        .with_context(|| format!("cannot read {}", pom_path.display()))?;
    let lib = server.lib_dir();
    let stamp = server.dir().join("lib.stamp");
    if lib.is_dir() && fs::read_to_string(&stamp).is_ok_and(|s| s == pom) {
        return Ok(());
    }
    let version =
        pom_property(&pom, &format!("{}.version", server.name)).unwrap_or_else(|| "?".to_owned());
    check_maven()?;
    eprintln!(
        "Fetching {} {version} and its dependencies from Maven Central (first run only; \
         about 60 MB, usually under a minute)...",
        server.title
    );
    fs::create_dir_all(server.dir())?;
    let staging = server.dir().join("lib.partial");
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    let log_path = server.dir().join("mvn.log");
    let log = fs::File::create(&log_path)?;
    let started = Instant::now();
    let mut mvn = Command::new("mvn");
    mvn.args(["-B", "--no-transfer-progress", "-f"])
        .arg(&pom_path)
        .args(["-P", server.name, "dependency:copy-dependencies"])
        .arg(format!("-DoutputDirectory={}", staging.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    cmd::echo(&mvn);
    let status = mvn.status().context("cannot start `mvn`")?;
    if !status.success() {
        bail!(
            "Maven could not fetch {} {version} ({status}). Check that Maven Central (or the \
             mirror in ~/.m2/settings.xml) is reachable, then run the command again. Last \
             lines of {}:\n{}",
            server.title,
            paths::display(&log_path),
            tail(&log_path, 15)
        );
    }
    if lib.exists() {
        fs::remove_dir_all(&lib)?;
    }
    fs::rename(&staging, &lib)?;
    fs::write(&stamp, pom)?;
    let count = fs::read_dir(&lib)?.count();
    eprintln!(
        "Fetched {count} jars for {} in {:.1}s into {}",
        server.title,
        started.elapsed().as_secs_f64(),
        paths::display(&lib)
    );
    Ok(())
}

fn check_maven() -> Result<()> {
    match Command::new("mvn").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => bail!(
            "cannot run `mvn`: it fetches Kafka and Cassandra from Maven Central on the first \
             run. Install Maven 3 (Debian/Ubuntu: `sudo apt-get install maven`; macOS: \
             `brew install maven`) and run the command again"
        ),
    }
}

/// The value of `<name>...</name>` in the pom, for messages.
pub fn pom_property(pom: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = pom.find(&open)? + open.len();
    let end = pom[start..].find('<')? + start;
    Some(pom[start..end].trim().to_owned())
}

/// The last `lines` lines of a text file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::pom_property;

    #[test]
    fn reads_versions_from_the_committed_pom() {
        let pom = include_str!("../../../deployment/local/pom.xml");
        let kafka = pom_property(pom, "kafka.version").unwrap();
        let cassandra = pom_property(pom, "cassandra.version").unwrap();
        assert!(kafka.starts_with("4."), "Kafka 4.x expected, got {kafka}");
        assert!(
            cassandra.starts_with("5.0."),
            "Cassandra 5.0.x expected, got {cassandra}"
        );
    }
}
