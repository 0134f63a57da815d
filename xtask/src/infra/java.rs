//! Finding a Java 17 or newer: `$JAVA_HOME/bin/java` when set, else `java` on the PATH.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

/// The oldest Java that both Kafka 4 (broker) and Cassandra 5.0 run on.
const MIN_MAJOR: u32 = 17;

/// A Java runtime that was checked to be new enough.
#[derive(Debug, Clone)]
pub struct Java {
    pub executable: PathBuf,
    pub major: u32,
}

/// Finds the Java to run the servers with, or says how to get one.
pub fn find() -> Result<Java> {
    let executable = match std::env::var_os("JAVA_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join("bin").join("java"),
        _ => PathBuf::from("java"),
    };
    let output = match Command::new(&executable).arg("-version").output() {
        Ok(output) => output,
        Err(error) => bail!(
            "cannot run `{}` ({error}): Kafka and Cassandra need Java {MIN_MAJOR}. Install a JDK \
             (Debian/Ubuntu: `sudo apt-get install openjdk-17-jdk-headless`) or point JAVA_HOME \
             at one",
            executable.display()
        ),
    };
    // `java -version` writes to stderr: `openjdk version "17.0.15" 2025-04-15`.
    let text = String::from_utf8_lossy(&output.stderr);
    let Some(major) = parse_major(&text) else {
        bail!(
            "cannot tell the version of `{}` from its output:\n{text}",
            executable.display()
        )
    };
    if major < MIN_MAJOR {
        bail!(
            "`{}` is Java {major}; Kafka 4 and Cassandra 5.0 need Java {MIN_MAJOR}. Install \
             one (Debian/Ubuntu: `sudo apt-get install openjdk-17-jdk-headless`) and set \
             JAVA_HOME to it",
            executable.display()
        );
    }
    Ok(Java { executable, major })
}

/// The major version in `java -version` output; "1.8.0_392" is Java 8.
fn parse_major(text: &str) -> Option<u32> {
    let quoted = text.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    match parts.next()?.parse().ok()? {
        1 => parts.next()?.parse().ok(),
        major => Some(major),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_major;

    #[test]
    fn reads_the_major_version() {
        assert_eq!(
            parse_major("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime"),
            Some(17)
        );
        assert_eq!(parse_major("java version \"1.8.0_392\""), Some(8));
        assert_eq!(parse_major("openjdk version \"21\" 2023-09-19"), Some(21));
        assert_eq!(parse_major("openjdk version \"25-ea\""), Some(25));
        assert_eq!(parse_major("no version here"), None);
    }
}
