//! The files a cluster starts from, written into its state directory at every `up`: the
//! certificates and tokens, one kubeconfig per component, and the configurations of
//! containerd, the CNI bridge, the kubelet, kube-proxy and CoreDNS.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use super::{
    API_SERVICE_IP, APISERVER_PORT, BRIDGE, CLUSTER_DOMAIN, CONTEXT, DNS_IP, Layout, NODE, NODE_IP,
    NODE_POD_CIDR, POD_CIDR,
};
use crate::cmd;

/// One identity of the token file: who a component is to the apiserver.
pub struct Identity {
    /// The kubeconfig's file stem and the token file's comment.
    pub component: &'static str,
    pub user: String,
    pub groups: &'static str,
}

/// Every identity: an admin for people and tests, and each component as the user its
/// bootstrap RBAC role (or the Node authorizer) names.
pub fn identities() -> Vec<Identity> {
    vec![
        Identity {
            component: "admin",
            user: "admin".into(),
            groups: "system:masters",
        },
        Identity {
            component: "kubelet",
            user: format!("system:node:{NODE}"),
            groups: "system:nodes",
        },
        Identity {
            component: "kube-proxy",
            user: "system:kube-proxy".into(),
            groups: "",
        },
        Identity {
            component: "controller-manager",
            user: "system:kube-controller-manager".into(),
            groups: "",
        },
        Identity {
            component: "scheduler",
            user: "system:kube-scheduler".into(),
            groups: "",
        },
    ]
}

/// A CA of the cluster's own, the apiserver's serving certificate (valid for the names
/// and addresses pods and the host use: the bridge address, the `kubernetes` Service),
/// the apiserver's client certificate towards the kubelet, and the service account key.
pub fn write_pki(layout: &Layout, openssl: &Path) -> Result<()> {
    let pki = layout.pki();
    fs::create_dir_all(&pki)?;
    let ssl = |args: &[&str]| -> Result<()> {
        let mut command = Command::new(openssl);
        command.current_dir(&pki).args(args);
        let output = cmd::output(&mut command)?;
        if !output.status.success() {
            bail!(
                "`{}` failed: {}",
                cmd::shell_line(&command),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    };
    ssl(&["genrsa", "-out", "ca.key", "2048"])?;
    ssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-days",
        "365",
        "-subj",
        "/CN=kafka-cqrs-local-ca",
        "-out",
        "ca.crt",
    ])?;
    let sans = format!(
        "subjectAltName=IP:{NODE_IP},IP:{API_SERVICE_IP},IP:127.0.0.1,DNS:localhost,\
         DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,\
         DNS:kubernetes.default.svc.{CLUSTER_DOMAIN}\n\
         extendedKeyUsage=serverAuth\n"
    );
    fs::write(pki.join("apiserver.ext"), sans)?;
    fs::write(pki.join("client.ext"), "extendedKeyUsage=clientAuth\n")?;
    for (name, subject, ext) in [
        ("apiserver", "/CN=kube-apiserver", "apiserver.ext"),
        (
            "apiserver-kubelet-client",
            "/O=system:masters/CN=kube-apiserver-kubelet-client",
            "client.ext",
        ),
    ] {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        ssl(&["genrsa", "-out", &key, "2048"])?;
        ssl(&["req", "-new", "-key", &key, "-subj", subject, "-out", &csr])?;
        ssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            ext,
            "-out",
            &crt,
        ])?;
    }
    ssl(&["genrsa", "-out", "service-accounts.key", "2048"])?;
    Ok(())
}

/// The token file of the apiserver and one kubeconfig per identity; the admin's is
/// `kubeconfig` with the context [`CONTEXT`].
pub fn write_credentials(layout: &Layout, random: &mut dyn FnMut() -> Result<u128>) -> Result<()> {
    let mut tokens = String::new();
    let ca = layout.pki().join("ca.crt");
    for (uid, identity) in identities().into_iter().enumerate() {
        let token = format!("{:032x}", random()?);
        tokens.push_str(&format!(
            "{token},{},{},\"{}\"\n",
            identity.user,
            1000 + uid,
            identity.groups
        ));
        let file = if identity.component == "admin" {
            layout.kubeconfig()
        } else {
            layout.component_kubeconfig(identity.component)
        };
        fs::write(file, kubeconfig(&ca, &token))?;
    }
    fs::write(layout.pki().join("tokens.csv"), tokens)?;
    Ok(())
}

/// A kubeconfig for the apiserver on the bridge address, trusting the cluster's CA.
fn kubeconfig(ca: &Path, token: &str) -> String {
    format!(
        "# Written by `cargo xtask cluster up`; valid while this cluster runs.\n\
         apiVersion: v1\nkind: Config\n\
         clusters:\n- name: {CONTEXT}\n  cluster:\n    server: https://{NODE_IP}:{APISERVER_PORT}\n    \
         certificate-authority: {ca}\n\
         users:\n- name: {CONTEXT}\n  user:\n    token: {token}\n\
         contexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n\
         current-context: {CONTEXT}\n",
        ca = ca.display()
    )
}

/// containerd: everything under the state directory (root, state, sockets, runc's state,
/// network namespaces), the CRI plugin with runc from Debian, the pinned sandbox image and
/// the CNI configuration of [`cni_conflist`].
pub fn containerd_toml(layout: &Layout, sandbox_image: &str) -> String {
    let d = layout.containerd_dir();
    let d = d.display();
    let conf_dir = layout.cni_conf_dir();
    format!(
        r#"# Written by `cargo xtask cluster up`.
version = 3
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

# No NRI socket under /var/run: nothing here plugs into it.
[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  # Images come only from `ctr images import`; the sandbox image is never pulled.
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{sandbox_image}"
  # Every registry is this machine's closed port (see `registry_hosts`): an image that
  # was not imported fails at once, and no name is looked up off this machine.
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{d}/registry"

[plugins."io.containerd.cri.v1.runtime"]
  # Nothing on this machine may lower its oom_score_adj, which the kubelet asks for every
  # sandbox; clamped, runc starts them.
  restrict_oom_score_adj = true
  # Network namespaces under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{conf_dir}"
    max_conf_num = 1
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "{d}/runc"
"#,
        sock = layout.containerd_socket().display(),
        conf_dir = conf_dir.display(),
    )
}

/// `hosts.toml` for every registry (containerd's `_default`): the only host is a closed
/// port on loopback (the discard port, where nothing listens here), so a pull of a missing
/// image fails at once instead of resolving a registry's name in the host's DNS.
pub const REGISTRY_HOSTS: &str =
    "# Written by `cargo xtask cluster up`: images are imported, never pulled.
server = \"http://127.0.0.1:9\"
[host.\"http://127.0.0.1:9\"]
  capabilities = [\"pull\", \"resolve\"]
";

/// The pod network: Debian's CNI bridge plugin on [`BRIDGE`] (which `up` creates with the
/// node address), addresses from host-local in [`NODE_POD_CIDR`], no masquerading (pod
/// traffic never leaves this machine), hairpin so a pod reaches itself through a Service.
pub fn cni_conflist(layout: &Layout) -> String {
    format!(
        r#"{{
  "cniVersion": "1.0.0",
  "name": "kafka-cqrs-local",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {{
        "type": "host-local",
        "dataDir": "{ipam}",
        "ranges": [[{{"subnet": "{NODE_POD_CIDR}", "gateway": "{NODE_IP}", "rangeStart": "10.244.0.10"}}]],
        "routes": [{{"dst": "0.0.0.0/0"}}]
      }}
    }},
    {{"type": "portmap", "capabilities": {{"portMappings": true}}}},
    {{"type": "loopback"}}
  ]
}}
"#,
        ipam = layout.dir.join("cni/ipam").display()
    )
}

/// The kubelet: cgroup v1 allowed, cgroupfs, containerd's socket, webhook authentication
/// and authorization against the apiserver, the apiserver's client certificate trusted,
/// the cluster DNS, and nothing that changes the node's limits or evicts.
pub fn kubelet_yaml(layout: &Layout) -> String {
    format!(
        r#"# Written by `cargo xtask cluster up`.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (hybrid) and no systemd as PID 1.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{sock}
address: {NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: Webhook}}
clusterDNS: [{DNS_IP}]
clusterDomain: {CLUSTER_DOMAIN}
resolvConf: /etc/resolv.conf
podLogsDir: {logs}
# Nothing here may lower an oom_score_adj.
oomScoreAdj: 0
failSwapOn: false
cgroupsPerQOS: true
enforceNodeAllocatable: []
evictionHard: {{}}
imageGCHighThresholdPercent: 100
localStorageCapacityIsolation: false
serializeImagePulls: false
rotateCertificates: false
maxPods: 60
"#,
        sock = layout.containerd_socket().display(),
        ca = layout.pki().join("ca.crt").display(),
        logs = layout.dir.join("pod-logs").display(),
    )
}

/// kube-proxy in iptables mode, touching no sysctl of the host's (conntrack limits and
/// timeouts as they are, no localhost node ports).
pub fn kube_proxy_yaml(layout: &Layout) -> String {
    format!(
        r#"# Written by `cargo xtask cluster up`.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {kubeconfig}
hostnameOverride: {NODE}
bindAddress: {NODE_IP}
clusterCIDR: {POD_CIDR}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["{NODE_IP}/32"]
oomScoreAdj: 0
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
"#,
        kubeconfig = layout.component_kubeconfig("kube-proxy").display(),
    )
}

/// CoreDNS in kube-system: the `kubernetes` plugin for the cluster's zone and nothing
/// else (no `forward`: names outside the cluster fail rather than leave this machine),
/// on port 1053 so that it runs as a non-root user without capabilities; the Service
/// `kube-dns` at [`DNS_IP`] maps port 53 to it.
pub fn coredns_manifests(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- kind: ServiceAccount
  name: coredns
  namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: |
    .:1053 {{
        errors
        health :8080
        ready :8181
        kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }}
        cache 30
    }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {{k8s-app: kube-dns}}
spec:
  replicas: 1
  selector:
    matchLabels: {{k8s-app: kube-dns}}
  template:
    metadata:
      labels: {{k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {{type: RuntimeDefault}}
      containers:
      - name: coredns
        image: {image}
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {{name: dns, containerPort: 1053, protocol: UDP}}
        - {{name: dns-tcp, containerPort: 1053, protocol: TCP}}
        resources:
          requests: {{cpu: 50m, memory: 32Mi}}
          limits: {{memory: 128Mi}}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {{drop: [ALL]}}
        livenessProbe:
          httpGet: {{path: /health, port: 8080}}
          periodSeconds: 10
        readinessProbe:
          httpGet: {{path: /ready, port: 8181}}
          periodSeconds: 2
        volumeMounts:
        - {{name: config, mountPath: /etc/coredns, readOnly: true}}
      volumes:
      - name: config
        configMap: {{name: coredns}}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {{k8s-app: kube-dns}}
spec:
  clusterIP: {DNS_IP}
  selector: {{k8s-app: kube-dns}}
  ports:
  - {{name: dns, port: 53, targetPort: 1053, protocol: UDP}}
  - {{name: dns-tcp, port: 53, targetPort: 1053, protocol: TCP}}
"#
    )
}
