//! Helpers of the bench in processes of their own (`perf bare-sse`, `perf otlp-sink`):
//! what they spend is then their own in the CPU and memory figures, not the load
//! generator's, and their work does not run on the generator's threads. They talk over
//! stdin and stdout, a line at a time: the first line out is their address.

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub struct Helper {
    /// The first line it printed: the address it serves.
    pub address: String,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Helper {
    /// Runs `perf <subcommand> <args>` and waits for its address.
    pub async fn start(subcommand: &str, args: &[&str]) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(subcommand)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start `perf {subcommand}`"))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let address = stdout
            .next_line()
            .await?
            .with_context(|| format!("`perf {subcommand}` ended before printing its address"))?;
        Ok(Self {
            address,
            child,
            stdin,
            stdout,
        })
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.id().map(|id| id as i32)
    }

    /// Sends one line (which must not hold a newline).
    pub async fn send(&mut self, line: &str) -> Result<()> {
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.write_all(b"\n").await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Sends `line` and reads the answer line.
    pub async fn ask(&mut self, line: &str) -> Result<String> {
        self.send(line).await?;
        self.stdout
            .next_line()
            .await?
            .context("the helper ended without answering")
    }
}

/// The helper's side: prints `address`, then calls `on_line` with each line of stdin and
/// prints what it returns (if anything), until stdin closes.
pub async fn serve_lines(
    address: &str,
    mut on_line: impl FnMut(&str) -> Option<String>,
) -> Result<()> {
    let mut out = tokio::io::stdout();
    out.write_all(format!("{address}\n").as_bytes()).await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(answer) = on_line(&line) {
            out.write_all(format!("{answer}\n").as_bytes()).await?;
            out.flush().await?;
        }
    }
    Ok(())
}
