//! The tidy test (after rust-analyzer's): the rules of ARCHITECTURE.md that a reviewer
//! would otherwise have to check by eye, checked on every `cargo xtask test`.

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

use crate::paths;

/// Every file under the workspace's source folders with one of `extensions`, relative to
/// the root, skipping build output and installed packages.
fn files(extensions: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | "node_modules" | "dist" | ".git") {
                    walk(&path, extensions, out);
                }
            } else if extensions.iter().any(|e| name.ends_with(e)) {
                out.push(path);
            }
        }
    }
    let root = paths::root();
    let mut out = Vec::new();
    for dir in ["libs", "services", "xtask", "e2e"] {
        walk(&root.join(dir), extensions, &mut out);
    }
    out.sort();
    out
}

/// This file names what it looks for, so the content rules skip it.
const THIS_FILE: &str = "xtask/src/tidy.rs";

fn relative(path: &Path) -> String {
    paths::display(path)
}

/// Lines of Rust code with `//` comments removed (doc comments included).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let code = line.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

#[test]
fn every_module_says_what_it_is_for() {
    let missing: Vec<String> = files(&[".rs"])
        .into_iter()
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| relative(&p))
        .collect();
    assert!(
        missing.is_empty(),
        "these modules do not open with a `//!` line saying what they are for: {missing:#?}"
    );
}

#[test]
fn only_telemetry_knows_opentelemetry() {
    // The test kit's OTLP receiver decodes what the exporters send: it is the other end
    // of the wire, not instrumentation, so it may name the protocol's types.
    const ALLOWED: [&str; 3] = [
        "libs/telemetry/",
        "libs/testkit/src/otlp.rs",
        "libs/testkit/Cargo.toml",
    ];
    let offenders: Vec<String> = files(&[".rs", "Cargo.toml"])
        .into_iter()
        .filter(|p| !ALLOWED.iter().any(|a| relative(p).starts_with(a)))
        .filter(|p| relative(p) != THIS_FILE)
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            code_lines(&text).any(|(_, code)| code.contains("opentelemetry"))
        })
        .map(|p| relative(&p))
        .collect();
    assert!(
        offenders.is_empty(),
        "only libs/telemetry may use OpenTelemetry (ARCHITECTURE.md, rules): {offenders:#?}"
    );
}

#[test]
fn member_crates_name_no_dependency_versions() {
    let mut offenders = Vec::new();
    for manifest in files(&["Cargo.toml"]) {
        let text = fs::read_to_string(&manifest).unwrap_or_default();
        let mut in_dependencies = false;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('[') {
                in_dependencies = line.contains("dependencies");
                continue;
            }
            if !in_dependencies || line.is_empty() || line.starts_with('#') {
                continue;
            }
            let inherited = line.contains("workspace = true") || line.contains(".workspace = true");
            if !inherited {
                offenders.push(format!("{}:{}: {line}", relative(&manifest), number + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "members name their dependencies with `workspace = true` (versions live in the root \
         Cargo.toml): {offenders:#?}"
    );
}

#[test]
fn service_ports_are_written_only_in_libs_platform() {
    let ports: Vec<String> = platform::SERVICES
        .iter()
        .map(|s| s.port.to_string())
        .chain([platform::gateway::GUI_PORT.to_string()])
        .collect();
    let mut offenders = Vec::new();
    for file in files(&[".rs"]) {
        let path = relative(&file);
        if path.starts_with("libs/platform/") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (number, code) in code_lines(&text) {
            let numbers = code.split(|c: char| !c.is_ascii_digit());
            if numbers.into_iter().any(|n| ports.iter().any(|p| p == n)) {
                offenders.push(format!("{path}:{number}: {}", code.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "a service port is typed outside libs/platform; name it from the table: {offenders:#?}"
    );
}

#[test]
fn the_generated_files_agree_with_the_table_of_services() {
    for (path, _) in crate::codegen::generated() {
        let text = fs::read_to_string(&path).unwrap_or_default();
        // Prometheus in Kubernetes finds the pods through the API server and scrapes their
        // port by its name, so its configuration names services and no ports.
        if !text.contains(crate::codegen::HEADER_NOTE) || text.contains("kubernetes_sd_configs") {
            continue;
        }
        for service in platform::SERVICES {
            let mentions_service = text.contains(service.name);
            // `host:8084` in configurations, `port: 8084` or `value: '8084'` in YAML.
            let mentions_port = [":", ": ", ": '"]
                .iter()
                .any(|before| text.contains(&format!("{before}{}", service.port)));
            assert_eq!(
                mentions_service,
                mentions_port,
                "{} names {} without its port {} (or the other way round)",
                relative(&path),
                service.name,
                service.port
            );
        }
    }
}

#[test]
fn no_test_is_ignored_without_a_reason() {
    let offenders: Vec<String> = files(&[".rs"])
        .into_iter()
        .filter(|p| relative(p) != THIS_FILE)
        .flat_map(|p| {
            let text = fs::read_to_string(&p).unwrap_or_default();
            code_lines(&text)
                .filter(|(_, code)| code.contains("#[ignore]"))
                .map(|(n, _)| format!("{}:{n}", relative(&p)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "write `#[ignore = \"why\"]`, never a bare `#[ignore]`: {offenders:#?}"
    );
}

#[test]
fn rust_version_is_true_to_the_code() {
    // Let chains (`if let ... && ...`) are stable from Rust 1.88: a workspace that uses
    // them cannot promise an older compiler. The toolchain named here is not installable
    // offline, so this check stands in for building with it.
    let manifest = fs::read_to_string(paths::root().join("Cargo.toml")).unwrap();
    let declared = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("the workspace declares rust-version");
    let minor: u32 = declared
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .expect("rust-version is 1.MINOR");
    let uses_let_chains = files(&[".rs"]).into_iter().any(|p| {
        let text = fs::read_to_string(&p).unwrap_or_default();
        // A chain either continues on its own line (`&& let ...`, as rustfmt writes it)
        // or sits on one line after `if let` / `while let`.
        code_lines(&text).any(|(_, code)| {
            let code = code.trim_start();
            code.starts_with("&& let ")
                || ((code.contains("if let ") || code.contains("while let "))
                    && code.contains(" && "))
        })
    });
    if uses_let_chains {
        assert!(
            minor >= 88,
            "the code uses let chains (Rust 1.88) but Cargo.toml says rust-version = {declared}"
        );
    }
}

/// Every `cargo xtask ...` line in a `shell` block of README.md: its subcommands exist and
/// each `--flag` is one that subcommand takes (read from the command line's own
/// definition, as `cargo xtask <verb> --help` would show it). `a | b | c` after a verb
/// names alternatives to it (`cargo xtask infra up | down | status`).
#[test]
fn every_command_the_readme_shows_exists() {
    use clap::CommandFactory;

    let readme = fs::read_to_string(paths::root().join("README.md")).unwrap();
    let root = crate::Cli::command();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut in_shell = false;
    for line in readme.lines() {
        if let Some(fence) = line.strip_prefix("```") {
            in_shell = !in_shell && fence == "shell";
            continue;
        }
        let code = line.split(" #").next().unwrap_or_default();
        let Some((_, rest)) = code.split_once("cargo xtask ") else {
            continue;
        };
        if !in_shell {
            continue;
        }
        let words: Vec<&str> = rest
            .split_whitespace()
            .take_while(|w| *w != "--" && *w != "&&")
            .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
            .collect();
        let mut groups = words.split(|w| *w == "|");
        let first = groups.next().unwrap_or_default();
        match check_line(&root, &[], first) {
            Ok(path) => {
                checked += 1;
                // Alternatives replace the last verb of the first group.
                for alternative in groups {
                    let parent = &path[..path.len().saturating_sub(1)];
                    if let Err(problem) = check_line(&root, parent, alternative) {
                        problems.push(format!("{line}: {problem}"));
                    }
                }
            }
            Err(problem) => problems.push(format!("{line}: {problem}")),
        }
    }
    assert!(
        checked >= 20,
        "found only {checked} commands in README.md's shell blocks"
    );
    assert!(
        problems.is_empty(),
        "README.md shows commands that do not exist: {problems:#?}"
    );
}

/// Walks `prefix` then `words` down the subcommands of `root`; checks every `--flag` of
/// the subcommand reached. Returns the path of subcommands.
fn check_line(
    root: &clap::Command,
    prefix: &[String],
    words: &[&str],
) -> Result<Vec<String>, String> {
    let mut command = root;
    let mut path = Vec::new();
    for verb in prefix {
        command = command
            .find_subcommand(verb)
            .ok_or(format!("no verb `{verb}`"))?;
        path.push(verb.clone());
    }
    let mut words = words.iter().peekable();
    while let Some(word) = words.peek() {
        match command.find_subcommand(word) {
            Some(sub) => {
                command = sub;
                path.push((**word).to_owned());
                words.next();
            }
            None => break,
        }
    }
    if path.len() == prefix.len() {
        return Err(format!("`{}` is no verb", words.peek().unwrap_or(&&"")));
    }
    for word in words {
        if let Some(flag) = word.strip_prefix("--") {
            let flag = flag.split('=').next().unwrap_or_default();
            let known =
                flag == "help" || command.get_arguments().any(|a| a.get_long() == Some(flag));
            if !known {
                return Err(format!("`{}` takes no `--{flag}`", path.join(" ")));
            }
        }
    }
    Ok(path)
}

/// The repository stands alone: no file in it names a document outside it (the design
/// contract the project started from lives in ARCHITECTURE.md, "The contract").
#[test]
fn nothing_names_a_file_outside_the_repository() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if !matches!(
                    name.to_str(),
                    Some("target" | "node_modules" | "dist" | ".git" | ".terraform")
                ) {
                    walk(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    walk(&paths::root(), &mut all);
    // Spelled in two halves, so that this file does not name them either.
    let outside = [format!("{}.md", "DESIGN"), format!("../{}/", "shared")];
    let offenders: Vec<String> = all
        .iter()
        .filter(|path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            outside.iter().any(|name| text.contains(name.as_str()))
        })
        .map(|path| relative(path))
        .collect();
    assert!(
        offenders.is_empty(),
        "these files name a document outside the repository (say what it says instead): \
         {offenders:#?}"
    );
}

/// xtask's modules depend on each other in one direction only: a cycle between two
/// top-level modules (`system` using `image` and `image` using `system`) means that a piece
/// lives in the wrong one. Tests inside a module (`#[cfg(test)] mod tests`) may look
/// anywhere.
#[test]
fn xtask_modules_form_no_cycle() {
    use std::collections::{BTreeMap, BTreeSet};

    let src = paths::root().join("xtask/src");
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files(&[".rs"]) {
        let Ok(inner) = path.strip_prefix(&src) else {
            continue;
        };
        let top = inner
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "main" || top == "tidy" {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        let used = uses.entry(top.clone()).or_default();
        for (_, line) in code_lines(code) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(list) => list
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .collect(),
                    None => vec![rest],
                };
                for name in names {
                    let name: String = name
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != top && name.chars().all(|c| !c.is_uppercase()) {
                        used.insert(name);
                    }
                }
            }
        }
    }
    // A depth-first search from every module; a module met again on the current path
    // closes a cycle.
    fn visit(
        module: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            cycles.push(cycle.join(" -> "));
            return;
        }
        if !done.insert(module.to_owned()) {
            return;
        }
        path.push(module.to_owned());
        for next in uses.get(module).into_iter().flatten() {
            visit(next, uses, path, done, cycles);
        }
        path.pop();
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for module in uses.keys() {
        visit(module, &uses, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(
        cycles.is_empty(),
        "xtask's modules use each other in a cycle (move the shared piece into a module both \
         use): {cycles:#?}"
    );
}

/// The reader runs no DDL: it neither applies the schema's migrations nor holds the writer
/// (the schema is the persister's; ARCHITECTURE.md, "Invariants").
#[test]
fn the_reader_runs_no_ddl() {
    const DDL: [&str; 7] = [
        "migrations::",
        "schema::",
        "DocumentWriter",
        "CREATE ",
        "ALTER ",
        "DROP ",
        "TRUNCATE ",
    ];
    let offenders: Vec<String> = files(&[".rs"])
        .into_iter()
        .filter(|p| {
            let path = relative(p);
            path.starts_with("services/reader/src/") || path == "libs/store/src/read.rs"
        })
        .flat_map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            code_lines(&text)
                .filter(|(_, code)| DDL.iter().any(|word| code.contains(word)))
                .map(|(n, code)| format!("{}:{n}: {}", relative(&p), code.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "the reader runs no DDL; the schema is the persister's: {offenders:#?}"
    );
}
