//! The terraform checks of `cargo xtask test` (also `cargo xtask ec2 check`): everything
//! about `terraform/` that can be checked without the AWS provider, which no machine here
//! can download. `tofu init`, `validate` and `plan` need it, so they run only where the
//! provider registry is reachable (see README, "Run it on AWS").
//!
//! The user data is rendered by OpenTofu itself: each host's script is the output of a
//! provider-less module (`modules/*/user_data`), which `tofu console` evaluates offline with
//! sample values; bash -n and shellcheck then read exactly what a host would run, and the
//! same module must refuse every value in [`REFUSED`].

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::tools::{self, GoTool, PyTool};
use crate::{cmd, paths};

/// OpenTofu, built from the Go module proxy (`terraform/tools/tofu/go.mod`).
pub const TOFU: GoTool = GoTool {
    name: "tofu",
    module_dir: "terraform/tools/tofu",
    packages: &["github.com/opentofu/opentofu/cmd/tofu"],
    // Stripped, and a release build: without `dev=no` it calls itself v1.12.6-dev.
    ldflags: "-s -w -X github.com/opentofu/opentofu/version.dev=no",
    cold_build: "about 10 minutes on 2 busy cores",
};

/// tflint with its bundled terraform ruleset (`terraform/tools/tflint/go.mod`).
pub const TFLINT: GoTool = GoTool {
    name: "tflint",
    module_dir: "terraform/tools/tflint",
    packages: &["github.com/terraform-linters/tflint"],
    ldflags: "-s -w",
    cold_build: "about 5 minutes on 2 busy cores",
};

/// checkov from PyPI; the Kubernetes checks share this pin and its environment.
pub const CHECKOV: PyTool = PyTool {
    program: "checkov",
    requirement: "checkov==3.3.30",
};

/// A user-data module and the values a host's script is rendered with: what `cargo xtask
/// ec2 up` and `switch` pass.
pub(super) struct UserData {
    pub name: &'static str,
    pub module: &'static str,
    pub sample: &'static [(&'static str, &'static str)],
}

pub(super) const USER_DATA: [UserData; 2] = [
    UserData {
        name: "app_host",
        module: "terraform/modules/app_host/user_data",
        sample: &[
            ("environment", "blue"),
            ("repo_url", "https://git.example.com/kafka-cqrs.git"),
            ("git_ref", "main"),
            ("proxy_cidr", "172.31.0.0/16"),
        ],
    },
    UserData {
        name: "tls_proxy",
        module: "terraform/modules/tls_proxy/user_data",
        sample: &[("domain", "demo.example.com"), ("email", "ops@example.com")],
    },
];

/// Values of the app host's script that must never reach it: the module refuses each (and
/// so does `cargo xtask ec2 up`, tested beside it).
pub(super) const REFUSED: &[(&str, &str)] = &[
    ("environment", "default"),
    ("repo_url", "git@github.com:owner/repo.git"),
    ("repo_url", "ssh://git@github.com/owner/repo.git"),
    ("repo_url", "https://user:token@github.com/owner/repo.git"),
    ("repo_url", "https://token@github.com/owner/repo.git"),
    ("repo_url", "http://github.com/owner/repo.git"),
    ("repo_url", "https://github.com/owner/repo.git'; reboot; '"),
    ("git_ref", "--upload-pack=touch /tmp/owned"),
    ("git_ref", "main; reboot"),
];

/// Runs every check and fails on the first that fails.
pub fn run() -> Result<()> {
    let terraform = paths::root().join("terraform");

    let tofu = TOFU.ensure()?;
    let mut fmt = tofu_command(&tofu);
    fmt.args(["fmt", "-check", "-recursive", "-diff"])
        .arg(&terraform);
    cmd::run(&mut fmt).with_context(|| {
        format!(
            "terraform/ is not formatted: run `{} fmt -recursive terraform`",
            paths::display(&tofu)
        )
    })?;

    let tflint = TFLINT.ensure()?;
    cmd::run(
        Command::new(&tflint)
            .arg(format!("--chdir={}", terraform.display()))
            .arg(format!(
                "--config={}",
                terraform.join(".tflint.hcl").display()
            ))
            .args(["--recursive", "--format=compact"]),
    )
    .context("tflint found problems (rules: terraform/.tflint.hcl)")?;

    let checkov = CHECKOV.ensure()?;
    cmd::run(
        Command::new(&checkov)
            .arg("--directory")
            .arg(&terraform)
            .arg("--config-file")
            .arg(terraform.join(".checkov.yaml")),
    )
    .context(
        "checkov failed a check: fix it, or skip it in terraform/.checkov.yaml with the reason",
    )?;

    let shellcheck = tools::require_program("shellcheck", "shellcheck")?;
    let dir = paths::target_dir().join("ec2").join("user-data");
    std::fs::create_dir_all(&dir)?;
    for user_data in &USER_DATA {
        let script = render(&tofu, user_data.module, user_data.sample)?;
        let path = dir.join(format!("{}.sh", user_data.name));
        std::fs::write(&path, script)?;
        check_script(&shellcheck, &path)?;
    }
    let app = &USER_DATA[0];
    for (name, value) in REFUSED {
        let values: Vec<(&str, &str)> = app
            .sample
            .iter()
            .map(|&(n, v)| if n == *name { (n, *value) } else { (n, v) })
            .collect();
        let refused = render(&tofu, app.module, &values)
            .is_err_and(|e| e.to_string().contains("Invalid value for variable"));
        if !refused {
            bail!(
                "{} accepts {name} = {value:?}, which must never reach the host's script: \
                 tighten its validation",
                app.module
            );
        }
    }
    Ok(())
}

/// tofu, without a CLI configuration that is named but missing (as on this project's
/// machines), which only adds a warning to every run; nothing here needs one.
fn tofu_command(tofu: &Path) -> Command {
    let mut command = Command::new(tofu);
    if std::env::var_os("TF_CLI_CONFIG_FILE").is_some_and(|f| !Path::new(&f).exists()) {
        command.env_remove("TF_CLI_CONFIG_FILE");
    }
    command
}

/// The user-data script of `module` rendered by tofu with `values`: `tofu console`
/// evaluates the module's `local.script` offline (the module has no provider). The script
/// travels as JSON, which console prints as one quoted line.
pub(super) fn render(tofu: &Path, module: &str, values: &[(&str, &str)]) -> Result<String> {
    let mut console = tofu_command(tofu);
    console
        .arg(format!("-chdir={}", paths::root().join(module).display()))
        .args(["console", "-no-color"])
        .args(
            values
                .iter()
                .map(|(name, value)| format!("-var={name}={value}")),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = console
        .spawn()
        .with_context(|| format!("cannot run {}", tofu.display()))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"jsonencode(local.script)\n")?;
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // console exits 0 after an error too (a refused variable), printing the value as
    // "(known after apply)".
    if !output.status.success() || stderr.contains("Error:") {
        bail!("tofu cannot render {module}: {}", stderr.trim());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let quoted = stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    let json: String = serde_json::from_str(quoted)
        .with_context(|| format!("tofu console printed no quoted string: {quoted}"))?;
    serde_json::from_str(&json).with_context(|| format!("{module}: the script is not JSON"))
}

/// `bash -n` and shellcheck on one rendered user-data script.
fn check_script(shellcheck: &Path, script: &Path) -> Result<()> {
    cmd::run(Command::new("bash").arg("-n").arg(script))
        .with_context(|| format!("{} is not valid bash", paths::display(script)))?;
    cmd::run(Command::new(shellcheck).arg(script)).with_context(|| {
        format!(
            "shellcheck found problems in {} (rendered from its template under terraform/modules)",
            paths::display(script)
        )
    })
}
