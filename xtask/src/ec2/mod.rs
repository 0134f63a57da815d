//! `cargo xtask ec2 up | switch | down | status | logs | check`: the demo on AWS EC2 with
//! OpenTofu or Terraform (`terraform/`), as blue and green environments behind a TLS proxy.
//!
//! Blue and green are the workspaces of one root, `terraform/environments/app`; the proxy is
//! `terraform/environments/proxy`; each has its own state. `up` creates a host that builds
//! and runs the platform (minikube, `cargo xtask image --load minikube`, `cargo xtask
//! deploy`); `switch --to ENV` re-points the proxy only after ENV answers its health checks
//! through its own gateway and `cargo xtask e2e --gateway` passes against it; `down` never
//! destroys the live environment without `--force`.

pub mod check;
#[cfg(test)]
mod tests;
mod tofu;

use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::tally;
use crate::{cmd, e2e, paths};
pub use check::run as check;
use tofu::{Env, Outputs, Tofu, ToolKind};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Start with `cargo xtask ec2 up --env blue --help`. README.md, \
    \"Run it on AWS\", walks through a whole blue/green cycle."
)]
pub struct Args {
    #[command(subcommand)]
    command: Action,
    /// The directory holding environments/app (blue and green, a workspace each) and
    /// environments/proxy (default: terraform/ of this repository).
    #[arg(long, global = true, value_name = "DIR")]
    terraform_dir: Option<PathBuf>,
    /// Which Terraform program to run (default: tofu if on the PATH, else terraform).
    #[arg(long, global = true, value_enum)]
    tool: Option<ToolKind>,
}

/// Where an application runs: blue or green.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AppEnv {
    Blue,
    Green,
}

impl From<AppEnv> for Env {
    fn from(env: AppEnv) -> Env {
        match env {
            AppEnv::Blue => Env::Blue,
            AppEnv::Green => Env::Green,
        }
    }
}

/// What every command that changes AWS resources needs.
#[derive(Debug, clap::Args)]
struct Access {
    /// Name of an existing EC2 key pair (remembered per environment after the first use).
    #[arg(long, env = "TF_VAR_key_name", value_name = "NAME")]
    key_name: Option<String>,
    /// The CIDR allowed to SSH in and to reach a host's gateway directly, e.g.
    /// 203.0.113.7/32 (remembered per environment).
    #[arg(long, env = "TF_VAR_admin_cidr", value_name = "CIDR")]
    admin_cidr: Option<String>,
    /// AWS region (remembered per environment; default us-east-1).
    #[arg(long, env = "TF_VAR_region")]
    region: Option<String>,
    /// Apply or destroy without asking for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// The environment to create or update.
    #[arg(long, value_enum)]
    env: AppEnv,
    /// HTTPS URL the host clones (default: this checkout's `origin` remote; an SSH URL
    /// becomes the same repository's https URL, as the host reaches HTTP(S) only; a URL
    /// with credentials is refused, as it would be kept in user data and state).
    #[arg(long, value_name = "URL")]
    repo_url: Option<String>,
    /// Branch, tag or commit to run (default: this checkout's HEAD, which must be
    /// pushed).
    #[arg(long, value_name = "REF")]
    git_ref: Option<String>,
    /// EC2 instance type (default t3.xlarge).
    #[arg(long, env = "TF_VAR_instance_type")]
    instance_type: Option<String>,
    /// Change the live environment in place (a new ref replaces its host: downtime).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    access: Access,
}

#[derive(Debug, clap::Args)]
struct SwitchArgs {
    /// The environment to make live.
    #[arg(long, value_enum)]
    to: AppEnv,
    /// The domain the proxy serves (its A record must point at the proxy's public_ip).
    #[arg(long, env = "TF_VAR_domain")]
    domain: Option<String>,
    /// Contact address for the Let's Encrypt certificate of the domain.
    #[arg(long, env = "TF_VAR_email")]
    email: Option<String>,
    /// How long to wait for the proxy to serve the new environment.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    wait: u64,
    #[command(flatten)]
    access: Access,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create or update an environment: an EC2 host that builds and runs the platform
    /// (ready about 20 minutes later; follow it with `logs`).
    Up(UpArgs),
    /// Point the TLS proxy at an environment, after it passed its health checks through
    /// its own gateway and `cargo xtask e2e --gateway` against it. Creates the proxy on
    /// first use.
    Switch(SwitchArgs),
    /// Destroy an environment, or the proxy; the live one (and the proxy) only with --force.
    Down {
        /// The environment to destroy.
        #[arg(long, value_enum)]
        env: Env,
        /// Destroy even what serves users now.
        #[arg(long)]
        force: bool,
        /// Destroy without asking for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Show blue, green and the proxy: instance, address, whether each answers, which is
    /// live.
    Status,
    /// Tail an environment's provisioning log over SSH (its `log_command` output).
    Logs {
        /// Whose log: blue, green or the proxy.
        #[arg(long, value_enum)]
        env: Env,
    },
    /// The terraform checks of `cargo xtask test` alone: tofu fmt, tflint, checkov, the
    /// user data rendered by tofu and checked with bash -n and shellcheck, and the
    /// validations of what reaches it (no AWS access or provider needed).
    Check,
}

pub fn run(args: Args) -> Result<()> {
    let root = args
        .terraform_dir
        .unwrap_or_else(|| paths::root().join("terraform"));
    if let Action::Check = args.command {
        // Only the checks need Go (tofu, tflint) and shellcheck; the other verbs run the
        // Terraform program the user has.
        crate::doctor::require(crate::doctor::Verb::Ec2)?;
        return check::run();
    }
    let tofu = Tofu::find(args.tool, &root)?;
    match args.command {
        Action::Up(args) => up(&tofu, args),
        Action::Switch(args) => switch(&tofu, args),
        Action::Down { env, force, yes } => down(&tofu, env, force, yes),
        Action::Status => status(&tofu),
        Action::Logs { env } => logs(&tofu, env),
        Action::Check => unreachable!("handled above"),
    }
}

/// Overlays the given values on an environment's remembered settings.
fn settle(settings: &mut Map<String, Value>, values: &[(&str, Option<String>)]) {
    for (name, value) in values {
        if let Some(value) = value {
            settings.insert(name.to_string(), Value::String(value.clone()));
        }
    }
}

/// Fails with what to pass when a setting is missing.
fn required(settings: &Map<String, Value>, name: &str, how: &str) -> Result<()> {
    match settings.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        _ => bail!("no {}: {how}", name.replace('_', " ")),
    }
}

const KEY_NAME_HOW: &str = "pass --key-name NAME (or set TF_VAR_key_name) with the name of an \
    EC2 key pair in the region (`aws ec2 describe-key-pairs`); its private key is what \
    `logs` uses to SSH in";
const ADMIN_CIDR_HOW: &str = "pass --admin-cidr CIDR (or set TF_VAR_admin_cidr), e.g. your \
    public address with /32 (`curl -s https://checkip.amazonaws.com`)";

fn up(tofu: &Tofu, args: UpArgs) -> Result<()> {
    let UpArgs {
        env,
        repo_url,
        git_ref,
        instance_type,
        force,
        access,
    } = args;
    let env = Env::from(env);
    tofu::require_aws_credentials()?;
    let remembered = tofu.settings(env)?;
    let mut settings = remembered.clone();
    let repo_url = match repo_url {
        Some(url) => Some(url),
        None if !settings.contains_key("repo_url") => Some(origin_url()?),
        None => None,
    };
    let git_ref = match git_ref {
        Some(git_ref) => Some(git_ref),
        None => Some(pushed_head()?),
    };
    settle(
        &mut settings,
        &[
            ("key_name", access.key_name.clone()),
            ("admin_cidr", access.admin_cidr.clone()),
            ("region", access.region.clone()),
            ("repo_url", repo_url),
            ("git_ref", git_ref),
            ("instance_type", instance_type),
        ],
    );
    required(&settings, "key_name", KEY_NAME_HOW)?;
    required(&settings, "admin_cidr", ADMIN_CIDR_HOW)?;
    // Both land in a line of the host's script: checked here with a message, and again by
    // the module's validations.
    for (name, check) in [
        ("repo_url", clone_url as fn(&str) -> Result<String>),
        ("git_ref", checked_ref),
    ] {
        if let Some(Value::String(value)) = settings.get(name) {
            let checked = check(value)?;
            settings.insert(name.to_string(), Value::String(checked));
        }
    }
    // A new ref changes the user data, which replaces the host: never to the live one
    // unasked. The same settings again are harmless.
    if settings != remembered && !force {
        let live = live_env(tofu)
            .context("cannot tell which environment is live; pass --force if you are sure")?;
        if live.as_deref() == Some(env.name()) {
            let other = env.other().expect("an application environment");
            bail!(
                "refusing to change {env}: it is live behind the TLS proxy, and a new ref or \
                 instance type replaces its host. Deploy to {other} and switch \
                 (`cargo xtask ec2 up --env {other}`, then `switch --to {other}`), or pass --force"
            );
        }
    }
    tofu.write_settings(env, &settings)?;

    tofu.init(env)?;
    eprintln!(
        "Creating or updating {env} (the host then provisions itself for about 20 minutes)..."
    );
    tofu.apply(env, access.yes)?;
    let outputs = tofu.outputs(env)?;
    println!("{env} is provisioning.");
    println!("  follow it:  cargo xtask ec2 logs --env {env}");
    println!("       or:    {}", outputs.require(env, "log_command")?);
    println!("  then open:  {}", outputs.require(env, "url")?);
    println!("  go live:    cargo xtask ec2 switch --to {env}");
    Ok(())
}

/// This checkout's `origin` remote.
fn origin_url() -> Result<String> {
    let output = cmd::output(
        Command::new("git")
            .current_dir(paths::root())
            .args(["remote", "get-url", "origin"]),
    )?;
    if !output.status.success() {
        bail!(
            "this checkout has no `origin` remote: pass --repo-url URL, a URL the host can clone"
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The URL the host clones: https, without credentials. The host's egress allows HTTP(S)
/// only, so an SSH URL becomes the https URL of the same repository (GitHub, GitLab and
/// Bitbucket serve both); credentials would be kept in user data and the state, so a URL
/// with any is refused. The module's `repo_url` validation is the same rule.
fn clone_url(url: &str) -> Result<String> {
    let https = if let Some(rest) = url.strip_prefix("ssh://") {
        // ssh://[user@]host[:port]/path: the SSH port means nothing to https.
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        format!("https://{}/{path}", host.split(':').next().unwrap_or(host))
    } else if let Some(rest) = url.strip_prefix("https://") {
        if let Some((_, after)) = rest.rsplit_once('@') {
            bail!(
                "refusing the repository URL https://***@{after}: it holds credentials, which \
                 would be written into the host's user data and the Terraform state. The host \
                 clones without any: for a public repository pass --repo-url https://{after}"
            );
        }
        url.to_string()
    } else if let Some((user_host, path)) = url.split_once(':')
        && !url.contains("://")
    {
        // The scp-like form: git@github.com:owner/repo.git.
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        format!("https://{host}/{}", path.trim_start_matches('/'))
    } else {
        let shown = url.rsplit_once('@').map_or(url, |(_, after)| after);
        bail!(
            "the host cannot clone {shown}: it reaches the internet over HTTP(S) only, and \
             the URL must hold no credentials. Pass --repo-url https://HOST/OWNER/REPO.git"
        );
    };
    if !is_plain_https(&https) {
        bail!(
            "the host cannot clone {https}: pass --repo-url with a plain https URL such as \
             https://github.com/OWNER/REPO.git (letters, digits and . _ ~ - in its path)"
        );
    }
    if https != url {
        eprintln!("The host clones {https} (for {url}: its egress allows HTTP(S) only).");
    }
    Ok(https)
}

/// `^https://HOST(:PORT)?(/SEGMENT)+/?$` with the characters of the module's regex.
fn is_plain_https(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = authority.split_once(':').unwrap_or((authority, "1"));
    let path = path.strip_suffix('/').unwrap_or(path);
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    alnum(host.chars().next())
        && alnum(host.chars().last())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && (1..=5).contains(&port.len())
        && port.chars().all(|c| c.is_ascii_digit())
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
        })
}

/// A branch, tag or commit that is safe in a shell line and as git's argument: the
/// module's `git_ref` validation.
fn checked_ref(git_ref: &str) -> Result<String> {
    let first_ok = git_ref
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok
        || !git_ref
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
    {
        bail!(
            "--git-ref {git_ref:?} is not a plain branch, tag or commit: letters, digits and \
             . _ / - only, not starting with - . or /"
        );
    }
    Ok(git_ref.to_string())
}

/// This checkout's HEAD commit, which must be on a remote branch for the host to fetch it.
fn pushed_head() -> Result<String> {
    let git = |args: &[&str]| -> Result<String> {
        let output = cmd::output(Command::new("git").current_dir(paths::root()).args(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    if git(&["branch", "--remotes", "--contains", &head])?.is_empty() {
        bail!(
            "HEAD ({}) is on no remote branch, so the host could not fetch it: push it, or pass \
             --git-ref with a pushed branch, tag or commit",
            &head[..head.len().min(12)]
        );
    }
    Ok(head)
}

fn switch(tofu: &Tofu, args: SwitchArgs) -> Result<()> {
    let SwitchArgs {
        to,
        domain,
        email,
        wait,
        access,
    } = args;
    let (to, wait) = (Env::from(to), Duration::from_secs(wait));
    tofu::require_aws_credentials()?;
    let mut settings = tofu.settings(Env::Proxy)?;
    settle(
        &mut settings,
        &[
            ("domain", domain),
            ("email", email),
            ("key_name", access.key_name.clone()),
            ("admin_cidr", access.admin_cidr.clone()),
            ("region", access.region.clone()),
        ],
    );
    // The proxy runs where the environment does, reached with the same key and CIDR.
    let target_settings = tofu.settings(to)?;
    for name in ["key_name", "admin_cidr", "region"] {
        if !settings.contains_key(name)
            && let Some(value) = target_settings.get(name)
        {
            settings.insert(name.to_string(), value.clone());
        }
    }
    required(
        &settings,
        "domain",
        "pass --domain NAME (or set TF_VAR_domain): the TLS proxy holds a certificate for it",
    )?;
    required(
        &settings,
        "email",
        "a domain needs --email ADDRESS (or TF_VAR_email) for its Let's Encrypt certificate",
    )?;
    required(&settings, "key_name", KEY_NAME_HOW)?;
    required(&settings, "admin_cidr", ADMIN_CIDR_HOW)?;

    let target = tofu.outputs(to)?;
    if target.is_empty() {
        bail!("{to} is not deployed: `cargo xtask ec2 up --env {to}` first");
    }
    let gateway = target.require(to, "gateway_url")?;
    eprintln!("Checking {to} through its own gateway {gateway}...");
    let failures = health_failures(gateway);
    if !failures.is_empty() {
        bail!(
            "refusing to switch to {to}: it does not answer its health checks:\n  {}\n\
             Is it still provisioning? `cargo xtask ec2 logs --env {to}`",
            failures.join("\n  ")
        );
    }
    eprintln!("{to} answers; running the e2e tests against it...");
    let mut e2e = e2e::command(gateway, 1);
    e2e.current_dir(paths::root());
    let (counted, outcome) = tally::run(&mut e2e);
    outcome.with_context(|| {
        format!(
            "refusing to switch to {to}: `cargo xtask e2e --gateway {gateway}` failed \
             ({} passed, {} failed)",
            counted.passed, counted.failed
        )
    })?;

    // Both environments stay reachable from the proxy, so that switching back needs no
    // new firewall rule.
    let mut groups = Map::new();
    groups.insert(
        to.name().to_string(),
        Value::String(target.require(to, "security_group_id")?.to_string()),
    );
    if let Some(other) = to.other()
        && let Ok(outputs) = tofu.outputs(other)
        && let Some(group) = outputs.get("security_group_id")
    {
        groups.insert(other.name().to_string(), Value::String(group.to_string()));
    }
    settings.insert("live_env".into(), Value::String(to.name().into()));
    settings.insert(
        "target_ip".into(),
        Value::String(target.require(to, "private_ip")?.to_string()),
    );
    settings.insert("app_security_group_ids".into(), Value::Object(groups));
    tofu.write_settings(Env::Proxy, &settings)?;

    tofu.init(Env::Proxy)?;
    eprintln!("Pointing the TLS proxy at {to}...");
    tofu.apply(Env::Proxy, access.yes)?;
    let proxy = tofu.outputs(Env::Proxy)?;
    let proxy_url = proxy.require(Env::Proxy, "proxy_url")?;
    wait_until_serving(proxy_url, to, wait)?;
    println!("{to} is live: {}", proxy.require(Env::Proxy, "url")?);
    Ok(())
}

/// The health checks through a gateway: every service's liveness on its public route, and
/// the GUI. Returns what failed, empty when all answer 200.
fn health_failures(gateway: &str) -> Vec<String> {
    let mut urls: Vec<String> = platform::SERVICES
        .iter()
        .filter_map(|s| Some(format!("{gateway}{}{}", s.route?.prefix, s.liveness_path)))
        .collect();
    urls.push(format!("{gateway}{}/", platform::gateway::GUI_PREFIX));
    urls.into_iter()
        .filter_map(|url| match http_get(&url) {
            Ok(response) if response.status == 200 => None,
            Ok(response) => Some(format!("{url} answered {}", response.status)),
            Err(error) => Some(format!("{url}: {error:#}")),
        })
        .collect()
}

/// The URL whose `X-Kafka-Cqrs-Environment` header names the environment a proxy serves.
fn probe_url(base: &str) -> String {
    let first = platform::SERVICES
        .iter()
        .find_map(|s| Some(format!("{}{}", s.route?.prefix, s.liveness_path)))
        .expect("a service with a public route");
    format!("{base}{first}")
}

const ENVIRONMENT_HEADER: &str = "x-kafka-cqrs-environment";

/// Waits until the proxy forwards to `env` (the host re-reads its tags every 5 s).
fn wait_until_serving(proxy_url: &str, env: Env, wait: Duration) -> Result<()> {
    let url = probe_url(proxy_url);
    eprintln!(
        "Waiting for {url} to be served by {env} (up to {}s)...",
        wait.as_secs()
    );
    let started = Instant::now();
    let mut last;
    loop {
        match http_get(&url) {
            Ok(r) if r.status == 200 && r.header(ENVIRONMENT_HEADER) == Some(env.name()) => {
                return Ok(());
            }
            Ok(r) => {
                last = format!(
                    "{} from {}",
                    r.status,
                    r.header(ENVIRONMENT_HEADER)
                        .unwrap_or("an unnamed environment")
                )
            }
            Err(error) => last = format!("{error:#}"),
        }
        if started.elapsed() >= wait {
            bail!(
                "the proxy was told to serve {env}, but {url} still answers: {last}. On the \
                 first switch the certificate waits for the domain's A record to point at the \
                 proxy; `cargo xtask ec2 logs --env proxy` shows its progress"
            );
        }
        thread::sleep(Duration::from_secs(2));
    }
}

/// An HTTP answer: its status and headers (names in lower case).
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One GET with curl (HTTP for the environments' gateways, HTTPS for the proxy).
fn http_get(url: &str) -> Result<Response> {
    let mut curl = Command::new("curl");
    curl.args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--output", "/dev/null", "--dump-header", "-"])
        .arg(url);
    cmd::echo(&curl);
    let output = cmd::output(&mut curl).context("is curl installed?")?;
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{url} sent no HTTP status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Response { status, headers })
}

/// The environment the proxy forwards to: `Ok(None)` when there is no proxy.
fn live_env(tofu: &Tofu) -> Result<Option<String>> {
    let proxy = tofu.outputs(Env::Proxy)?;
    Ok(proxy.get("live_env").map(str::to_string))
}

fn down(tofu: &Tofu, env: Env, force: bool, yes: bool) -> Result<()> {
    if !force {
        if env == Env::Proxy {
            if !tofu.outputs(Env::Proxy)?.is_empty() {
                bail!(
                    "refusing to destroy the TLS proxy: it serves the live environment to users. \
                     Pass --force to take the site down"
                );
            }
        } else {
            let live = live_env(tofu).context(
                "refusing to destroy: cannot tell which environment is live. Pass --force if \
                 you are sure",
            )?;
            if live.as_deref() == Some(env.name()) {
                let other = env.other().expect("an application environment");
                bail!(
                    "refusing to destroy {env}: it is live behind the TLS proxy. Switch first \
                     (`cargo xtask ec2 switch --to {other}`), or pass --force"
                );
            }
        }
    }
    tofu::require_aws_credentials()?;
    tofu.init(env)?;
    eprintln!("Destroying {env}...");
    tofu.destroy(env, yes)?;
    println!("{env} is destroyed.");
    Ok(())
}

fn status(tofu: &Tofu) -> Result<()> {
    let live = live_env(tofu).unwrap_or_else(|e| Some(format!("unknown ({e:#})")));
    println!(
        "{:<7} {:<14} {:<22} {:<34} answers",
        "env", "state", "instance", "address"
    );
    for env in Env::ALL {
        let outputs = match tofu.outputs(env) {
            Ok(outputs) => outputs,
            Err(error) => {
                println!("{:<7} error: {error:#}", env.name());
                continue;
            }
        };
        if outputs.is_empty() {
            println!("{:<7} {:<14}", env.name(), "not deployed");
            continue;
        }
        let state = if env == Env::Proxy {
            format!("-> {}", outputs.get("live_env").unwrap_or("?"))
        } else if live.as_deref() == Some(env.name()) {
            "deployed, LIVE".to_string()
        } else {
            "deployed".to_string()
        };
        let address = outputs
            .get(if env == Env::Proxy {
                "proxy_url"
            } else {
                "gateway_url"
            })
            .unwrap_or("?");
        let answers = answers(env, &outputs);
        println!(
            "{:<7} {:<14} {:<22} {:<34} {answers}",
            env.name(),
            state,
            outputs.get("instance_id").unwrap_or("?"),
            address
        );
    }
    match live {
        Some(live) => println!("\nlive: {live}"),
        None => println!("\nlive: none (no TLS proxy; `cargo xtask ec2 switch --to ENV`)"),
    }
    Ok(())
}

/// Whether an environment's gateway (or the proxy) answers, in a word or two.
fn answers(env: Env, outputs: &Outputs) -> String {
    let base = if env == Env::Proxy {
        outputs.get("proxy_url")
    } else {
        outputs.get("gateway_url")
    };
    let Some(base) = base else {
        return "?".into();
    };
    match http_get(&probe_url(base)) {
        Ok(r) if r.status == 200 => "yes".into(),
        Ok(r) => format!("no ({})", r.status),
        Err(_) => "no".into(),
    }
}

fn logs(tofu: &Tofu, env: Env) -> Result<()> {
    let outputs = tofu.outputs(env)?;
    if outputs.is_empty() {
        bail!("{env} is not deployed");
    }
    let command = outputs.require(env, "log_command")?;
    cmd::run(Command::new("sh").args(["-c", command]))
}
