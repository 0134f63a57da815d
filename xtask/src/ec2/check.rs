//! The terraform checks of `cargo xtask test` (also `cargo xtask ec2 check`): everything
//! about `terraform/` that can be checked without the AWS provider, which no machine here
//! can download. `tofu init`, `validate` and `plan` need it, so they run only where the
//! provider registry is reachable (see README, "Run it on AWS").

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::user_data;
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

/// Runs every check and fails on the first that fails.
pub fn run() -> Result<()> {
    let terraform = paths::root().join("terraform");

    let tofu = TOFU.ensure()?;
    let mut fmt = Command::new(&tofu);
    fmt.args(["fmt", "-check", "-recursive", "-diff"])
        .arg(&terraform);
    // A CLI configuration named but missing (as on this project's machines) only adds a
    // warning to every run; fmt needs no configuration.
    if std::env::var_os("TF_CLI_CONFIG_FILE").is_some_and(|f| !Path::new(&f).exists()) {
        fmt.env_remove("TF_CLI_CONFIG_FILE");
    }
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
    for script in user_data::write_samples()? {
        check_script(&shellcheck, &script)?;
    }
    Ok(())
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
