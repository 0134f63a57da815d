//! What no Terraform tool checks: how `terraform/` ties to the rest of the project (the
//! doctor's table of tools, the pinned Go and Kubernetes, the platform's ports and routes,
//! the outputs xtask and the README read) and the defects a reading of the hosts' scripts
//! can catch. tofu fmt, tflint (with documented variables and outputs), checkov, and the
//! scripts rendered by tofu and shellchecked are [`super::check`].

use std::fs;
use std::path::Path;

use super::check::{REFUSED, USER_DATA};
use super::{checked_ref, clone_url};
use crate::doctor::{Install, TOOLS, Verb, at_least};
use crate::paths;

const HOST: &str = "terraform/modules/app_host/user_data/host.sh.tftpl";
const PROXY: &str = "terraform/modules/tls_proxy/user_data/proxy.sh.tftpl";

fn read(path: &str) -> String {
    fs::read_to_string(paths::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text with every run of whitespace made one space, for matching HCL and scripts.
fn squeezed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of the line `NAME=value` of a script.
fn pinned(script: &str, name: &str) -> String {
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("the host's script pins no {name}"))
        .to_string()
}

/// The body of the block that follows `header` (braces counted).
fn block<'a>(text: &'a str, header: &str) -> &'a str {
    let start = text.find(header).unwrap_or_else(|| panic!("no {header}"));
    let open = start + text[start..].find('{').expect("a block");
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        depth += match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        };
        if depth == 0 {
            return &text[open..open + i];
        }
    }
    panic!("{header}: unclosed block")
}

/// The packages of the script's `apt-get install` lines (continued lines included).
fn apt_packages(script: &str) -> Vec<String> {
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.split_once("apt-get install").map(|(_, rest)| rest))
        .flat_map(|rest| rest.split_whitespace().filter(|w| !w.starts_with('-')))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_host_installs_every_tool_that_image_and_deploy_need() {
    let script = read(HOST);
    let apt = apt_packages(&script);
    let needed = TOOLS.iter().filter(|t| {
        t.needed_by
            .iter()
            .any(|v| matches!(v, Verb::Image | Verb::Deploy))
    });
    for tool in needed {
        let minimum = tool.minimum.unwrap_or("0");
        match (tool.name, tool.install) {
            // NodeSource's nodejs brings npm; Ubuntu's npm package would bring Node 18 back.
            ("npm", _) => assert!(apt.contains(&"nodejs".to_string()), "no nodejs for npm"),
            (_, Install::Apt(package)) => {
                assert!(
                    apt.contains(&package.to_string()),
                    "the host installs no {package}"
                )
            }
            (_, Install::Rustup(kind, name)) => assert!(
                script.contains(&format!("rustup {kind} add {name}")),
                "the host adds no rustup {kind} {name}"
            ),
            // rustup installs the newest stable Rust, never older than the minimum.
            ("cargo", _) => assert!(script.contains("https://sh.rustup.rs")),
            ("node", _) => assert!(
                script.contains("deb.nodesource.com/node_$NODE_MAJOR.x")
                    && at_least(&pinned(&script, "NODE_MAJOR"), minimum),
                "Node on the host must be {minimum} or newer"
            ),
            ("go", _) => assert!(
                script.contains("https://dl.google.com/go/$archive")
                    && at_least(&pinned(&script, "GO_VERSION"), minimum)
            ),
            ("minikube", _) => assert!(script.contains("install -m 0755 /tmp/minikube")),
            (name, _) => panic!(
                "the doctor installs {name} by hand: teach the host's script ({HOST}) and this \
                 test how"
            ),
        }
    }
    // Rootless podman and buildah map the user's ids with newuidmap.
    assert!(apt.contains(&"uidmap".to_string()));
}

/// Every `go` line of the modules under `dir` (what `deploy` builds kubectl and kustomize
/// from).
fn go_lines(dir: &Path, found: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            go_lines(&path, found);
        } else if path.file_name().is_some_and(|n| n == "go.mod") {
            let text = fs::read_to_string(&path).unwrap();
            found.extend(
                text.lines()
                    .filter_map(|l| l.strip_prefix("go "))
                    .map(str::to_string),
            );
        }
    }
}

#[test]
fn the_host_has_the_go_and_the_kubernetes_that_the_project_pins() {
    let script = read(HOST);
    let go = pinned(&script, "GO_VERSION");
    let mut wanted = Vec::new();
    go_lines(&paths::root().join("deployment"), &mut wanted);
    assert!(!wanted.is_empty());
    for line in wanted {
        assert!(
            at_least(&go, &line),
            "Go {go} on the host, a module asks for {line}"
        );
    }
    // minikube runs the Kubernetes of the pinned kubectl, which is then within its skew.
    let modules = read("deployment/kubernetes/cluster-tools/go.mod");
    let kubernetes = modules
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes v"))
        .expect("cluster-tools pins k8s.io/kubernetes");
    let kubernetes = format!("v{}", kubernetes.split_whitespace().next().unwrap());
    assert_eq!(pinned(&script, "KUBERNETES_VERSION"), kubernetes);
    let squeezed = squeezed(&script.replace("\\\n", " "));
    assert!(
        squeezed.contains(r#"--memory="$memory_mb" --kubernetes-version="$KUBERNETES_VERSION""#)
    );
}

#[test]
fn minikube_starts_again_after_a_reboot() {
    let script = read(HOST);
    let unit = script
        .split("/etc/systemd/system/kafka-cqrs-minikube.service <<EOF")
        .nth(1)
        .expect("a unit that starts minikube")
        .split("\nEOF")
        .next()
        .unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/minikube start")
            && unit.contains("--kubernetes-version=$KUBERNETES_VERSION")
            && unit.contains("WantedBy=multi-user.target")
            && unit.contains("User=$APP_USER"),
        "{unit}"
    );
    assert!(script.contains("systemctl enable kafka-cqrs-minikube.service"));
    // nginx forwards to the cluster: it starts after it.
    assert!(script.contains("After=kafka-cqrs-minikube.service"));
}

#[test]
fn an_ami_look_up_never_replaces_an_instance() {
    for module in ["app_host", "tls_proxy"] {
        let main = read(&format!("terraform/modules/{module}/main.tf"));
        assert!(
            main.contains("most_recent = true"),
            "{module} looks up no AMI"
        );
        let instance = squeezed(block(&main, "resource \"aws_instance\""));
        assert!(
            instance.contains("ignore_changes = [ami]"),
            "{module}: a newer AMI would replace the instance"
        );
    }
}

#[test]
fn the_certificate_timer_starts_after_the_first_certbot_run() {
    let script = read(PROXY);
    let provision = block(&script, "provision() {");
    let first_try = provision.find("if certificate; then").expect("a first try");
    let timer = provision
        .find("enable --now kafka-cqrs-certificate.timer")
        .expect("the timer is started");
    assert!(first_try < timer, "the timer races the first certbot run");
    assert_eq!(provision.matches("kafka-cqrs-certificate.timer").count(), 1);
}

#[test]
fn streams_are_counted_per_client_address() {
    let proxy = read(PROXY);
    assert!(proxy.contains("proxy_set_header X-Forwarded-For $remote_addr;"));
    let host = read(HOST);
    for line in [
        "set_real_ip_from $PROXY_CIDR;",
        "real_ip_header X-Forwarded-For;",
        r"proxy_set_header X-Forwarded-For \$remote_addr;",
        r#"\"use-forwarded-headers\":\"true\""#,
        r#"\"proxy-real-ip-cidr\":\"$bridge_ip/32\""#,
    ] {
        assert!(host.contains(line), "the host's script lacks {line}");
    }
    assert!(!host.contains("socat"), "socat hides the client's address");
    let module = squeezed(&read("terraform/modules/app_host/main.tf"));
    assert!(module.contains("proxy_cidr = data.aws_vpc.default.cidr_block"));
}

#[test]
fn the_warm_up_runs_against_this_hosts_deployment_only() {
    let script = read(HOST);
    assert!(script.contains(r#"cargo xtask deploy | tee "$STATE/deploy.out""#));
    let warm_up = &script[script.find("step \"warm-up").expect("a warm-up")..];
    assert!(warm_up.contains(r#""$STATE/deploy.out""#) && warm_up.contains("$${e2e[@]}"));
    assert!(
        !warm_up.contains("--gateway"),
        "the warm-up names a gateway of its own"
    );
}

/// The output names of a root.
fn outputs(root: &str) -> Vec<String> {
    read(&format!("terraform/environments/{root}/outputs.tf"))
        .lines()
        .filter_map(|l| l.strip_prefix("output \""))
        .map(|l| l.split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn xtask_and_the_readme_read_outputs_that_exist() {
    let app = outputs("app");
    for name in [
        "url",
        "gateway_url",
        "instance_id",
        "private_ip",
        "security_group_id",
        "log_command",
    ] {
        assert!(
            app.contains(&name.to_string()),
            "environments/app lacks {name}"
        );
    }
    let proxy = outputs("proxy");
    for name in ["url", "proxy_url", "instance_id", "live_env", "log_command"] {
        assert!(
            proxy.contains(&name.to_string()),
            "environments/proxy lacks {name}"
        );
    }
    let readme = read("README.md");
    let section = readme
        .split("\n## Run it on AWS")
        .nth(1)
        .expect("a \"Run it on AWS\"");
    let section = section.split("\n## ").next().unwrap();
    let table = section
        .split("| output |")
        .nth(1)
        .expect("an outputs table");
    let named: Vec<&str> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    assert!(named.len() >= 3, "{named:?}");
    for name in named {
        assert!(
            app.contains(&name.to_string()),
            "README names output {name}, app lacks it"
        );
    }
}

/// Every check that checkov skips says why: a comment above it in `.checkov.yaml`, or the
/// reason part of an inline `#checkov:skip=ID:reason`.
#[test]
fn every_skipped_checkov_check_says_why() {
    let config = read("terraform/.checkov.yaml");
    let lines: Vec<&str> = config.lines().collect();
    let mut skips = 0;
    for (i, line) in lines.iter().enumerate() {
        if let Some(id) = line.trim().strip_prefix("- CKV") {
            skips += 1;
            assert!(
                lines[i - 1].trim().starts_with('#'),
                "CKV{id} is skipped without why"
            );
        }
    }
    for module in ["app_host", "tls_proxy"] {
        for skip in read(&format!("terraform/modules/{module}/main.tf"))
            .split("#checkov:skip=")
            .skip(1)
        {
            skips += 1;
            let line = skip.lines().next().unwrap();
            let reason = line.split_once(':').map_or("", |(_, r)| r.trim());
            assert!(reason.len() > 10, "{module}: skip {line} has no reason");
        }
    }
    assert!(skips > 0, "no skips found: has the format changed?");
}

/// The hosts expose the cluster's ingress port, and the proxy and the firewall use that
/// same port: the platform's table, not a number typed again.
#[test]
fn the_gateway_port_is_the_platforms() {
    let port = platform::gateway::CLUSTER_PORT;
    for (module, rule) in [("app_host", "http"), ("tls_proxy", "to_environment")] {
        let main = read(&format!("terraform/modules/{module}/main.tf"));
        let header = format!("resource \"aws_vpc_security_group_ingress_rule\" \"{rule}\"");
        let rule = squeezed(block(&main, &header));
        assert!(
            rule.contains(&format!("from_port = {port} to_port = {port}")),
            "{module}: {rule}"
        );
    }
    let host = read(HOST);
    assert!(host.contains(&format!("listen {port} default_server;")));
    assert!(host.contains(&format!("proxy_pass http://$ingress_ip:{port};")));
    assert!(read(PROXY).contains(&format!("server $target:{port};")));
}

/// The proxy must not buffer Server-Sent Events: every streaming route of the platform
/// has a location with buffering off.
#[test]
fn the_proxy_streams_every_sse_route_unbuffered() {
    let script = read(PROXY);
    for route in platform::SERVICES.iter().filter_map(|s| s.route) {
        if !route.streaming {
            continue;
        }
        let location = format!("location {}/ {{", route.prefix);
        let body = block(&script, &location);
        assert!(body.contains("proxy_buffering off;"), "{location} buffers");
        assert!(body.contains("proxy_read_timeout"), "{location} times out");
    }
}

#[test]
fn the_host_clones_over_https_without_credentials() {
    for (url, https) in [
        (
            "git@github.com:owner/repo.git",
            "https://github.com/owner/repo.git",
        ),
        (
            "ssh://git@gitlab.com:2222/group/repo.git",
            "https://gitlab.com/group/repo.git",
        ),
        (
            "https://github.com/owner/repo.git",
            "https://github.com/owner/repo.git",
        ),
    ] {
        assert_eq!(clone_url(url).unwrap(), https);
    }
    let error = format!(
        "{:#}",
        clone_url("https://me:s3cret@github.com/o/r.git").unwrap_err()
    );
    assert!(
        error.contains("holds credentials") && !error.contains("s3cret"),
        "{error}"
    );
    // What the module refuses, xtask refuses with a message first; the samples pass both.
    for (name, value) in REFUSED {
        let refused = match *name {
            // An SSH URL may become the https one; nothing passes unchanged.
            "repo_url" => !clone_url(value).is_ok_and(|converted| converted == *value),
            "git_ref" => checked_ref(value).is_err(),
            _ => true,
        };
        assert!(refused, "xtask lets {name} = {value:?} through unchanged");
    }
    for (name, value) in USER_DATA[0].sample {
        match *name {
            "repo_url" => assert_eq!(clone_url(value).unwrap(), *value),
            "git_ref" => assert_eq!(checked_ref(value).unwrap(), *value),
            _ => {}
        }
    }
}
