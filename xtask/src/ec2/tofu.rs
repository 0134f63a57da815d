//! The Terraform program that `cargo xtask ec2` drives (`tofu` or `terraform`): finding it,
//! running it on one environment (blue and green: a workspace each of
//! `terraform/environments/app`; the proxy: `terraform/environments/proxy`), and reading
//! that environment's outputs and settings.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::cmd;

/// Which Terraform program to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ToolKind {
    /// OpenTofu (`tofu`).
    Tofu,
    /// HashiCorp Terraform (`terraform`).
    Terraform,
}

impl ToolKind {
    fn program(self) -> &'static str {
        match self {
            ToolKind::Tofu => "tofu",
            ToolKind::Terraform => "terraform",
        }
    }
}

/// Something with a state of its own: an application environment (a workspace of the
/// `app` root) or the TLS proxy (the `proxy` root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Env {
    Blue,
    Green,
    /// The TLS proxy in front of blue and green.
    Proxy,
}

impl Env {
    pub const ALL: [Env; 3] = [Env::Blue, Env::Green, Env::Proxy];

    pub fn name(self) -> &'static str {
        match self {
            Env::Blue => "blue",
            Env::Green => "green",
            Env::Proxy => "proxy",
        }
    }

    /// The Terraform root under `environments/`, and the workspace in it.
    fn root_and_workspace(self) -> (&'static str, &'static str) {
        match self {
            Env::Blue | Env::Green => ("app", self.name()),
            Env::Proxy => ("proxy", "default"),
        }
    }

    /// The other application environment (the proxy has none).
    pub fn other(self) -> Option<Env> {
        match self {
            Env::Blue => Some(Env::Green),
            Env::Green => Some(Env::Blue),
            Env::Proxy => None,
        }
    }
}

impl std::fmt::Display for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The Terraform program and the directory that holds `environments/`.
#[derive(Debug)]
pub struct Tofu {
    program: PathBuf,
    root: PathBuf,
}

impl Tofu {
    /// Finds `choice` on the PATH, or else the first of tofu and terraform that is there.
    pub fn find(choice: Option<ToolKind>, root: &Path) -> Result<Self> {
        let kinds = match choice {
            Some(kind) => vec![kind],
            None => vec![ToolKind::Tofu, ToolKind::Terraform],
        };
        for kind in &kinds {
            if let Some(program) = crate::tools::find_program(kind.program()) {
                return Ok(Tofu {
                    program,
                    root: root.to_path_buf(),
                });
            }
        }
        let names: Vec<&str> = kinds.iter().map(|k| k.program()).collect();
        bail!(
            "cannot find {} on the PATH. Install OpenTofu (https://opentofu.org/docs/intro/install/) \
             or Terraform; `cargo xtask ec2 check` also builds tofu into target/tools/tofu, which \
             you can put on your PATH",
            names.join(" or ")
        )
    }

    /// The environment's Terraform root.
    pub fn dir(&self, env: Env) -> PathBuf {
        self.root
            .join("environments")
            .join(env.root_and_workspace().0)
    }

    /// Where the local backend keeps the environment's state.
    fn state_file(&self, env: Env) -> PathBuf {
        match env.root_and_workspace() {
            (_, "default") => self.dir(env).join("terraform.tfstate"),
            (_, workspace) => self
                .dir(env)
                .join("terraform.tfstate.d")
                .join(workspace)
                .join("terraform.tfstate"),
        }
    }

    /// The settings that `up` or `switch` keep per environment, beside its root
    /// (`blue.tfvars.json`, ...), passed to every apply and destroy with `-var-file`.
    fn settings_file(&self, env: Env) -> PathBuf {
        self.dir(env).join(format!("{env}.tfvars.json"))
    }

    /// The program in the environment's root and workspace. The workspace is named by
    /// TF_WORKSPACE on every command rather than only selected once: blue and green share
    /// the root, and a command for one must not act on the other that another shell has
    /// just selected.
    fn command(&self, env: Env) -> Command {
        let mut command = Command::new(&self.program);
        command
            .arg(format!("-chdir={}", self.dir(env).display()))
            .env("TF_WORKSPACE", env.root_and_workspace().1);
        command
    }

    /// `init` (providers and the local backend; quick when done before), then the
    /// environment's workspace, created on first use.
    pub fn init(&self, env: Env) -> Result<()> {
        eprintln!("Initialising {env} (providers from the registry on the first run)...");
        let dir = crate::paths::display(&self.dir(env));
        // Both refuse to run while TF_WORKSPACE names a workspace that does not exist yet.
        let mut init = self.command(env);
        init.env_remove("TF_WORKSPACE")
            .args(["init", "-input=false"]);
        cmd::run(&mut init).with_context(|| format!("cannot initialise {dir}"))?;
        let workspace = env.root_and_workspace().1;
        let mut select = self.command(env);
        select
            .env_remove("TF_WORKSPACE")
            .args(["workspace", "select", "-or-create", workspace]);
        cmd::run(&mut select)
            .with_context(|| format!("cannot select the workspace {workspace} of {dir}"))
    }

    /// `apply` with the environment's settings, asking for confirmation unless
    /// `auto_approve`.
    pub fn apply(&self, env: Env, auto_approve: bool) -> Result<()> {
        self.change(env, "apply", auto_approve)
    }

    /// `destroy` with the environment's settings, asking for confirmation unless
    /// `auto_approve`.
    pub fn destroy(&self, env: Env, auto_approve: bool) -> Result<()> {
        self.change(env, "destroy", auto_approve)
    }

    fn change(&self, env: Env, verb: &str, auto_approve: bool) -> Result<()> {
        let mut command = self.command(env);
        command.args([verb, "-input=false"]);
        // Without it (never written, or deleted) tofu names each variable it lacks.
        if self.settings_file(env).exists() {
            command.arg(format!("-var-file={env}.tfvars.json"));
        }
        if auto_approve {
            command.arg("-auto-approve");
        }
        cmd::run(&mut command)
    }

    /// The environment's outputs; empty when it has no state (never applied, or destroyed).
    pub fn outputs(&self, env: Env) -> Result<Outputs> {
        // No local state: nothing was ever applied (and tofu would only ask for `init`,
        // which needs the provider registry).
        if !self.state_file(env).exists() {
            return Ok(Outputs::default());
        }
        let mut command = self.command(env);
        command.args(["output", "-json"]);
        cmd::echo(&command);
        let text = cmd::read(&mut command)?;
        if text.trim().is_empty() {
            return Ok(Outputs::default());
        }
        let json: BTreeMap<String, Value> = serde_json::from_str(&text)
            .with_context(|| format!("`{}` printed no JSON object", cmd::shell_line(&command)))?;
        Ok(Outputs(
            json.into_iter()
                .filter_map(|(name, o)| Some((name, o.get("value")?.clone())))
                .collect(),
        ))
    }

    /// The settings that `up` or `switch` last wrote for `env`.
    pub fn settings(&self, env: Env) -> Result<Map<String, Value>> {
        let path = self.settings_file(env);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON object", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn write_settings(&self, env: Env, settings: &Map<String, Value>) -> Result<()> {
        let path = self.settings_file(env);
        let text = serde_json::to_string_pretty(settings)? + "\n";
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// An environment's outputs by name.
#[derive(Debug, Default)]
pub struct Outputs(BTreeMap<String, Value>);

impl Outputs {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// An output that must be there, with an error that names the environment.
    pub fn require(&self, env: Env, name: &str) -> Result<&str> {
        self.get(name)
            .with_context(|| format!("{env} has no output `{name}`: is it deployed?"))
    }
}

/// Fails with what to do when no AWS credentials can be found: the environment variables
/// and files that the AWS provider reads. (An instance role cannot be seen from here; on
/// such a machine set AWS_PROFILE or export the role's credentials.)
pub fn require_aws_credentials() -> Result<()> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        return Ok(());
    }
    if [
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ]
    .iter()
    .any(|v| set(v))
    {
        return Ok(());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    if [
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        file("AWS_CONFIG_FILE", "config"),
    ]
    .into_iter()
    .flatten()
    .any(|p| p.is_file())
    {
        return Ok(());
    }
    bail!(
        "no AWS credentials found: set AWS_PROFILE (after `aws configure` or `aws sso login`), \
         or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, then run the command again"
    )
}
