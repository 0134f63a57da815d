//! `cargo xtask ec2` driven as a user drives it, against a stand-in `tofu` on the PATH that
//! records its arguments and plays back outputs (no machine here reaches AWS or the
//! provider registry), a stand-in `cargo` for the e2e run inside `switch`, and real HTTP
//! servers on 127.0.0.1 in place of the environments' gateways and the TLS proxy.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;

use serde_json::{Value, json};

/// The stand-in for tofu. It logs every call to `calls` (the workspace that TF_WORKSPACE
/// names, or `-`, then the arguments), prints `<env>.json` for `output`, deletes it on
/// `destroy`, and on `apply` writes the state file where the local backend would, and for
/// the proxy its outputs from the settings that xtask passed, as the real module would. As
/// the real tool, it refuses `init` and `workspace select` while TF_WORKSPACE is set, and
/// the app root's other commands without it.
const STAND_IN_TOFU: &str = r#"#!/bin/bash
set -eu
dir="$(dirname "$0")"
printf '%s %s\n' "${TF_WORKSPACE:--}" "$*" >>"$dir/calls"
chdir=""
var_file=""
for arg in "$@"; do
  case $arg in
    -chdir=*) chdir="${arg#-chdir=}" ;;
    -var-file=*) var_file="$chdir/${arg#-var-file=}" ;;
  esac
done
case " $* " in
  *" init "* | *" workspace select "*)
    if [ -n "${TF_WORKSPACE:-}" ]; then echo "TF_WORKSPACE is set" >&2; exit 1; fi
    mkdir -p "$chdir/.terraform"
    exit 0 ;;
esac
if [ "$(basename "$chdir")" = proxy ]; then
  env=proxy state="$chdir/terraform.tfstate"
else
  env="${TF_WORKSPACE:?the app root needs a workspace}"
  state="$chdir/terraform.tfstate.d/$env/terraform.tfstate"
fi
case " $* " in
  *" output "*)
    if [ -f "$dir/$env.json" ]; then cat "$dir/$env.json"; else echo '{}'; fi ;;
  *" destroy "*)
    rm -f "$dir/$env.json" ;;
  *" apply "*)
    test -f "$var_file"
    mkdir -p "$(dirname "$state")"
    echo '{}' >"$state"
    if [ "$env" = proxy ]; then
      live="$(sed -n 's/.*"live_env": "\([a-z]*\)".*/\1/p' "$var_file")"
      url="$(cat "$dir/proxy_url")"
      printf '{"live_env":{"value":"%s"},"proxy_url":{"value":"%s"},"url":{"value":"%s/gui/"},"instance_id":{"value":"i-proxy"}}\n' \
        "$live" "$url" "$url" >"$dir/proxy.json"
    fi ;;
esac
"#;

/// The stand-in for cargo, which `switch` runs as `cargo test --package e2e` with
/// CQRS_GATEWAY set: it records the gateway and exits with the status in `e2e_exit`.
const STAND_IN_CARGO: &str = r#"#!/bin/bash
dir="$(dirname "$0")"
# What `cargo xtask doctor` asks before any ec2 command.
if [ "$1" = --version ]; then echo "cargo 1.95.0 (stand-in)"; exit 0; fi
printf '%s %s\n' "$CQRS_GATEWAY" "$*" >>"$dir/e2e_calls"
code="$(cat "$dir/e2e_exit")"
if [ "$code" = 0 ]; then echo "test result: ok. 4 passed; 0 failed; 0 ignored"; else echo "test result: FAILED. 3 passed; 1 failed; 0 ignored"; fi
exit "$code"
"#;

/// A scratch Terraform root, the stand-ins, and a HOME, in one temporary directory.
struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let world = World {
            tmp: tempfile::tempdir().unwrap(),
        };
        for root in ["app", "proxy"] {
            fs::create_dir_all(world.terraform().join("environments").join(root)).unwrap();
        }
        fs::create_dir_all(world.bin()).unwrap();
        fs::create_dir_all(world.path("home")).unwrap();
        world.script("tofu", STAND_IN_TOFU);
        // Every ec2 command first asks the doctor for Go (which builds tofu for `check`):
        // the machine's own, beside the stand-ins.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let go = std::env::split_paths(&path)
            .map(|dir| dir.join("go"))
            .find(|go| go.is_file())
            .expect("go on the PATH");
        std::os::unix::fs::symlink(go, world.bin().join("go")).unwrap();
        world.script("cargo", STAND_IN_CARGO);
        fs::write(world.bin().join("e2e_exit"), "0").unwrap();
        fs::write(world.bin().join("proxy_url"), "http://127.0.0.1:9").unwrap();
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn bin(&self) -> PathBuf {
        self.path("bin")
    }

    fn terraform(&self) -> PathBuf {
        self.path("terraform")
    }

    /// The Terraform root of `env`: blue and green are workspaces of `app`.
    fn root(&self, env: &str) -> PathBuf {
        let root = if env == "proxy" { "proxy" } else { "app" };
        self.terraform().join("environments").join(root)
    }

    /// Where the local backend keeps the state of `env`.
    fn state(&self, env: &str) -> PathBuf {
        match env {
            "proxy" => self.root(env).join("terraform.tfstate"),
            _ => self
                .root(env)
                .join("terraform.tfstate.d")
                .join(env)
                .join("terraform.tfstate"),
        }
    }

    fn script(&self, name: &str, text: &str) {
        let path = self.bin().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// What `tofu output -json` plays back for `env`, which has local state.
    fn deployed(&self, env: &str, outputs: Value) {
        let state = self.state(env);
        fs::create_dir_all(state.parent().unwrap()).unwrap();
        fs::write(state, "{}").unwrap();
        let json: serde_json::Map<String, Value> = outputs
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!({ "sensitive": false, "type": "string", "value": v }),
                )
            })
            .collect();
        fs::write(
            self.bin().join(format!("{env}.json")),
            Value::Object(json).to_string(),
        )
        .unwrap();
    }

    /// An application environment whose gateway is `gateway`.
    fn app(&self, env: &str, gateway: &str) {
        self.deployed(
            env,
            json!({
                "url": format!("{gateway}/gui/"),
                "gateway_url": gateway,
                "instance_id": format!("i-{env}"),
                "private_ip": if env == "blue" { "10.0.0.11" } else { "10.0.0.22" },
                "security_group_id": format!("sg-{env}"),
                "log_command": format!("echo tail of the {env} log"),
            }),
        );
    }

    /// Whether tofu ran `args` in the root of `env` with TF_WORKSPACE set to `workspace`
    /// (`-`: unset).
    fn ran(&self, workspace: &str, env: &str, args: &str) -> bool {
        let root = self.root(env);
        self.calls()
            .contains(&format!("{workspace} -chdir={} {args}", root.display()))
    }

    fn calls(&self) -> String {
        fs::read_to_string(self.bin().join("calls")).unwrap_or_default()
    }

    fn e2e_calls(&self) -> String {
        fs::read_to_string(self.bin().join("e2e_calls")).unwrap_or_default()
    }

    /// Runs `cargo xtask ec2 LINE` (its words split at spaces, as a user types them) with
    /// a clean environment: the stand-ins first on the PATH (then only /usr/bin and /bin:
    /// this machine has a terraform in /usr/local/bin), an empty HOME, and fake AWS
    /// credentials unless `credentials` is false.
    fn xtask_with(&self, line: &str, credentials: bool) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin().display()))
            .env("HOME", self.path("home"))
            .arg("ec2")
            .arg("--terraform-dir")
            .arg(self.terraform())
            .args(line.split_whitespace());
        if credentials {
            command
                .env("AWS_ACCESS_KEY_ID", "test-key-id")
                .env("AWS_SECRET_ACCESS_KEY", "test-secret");
        }
        command.output().unwrap()
    }

    fn xtask(&self, line: &str) -> Output {
        self.xtask_with(line, true)
    }

    fn settings(&self, env: &str) -> Value {
        let path = self.root(env).join(format!("{env}.tfvars.json"));
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    }
}

/// Output for assertion messages, indented so no runner mistakes it for its own.
fn shown(output: &Output) -> String {
    let text = format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines().map(|l| format!("> {l}\n")).collect()
}

/// Asserts that the command failed, saying `says`.
#[track_caller]
fn fails_saying(output: &Output, says: &str) {
    assert!(
        !output.status.success() && stderr(output).contains(says),
        "should fail saying {says:?}\n{}",
        shown(output)
    );
}

#[track_caller]
fn succeeded(output: &Output) {
    assert!(output.status.success(), "{}", shown(output));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A real HTTP server on 127.0.0.1 that answers every request with `status` and, when
/// given, the proxy's environment header. It runs until the test process ends.
fn http_server(status: u16, environment: Option<&str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let header = environment
        .map(|e| format!("X-Kafka-Cqrs-Environment: {e}\r\n"))
        .unwrap_or_default();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let body = if status == 200 { "ok" } else { "not ready" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\n{header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

const SWITCH_TO_GREEN: &str = "switch --to green --domain demo.example.com --email \
    ops@example.com --key-name demo-key --admin-cidr 203.0.113.7/32 --yes --wait 4";

#[test]
fn switch_refuses_when_the_target_does_not_answer_its_health_checks() {
    let world = World::new();
    world.app("green", &http_server(503, None));
    let output = world.xtask(SWITCH_TO_GREEN);
    fails_saying(
        &output,
        "refusing to switch to green: it does not answer its health checks",
    );
    assert!(
        stderr(&output).contains("/producer/healthz answered 503"),
        "{}",
        shown(&output)
    );
    assert!(
        !world.calls().contains(" apply"),
        "applied anyway:\n{}",
        world.calls()
    );
    assert_eq!(
        world.e2e_calls(),
        "",
        "ran the e2e tests against a target that is not up"
    );
}

#[test]
fn switch_refuses_when_nothing_listens_at_the_target() {
    let world = World::new();
    // Bound and dropped: nothing listens on this port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    world.app("green", &format!("http://127.0.0.1:{port}"));
    let output = world.xtask(SWITCH_TO_GREEN);
    fails_saying(&output, "refusing to switch to green");
    assert!(
        !world.calls().contains(" apply"),
        "applied anyway:\n{}",
        world.calls()
    );
}

#[test]
fn switch_refuses_when_the_e2e_tests_fail_against_the_target() {
    let world = World::new();
    let gateway = http_server(200, None);
    world.app("green", &gateway);
    fs::write(world.bin().join("e2e_exit"), "1").unwrap();
    let output = world.xtask(SWITCH_TO_GREEN);
    fails_saying(
        &output,
        &format!(
            "refusing to switch to green: `cargo xtask e2e --gateway {gateway}` failed (3 passed, 1 failed)"
        ),
    );
    assert!(
        world
            .e2e_calls()
            .starts_with(&format!("{gateway} test --package e2e"))
    );
    assert!(
        !world.calls().contains(" apply"),
        "applied anyway:\n{}",
        world.calls()
    );
}

#[test]
fn switch_re_points_the_proxy_once_the_target_passes() {
    let world = World::new();
    let green = http_server(200, None);
    world.app("green", &green);
    world.app("blue", &http_server(200, None));
    world.deployed(
        "proxy",
        json!({ "live_env": "blue", "proxy_url": "http://127.0.0.1:9" }),
    );
    fs::write(
        world.bin().join("proxy_url"),
        http_server(200, Some("green")),
    )
    .unwrap();

    let output = world.xtask(SWITCH_TO_GREEN);
    succeeded(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("green is live"));
    assert!(
        world
            .e2e_calls()
            .starts_with(&format!("{green} test --package e2e"))
    );
    let calls = world.calls();
    assert!(world.ran("-", "proxy", "init -input=false"), "{calls}");
    assert!(
        world.ran(
            "default",
            "proxy",
            "apply -input=false -var-file=proxy.tfvars.json -auto-approve"
        ),
        "{calls}"
    );
    let settings = world.settings("proxy");
    assert_eq!(settings["live_env"], "green");
    assert_eq!(settings["target_ip"], "10.0.0.22");
    assert_eq!(settings["domain"], "demo.example.com");
    assert_eq!(settings["email"], "ops@example.com");
    assert_eq!(
        settings["app_security_group_ids"],
        json!({ "green": "sg-green", "blue": "sg-blue" }),
        "both environments stay reachable from the proxy"
    );
}

#[test]
fn switch_fails_when_the_proxy_keeps_serving_the_old_environment() {
    let world = World::new();
    world.app("green", &http_server(200, None));
    fs::write(
        world.bin().join("proxy_url"),
        http_server(200, Some("blue")),
    )
    .unwrap();
    let output = world.xtask(SWITCH_TO_GREEN);
    fails_saying(&output, "the proxy was told to serve green, but");
    fails_saying(&output, "still answers: 200 from blue");
}

#[test]
fn down_never_destroys_the_live_environment_without_force() {
    let world = World::new();
    world.app("blue", "http://127.0.0.1:9");
    world.app("green", "http://127.0.0.1:9");
    world.deployed(
        "proxy",
        json!({ "live_env": "green", "proxy_url": "http://127.0.0.1:9" }),
    );

    let output = world.xtask("down --env green --yes");
    fails_saying(
        &output,
        "refusing to destroy green: it is live behind the TLS proxy",
    );
    assert!(!world.calls().contains(" destroy"), "{}", world.calls());

    let output = world.xtask("down --env proxy --yes");
    assert!(!output.status.success(), "{}", shown(&output));
    assert!(!world.calls().contains(" destroy"), "{}", world.calls());

    let output = world.xtask("down --env blue --yes");
    succeeded(&output);
    assert!(
        world.ran("blue", "blue", "destroy -input=false -auto-approve"),
        "{}",
        world.calls()
    );

    let output = world.xtask("down --env green --force --yes");
    succeeded(&output);
    assert_eq!(
        world.calls().matches(" destroy ").count(),
        2,
        "{}",
        world.calls()
    );
}

#[test]
fn up_never_changes_the_live_environment_without_force() {
    let world = World::new();
    world.app("green", "http://127.0.0.1:9");
    world.deployed(
        "proxy",
        json!({ "live_env": "green", "proxy_url": "http://127.0.0.1:9" }),
    );
    let up = |git_ref: &str, force: &str| {
        world.xtask(&format!(
            "up --env green --repo-url https://git.example.com/kafka-cqrs.git --git-ref {git_ref} \
             --key-name k --admin-cidr 203.0.113.7/32 --yes {force}"
        ))
    };
    let output = up("v2", "");
    fails_saying(
        &output,
        "refusing to change green: it is live behind the TLS proxy",
    );
    assert!(!world.calls().contains(" apply"), "{}", world.calls());

    let output = up("v2", "--force");
    succeeded(&output);
    assert_eq!(
        world.calls().matches(" apply ").count(),
        1,
        "{}",
        world.calls()
    );
    // The same settings again change nothing, so they need no --force.
    let output = up("v2", "");
    succeeded(&output);
}

#[test]
fn down_refuses_when_it_cannot_tell_which_environment_is_live() {
    let world = World::new();
    // The proxy's state cannot be read: its outputs are not JSON.
    world.deployed("proxy", json!({}));
    fs::write(world.bin().join("proxy.json"), "garbage").unwrap();
    let output = world.xtask("down --env blue --yes");
    fails_saying(&output, "cannot tell which environment is live");
    assert!(!world.calls().contains(" destroy"), "{}", world.calls());
}

#[test]
fn status_shows_both_environments_and_which_is_live() {
    let world = World::new();
    world.app("blue", &http_server(200, None));
    world.app("green", &http_server(503, None));
    world.deployed(
        "proxy",
        json!({ "live_env": "blue", "proxy_url": http_server(200, Some("blue")), "instance_id": "i-proxy" }),
    );
    let output = world.xtask("status");
    succeeded(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |env: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(env))
            .unwrap_or_else(|| panic!("no {env} line in\n{stdout}"))
            .to_string()
    };
    assert!(
        line("blue").contains("LIVE") && line("blue").contains("i-blue"),
        "{stdout}"
    );
    assert!(line("blue").ends_with("yes"), "{stdout}");
    assert!(
        !line("green").contains("LIVE") && line("green").ends_with("no (503)"),
        "{stdout}"
    );
    assert!(line("proxy").contains("-> blue"), "{stdout}");
    assert!(stdout.contains("live: blue"), "{stdout}");
}

#[test]
fn status_says_what_is_not_deployed() {
    let world = World::new();
    let output = world.xtask("status");
    succeeded(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.matches("not deployed").count(), 3, "{stdout}");
    assert!(stdout.contains("live: none"), "{stdout}");
    // Directories never initialised are not asked: tofu would only demand `init`.
    assert_eq!(world.calls(), "");
}

#[test]
fn logs_runs_the_environments_log_command() {
    let world = World::new();
    world.app("blue", "http://127.0.0.1:9");
    let output = world.xtask("logs --env blue");
    succeeded(&output);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "tail of the blue log\n"
    );
}

#[test]
fn up_applies_with_the_settings_it_remembers() {
    let world = World::new();
    world.app("blue", "http://127.0.0.1:9");
    let output = world.xtask(
        "up --env blue --repo-url https://git.example.com/kafka-cqrs.git --git-ref v1.2.3 \
         --key-name demo-key --admin-cidr 203.0.113.7/32 --yes",
    );
    succeeded(&output);
    // Blue is a workspace of the app root, created on first use.
    assert!(
        world.ran("-", "blue", "workspace select -or-create blue"),
        "{}",
        world.calls()
    );
    assert!(
        world.ran(
            "blue",
            "blue",
            "apply -input=false -var-file=blue.tfvars.json -auto-approve"
        ),
        "{}",
        world.calls()
    );
    assert_eq!(
        world.settings("blue"),
        json!({
            "key_name": "demo-key",
            "admin_cidr": "203.0.113.7/32",
            "repo_url": "https://git.example.com/kafka-cqrs.git",
            "git_ref": "v1.2.3",
        })
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("echo tail of the blue log"));

    // The second time, the key pair and CIDR are remembered.
    let output = world.xtask("up --env blue --git-ref v1.2.4 --yes");
    succeeded(&output);
    assert_eq!(world.settings("blue")["git_ref"], "v1.2.4");
    assert_eq!(world.settings("blue")["key_name"], "demo-key");
}

#[test]
fn clear_errors_before_anything_is_applied() {
    let world = World::new();
    const REPO: &str = "--repo-url https://git.example.com/kafka-cqrs.git --git-ref main";
    let cases = [
        (
            "--tool terraform status".to_string(),
            true,
            "cannot find terraform on the PATH",
        ),
        (
            format!("up --env blue {REPO} --key-name k --admin-cidr 203.0.113.7/32"),
            false,
            "no AWS credentials found",
        ),
        (
            format!("up --env blue {REPO} --admin-cidr 203.0.113.7/32"),
            true,
            "no key name: pass --key-name NAME",
        ),
        (
            format!("up --env green {REPO} --key-name k"),
            true,
            "no admin cidr: pass --admin-cidr CIDR",
        ),
        (
            "switch --to green --domain demo.example.com --key-name k --admin-cidr 203.0.113.7/32"
                .to_string(),
            true,
            "no email: a domain needs --email ADDRESS",
        ),
    ];
    for (args, credentials, says) in cases {
        fails_saying(&world.xtask_with(&args, credentials), says);
    }
    assert_eq!(world.calls(), "", "the stand-in tofu ran");
}

#[test]
fn the_stand_in_is_run_the_way_the_real_tool_is() {
    // Guard for the tests above: the stand-in must be what xtask found on the PATH.
    let world = World::new();
    for env in ["blue", "green", "proxy"] {
        world.deployed(env, json!({}));
    }
    let output = world.xtask("status");
    succeeded(&output);
    for (workspace, env) in [("blue", "blue"), ("green", "green"), ("default", "proxy")] {
        assert!(
            world.ran(workspace, env, "output -json"),
            "{}",
            world.calls()
        );
    }
}

#[test]
fn up_clones_over_https_and_never_keeps_credentials() {
    let world = World::new();
    world.app("blue", "http://127.0.0.1:9");
    let up = |url: &str| {
        world.xtask(&format!(
            "up --env blue --repo-url {url} --git-ref main --key-name k \
             --admin-cidr 203.0.113.7/32 --yes"
        ))
    };
    for url in [
        "https://user:s3cret@github.com/owner/repo.git",
        "https://s3cret@github.com/owner/repo.git",
    ] {
        let output = up(url);
        fails_saying(&output, "it holds credentials");
        assert!(!stderr(&output).contains("s3cret"), "{}", shown(&output));
    }
    assert_eq!(world.calls(), "", "the stand-in tofu ran");
    assert!(
        !world.root("blue").join("blue.tfvars.json").exists(),
        "settings were written"
    );

    // An SSH origin becomes the https URL of the same repository: the host reaches
    // HTTP(S) only.
    let output = up("git@github.com:owner/repo.git");
    succeeded(&output);
    assert_eq!(
        world.settings("blue")["repo_url"],
        "https://github.com/owner/repo.git"
    );
}
