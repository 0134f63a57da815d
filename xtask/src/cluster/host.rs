//! What the cluster changes on the host, and how `down` undoes it and proves it did: the
//! bridge and its route, the sysctls that the CNI bridge plugin and the kubelet set, the
//! guard chain that keeps pod packets on the bridge, and what the node leaves when it
//! stops (mounts, network namespaces, veths, iptables chains of kube-proxy and CNI,
//! kubepods cgroups, leftover processes).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::{BRIDGE, COMPONENTS, Layout, NODE_IP, SERVICE_CIDR, quiet};
use crate::{paths, process};

/// The chain `up` puts first in `FORWARD`: a packet into or out of the bridge must stay on
/// it, so no pod reaches past this machine and nothing outside reaches a pod.
const GUARD_CHAIN: &str = "KCQ-CLUSTER-GUARD";

/// The prefixes of every iptables chain of the cluster: kube-proxy's and the kubelet's,
/// the CNI plugins', and the guard.
const CHAIN_PREFIXES: [&str; 3] = ["KUBE-", "CNI-", "KCQ-"];

const TABLES: [&str; 4] = ["filter", "nat", "mangle", "raw"];

/// Host settings that the cluster's parts change: the bridge plugin turns forwarding on,
/// the bridge needs its traffic to pass iptables for Services, and the kubelet sets its
/// kernel tunables. `down` puts back what was there.
const SYSCTLS: [&str; 9] = [
    "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

/// Directories the node may create outside the state directory; removed at `down` when
/// they did not exist before `up`. (Image storage, /var/lib/containers, is buildah's, as
/// for `cargo xtask image`, and stays.)
const HOST_DIRS: [&str; 6] = [
    "/run/containerd",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
    // The kubelet's device plugin socket directory, which no flag moves.
    "/var/lib/kubelet",
    // util-linux's record of mount options, written by the `umount`s of `down`.
    "/run/mount",
];

/// Saves what `down` restores, then creates the bridge (with the node's address, so that
/// the apiserver can listen there before the first pod), the route of the Service range
/// onto it, the sysctls and the guard chain.
pub fn prepare(layout: &Layout) -> Result<()> {
    let state = layout.host_state();
    // An earlier state file holds the host's original values; never overwrite it.
    if !state.exists() {
        let mut saved = BTreeMap::new();
        for key in SYSCTLS {
            if let Ok(value) = fs::read_to_string(Path::new("/proc/sys").join(key)) {
                saved.insert(format!("sysctl:{key}"), value.trim().to_owned());
            }
        }
        for dir in HOST_DIRS {
            saved.insert(
                format!("existed:{dir}"),
                Path::new(dir).exists().to_string(),
            );
        }
        let veths = veths()?;
        saved.insert("veths".into(), veths.join(" "));
        fs::write(&state, serde_json::to_string_pretty(&saved)?)?;
    }
    ip(&["link", "add", BRIDGE, "type", "bridge"])?;
    ip(&["addr", "add", &format!("{NODE_IP}/24"), "dev", BRIDGE])?;
    ip(&["link", "set", BRIDGE, "up"])?;
    // Service addresses are only ever rewritten by kube-proxy; without a rule they would
    // follow the default route off this machine. This route keeps them on the bridge.
    ip(&["route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP])?;
    set_sysctl("net/bridge/bridge-nf-call-iptables", "1")?;
    set_sysctl("net/ipv4/ip_forward", "1")?;
    iptables(&["-N", GUARD_CHAIN])?;
    iptables(&[
        "-A",
        GUARD_CHAIN,
        "-i",
        BRIDGE,
        "!",
        "-o",
        BRIDGE,
        "-j",
        "DROP",
    ])?;
    iptables(&[
        "-A",
        GUARD_CHAIN,
        "-o",
        BRIDGE,
        "!",
        "-i",
        BRIDGE,
        "-j",
        "DROP",
    ])?;
    iptables(&["-I", "FORWARD", "1", "-j", GUARD_CHAIN])?;
    Ok(())
}

/// Empties the state directory but for the image archives and the saved host state.
pub fn reset_state_dir(layout: &Layout) -> Result<()> {
    fs::create_dir_all(&layout.dir)?;
    for entry in fs::read_dir(&layout.dir)? {
        let path = entry?.path();
        if path == layout.dir.join("images") || path == layout.host_state() {
            continue;
        }
        if path.is_dir() {
            fs::remove_dir_all(&path)
                .with_context(|| format!("cannot delete {}", paths::display(&path)))?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Stops what is left of the cluster and undoes its changes to the host; safe to run
/// when nothing is left.
pub fn clean(layout: &Layout) -> Result<()> {
    // Processes: any component still alive, the runc shims, and whatever runs in a pod's
    // cgroup (a container whose shim died keeps running).
    let mut pids = Vec::new();
    for component in COMPONENTS {
        pids.extend(component.pids(layout)?);
    }
    pids.extend(process::pids(
        &layout.containerd_socket().display().to_string(),
    )?);
    pids.extend(kubepods_pids());
    for &pid in &pids {
        eprintln!("Killing leftover process {pid}...");
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if !pids.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
    }
    // Mounts under the state directory (the kubelet's volumes, the sandboxes' shm, the
    // containers' root file systems, the network namespaces), deepest first.
    for _ in 0..5 {
        let mounts = mounts_under(&layout.dir);
        if mounts.is_empty() {
            break;
        }
        for mount in mounts {
            if quiet(Command::new("umount").arg(&mount)).is_err() {
                let _ = quiet(Command::new("umount").arg("-l").arg(&mount));
            }
        }
    }
    for ns in quiet(Command::new("ip").args(["netns", "list"]))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("cni-"))
    {
        let _ = ip(&["netns", "delete", ns]);
    }
    for veth in bridge_ports() {
        let _ = ip(&["link", "delete", &veth]);
    }
    if link_exists(BRIDGE) {
        ip(&["link", "delete", BRIDGE])?;
    }
    for family in ["iptables", "ip6tables"] {
        for table in TABLES {
            remove_chains(family, table)?;
        }
    }
    remove_kubepods_cgroups();
    // Whatever the node created outside the state directory, and the host's settings.
    let state = layout.host_state();
    if let Ok(text) = fs::read_to_string(&state) {
        let saved: BTreeMap<String, String> = serde_json::from_str(&text)
            .with_context(|| format!("cannot read {}", paths::display(&state)))?;
        for (key, value) in &saved {
            if let Some(sysctl) = key.strip_prefix("sysctl:") {
                set_sysctl(sysctl, value)?;
            } else if let Some(dir) = key.strip_prefix("existed:")
                && value == "false"
                && Path::new(dir).exists()
            {
                fs::remove_dir_all(dir).with_context(|| format!("cannot delete {dir}"))?;
            }
        }
    }
    Ok(())
}

/// Everything of the cluster still on the host, one line each; empty when `down` left
/// nothing. Also forgets the saved host state once it is restored.
pub fn leftovers(layout: &Layout) -> Result<Vec<String>> {
    let mut left = Vec::new();
    for component in COMPONENTS {
        for pid in component.pids(layout)? {
            left.push(format!("process {} (pid {pid})", component.name));
        }
    }
    for pid in process::pids(&layout.containerd_socket().display().to_string())? {
        left.push(format!("containerd shim (pid {pid})"));
    }
    for pid in kubepods_pids() {
        left.push(format!("process {pid} in a kubepods cgroup"));
    }
    for mount in mounts_under(&layout.dir) {
        left.push(format!("mount {}", mount.display()));
    }
    for line in fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        if line.contains(" nsfs ") && line.contains("cni-") {
            left.push(format!("network namespace mount: {line}"));
        }
    }
    for ns in quiet(Command::new("ip").args(["netns", "list"]))
        .unwrap_or_default()
        .lines()
        .filter(|n| n.starts_with("cni-"))
    {
        left.push(format!("network namespace {ns}"));
    }
    if link_exists(BRIDGE) {
        left.push(format!("bridge {BRIDGE}"));
    }
    let state = layout.host_state();
    let saved: BTreeMap<String, String> = fs::read_to_string(&state)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let veths_before: Vec<&str> = saved
        .get("veths")
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    for veth in veths()? {
        if !veths_before.contains(&veth.as_str()) && !veth_has_master(&veth) {
            left.push(format!("veth {veth}"));
        }
    }
    if quiet(Command::new("ip").args(["route", "show", SERVICE_CIDR])).is_ok_and(|r| !r.is_empty())
    {
        left.push(format!("route {SERVICE_CIDR}"));
    }
    for family in ["iptables", "ip6tables"] {
        for table in TABLES {
            for line in rules(family, table) {
                if CHAIN_PREFIXES.iter().any(|p| line.contains(p)) {
                    left.push(format!("{family} -t {table}: {line}"));
                }
            }
        }
    }
    for dir in kubepods_dirs() {
        left.push(format!("cgroup {}", dir.display()));
    }
    for (key, value) in &saved {
        if let Some(sysctl) = key.strip_prefix("sysctl:") {
            let now = fs::read_to_string(Path::new("/proc/sys").join(sysctl)).unwrap_or_default();
            if now.trim() != value {
                left.push(format!("sysctl {sysctl} = {} (was {value})", now.trim()));
            }
        } else if let Some(dir) = key.strip_prefix("existed:")
            && value == "false"
            && Path::new(dir).exists()
        {
            left.push(format!("directory {dir}"));
        }
    }
    if left.is_empty() {
        let _ = fs::remove_file(&state);
    }
    Ok(left)
}

fn ip(args: &[&str]) -> Result<()> {
    quiet(Command::new("ip").args(args)).map(|_| ())
}

fn iptables(args: &[&str]) -> Result<()> {
    quiet(Command::new("iptables").args(args)).map(|_| ())
}

fn set_sysctl(key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key);
    let now = fs::read_to_string(&path).unwrap_or_default();
    if now.trim() == value {
        return Ok(());
    }
    fs::write(&path, value).with_context(|| {
        format!(
            "cannot set {} to {value}; the cluster needs root (run xtask as root)",
            path.display()
        )
    })
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The interfaces enslaved to the bridge (the host ends of the pods' veths).
fn bridge_ports() -> Vec<String> {
    fs::read_dir(Path::new("/sys/class/net").join(BRIDGE).join("brif"))
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn veths() -> Result<Vec<String>> {
    let text = quiet(Command::new("ip").args(["-o", "link", "show", "type", "veth"]))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let name = l.split(": ").nth(1)?;
            Some(name.split('@').next()?.to_owned())
        })
        .collect())
}

fn veth_has_master(name: &str) -> bool {
    Path::new("/sys/class/net")
        .join(name)
        .join("master")
        .exists()
}

/// Mount points under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let prefix = dir.display().to_string();
    let mut mounts: Vec<PathBuf> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(PathBuf::from)
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    mounts.dedup();
    mounts
}

/// `-S` of one table: every chain and rule, or nothing when the table cannot be read.
fn rules(family: &str, table: &str) -> Vec<String> {
    quiet(Command::new(family).args(["-w", "5", "-t", table, "-S"]))
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Deletes every rule that jumps to a chain of the cluster, then those chains.
fn remove_chains(family: &str, table: &str) -> Result<()> {
    let all = rules(family, table);
    let ours = |chain: &str| CHAIN_PREFIXES.iter().any(|p| chain.starts_with(p));
    let chains: Vec<&str> = all
        .iter()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            match words.next()? {
                "-N" | "-P" => words.next(),
                _ => None,
            }
        })
        .collect();
    for chain in chains.iter().filter(|c| !ours(c)) {
        // Rule numbers from `-L`, deleted from the last, so that the others keep theirs.
        let listing = quiet(Command::new(family).args([
            "-w",
            "5",
            "-t",
            table,
            "-L",
            chain,
            "-n",
            "--line-numbers",
        ]))
        .unwrap_or_default();
        let mut numbers: Vec<u32> = listing
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let number = words.next()?.parse().ok()?;
                ours(words.next()?).then_some(number)
            })
            .collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        for number in numbers {
            quiet(Command::new(family).args([
                "-w",
                "5",
                "-t",
                table,
                "-D",
                chain,
                &number.to_string(),
            ]))?;
        }
    }
    let ours_chains: Vec<&&str> = chains.iter().filter(|c| ours(c)).collect();
    for chain in &ours_chains {
        quiet(Command::new(family).args(["-w", "5", "-t", table, "-F", chain]))?;
    }
    for chain in &ours_chains {
        quiet(Command::new(family).args(["-w", "5", "-t", table, "-X", chain]))?;
    }
    Ok(())
}

/// The `kubepods` directory in every cgroup v1 hierarchy (and the v2 one), where the
/// kubelet puts pods with the cgroupfs driver, and every directory below it.
fn kubepods_dirs() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    let mut roots: Vec<PathBuf> = hierarchies
        .filter_map(|e| e.ok().map(|e| e.path().join("kubepods")))
        .collect();
    roots.push(PathBuf::from("/sys/fs/cgroup/kubepods"));
    for root in roots {
        if root.is_dir() {
            walk_dirs(&root, &mut found);
        }
    }
    found.sort();
    found.dedup();
    found
}

/// `dir` and every directory below it, children after their parent.
fn walk_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk_dirs(&entry.path(), out);
            }
        }
    }
}

fn kubepods_pids() -> Vec<i32> {
    let mut pids: Vec<i32> = kubepods_dirs()
        .iter()
        .flat_map(|d| {
            fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Removes the kubepods cgroups depth-first (a cgroup is removed with rmdir once its
/// children are gone and no process is in it).
fn remove_kubepods_cgroups() {
    for _ in 0..10 {
        let mut dirs = kubepods_dirs();
        if dirs.is_empty() {
            return;
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.as_os_str().len()));
        for dir in dirs {
            let _ = fs::remove_dir(&dir);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The cluster creates a bridge, sets sysctls and runs a kubelet: root only.
pub fn require_root() -> Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!("`cargo xtask cluster` needs root: it creates a bridge and runs a kubelet");
    }
    Ok(())
}
