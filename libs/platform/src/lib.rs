//! The platform's topology, written once: every service's name, port, probes and gateway
//! route, the gateway's and the observability backends' ports, and the defaults every
//! binary falls back to.
//!
//! The services take their default port from here (clap), `cargo xtask` starts them on
//! these ports, and `cargo xtask codegen` generates from this table the local gateway's
//! routes (`deployment/local/nginx/nginx.conf`), Prometheus's scrape jobs
//! (`observability/prometheus/prometheus.yml`) and the Kubernetes Services and Ingress.
//! A staleness test fails when a generated file no longer matches this table.

/// What a service does in the CQRS split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts commands and publishes events (the write side's front door).
    Command,
    /// Folds events into the read model (the write side's back).
    Projection,
    /// Answers queries from the read model.
    Query,
    /// Pushes events to browsers as Server-Sent Events.
    Push,
}

/// How the gateway forwards a service's public routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The path prefix at the gateway, stripped before the request reaches the service.
    pub prefix: &'static str,
    /// Server-Sent Events: no response buffering, and streams may stay open for hours.
    pub streaming: bool,
}

/// One service of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The Cargo package, binary, image, Prometheus job and Kubernetes name.
    pub name: &'static str,
    pub role: Role,
    /// The port it listens on (ARCHITECTURE.md, "The contract"), locally and in a cluster.
    pub port: u16,
    /// Prometheus text format.
    pub metrics_path: &'static str,
    /// Liveness: the process serves HTTP.
    pub liveness_path: &'static str,
    /// Readiness: its Kafka and Cassandra connections work.
    pub readiness_path: &'static str,
    /// Its public route through the gateway; `None` for a service without public API.
    pub route: Option<Route>,
    /// The API paths it serves, with the gateway prefix stripped (for docs and checks).
    pub api: &'static [&'static str],
}

/// The most replicas of each service `cargo xtask up --replicas N` runs on one machine.
pub const MAX_LOCAL_REPLICAS: u16 = 3;

/// Replica `k` of a service listens this many ports above replica `k - 1` (locally; in a
/// cluster every pod has the service's own port).
pub const REPLICA_PORT_STEP: u16 = 100;

impl Service {
    /// The port of replica `replica` (0 is the first) on one machine.
    pub const fn replica_port(&self, replica: u16) -> u16 {
        self.port + replica * REPLICA_PORT_STEP
    }
}

const METRICS_PATH: &str = "/metrics";
const LIVENESS_PATH: &str = "/healthz";
const READINESS_PATH: &str = "/readyz";

pub const PRODUCER: Service = Service {
    name: "producer",
    role: Role::Command,
    port: 8083,
    metrics_path: METRICS_PATH,
    liveness_path: LIVENESS_PATH,
    readiness_path: READINESS_PATH,
    route: Some(Route {
        prefix: "/producer",
        streaming: false,
    }),
    api: &[
        "POST /documents",
        "PUT /documents",
        "DELETE /documents/{id}",
    ],
};

pub const READER: Service = Service {
    name: "reader",
    role: Role::Query,
    port: 8082,
    metrics_path: METRICS_PATH,
    liveness_path: LIVENESS_PATH,
    readiness_path: READINESS_PATH,
    route: Some(Route {
        prefix: "/reader",
        streaming: false,
    }),
    api: &["GET /documents/{id}"],
};

pub const NOTIFIER: Service = Service {
    name: "notifier",
    role: Role::Push,
    port: 8081,
    metrics_path: METRICS_PATH,
    liveness_path: LIVENESS_PATH,
    readiness_path: READINESS_PATH,
    route: Some(Route {
        prefix: "/notifier",
        streaming: true,
    }),
    api: &["GET /documents"],
};

pub const PERSISTER: Service = Service {
    name: "persister",
    role: Role::Projection,
    port: 8084,
    metrics_path: METRICS_PATH,
    liveness_path: LIVENESS_PATH,
    readiness_path: READINESS_PATH,
    route: None,
    api: &[],
};

/// Every service, in start order: the consumers first, then the query and command sides
/// (so that nothing is published before someone listens).
pub const SERVICES: [&Service; 4] = [&PERSISTER, &NOTIFIER, &READER, &PRODUCER];

/// The paths the services serve for machines, not for the public (metrics, readiness),
/// without their leading slash, sorted: gateways do not route them, and Prometheus and
/// the probes reach each service directly.
pub fn internal_paths() -> Vec<&'static str> {
    let mut paths: Vec<&str> = SERVICES
        .iter()
        .flat_map(|s| [s.metrics_path, s.readiness_path])
        .map(|p| p.trim_start_matches('/'))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths
}

/// Looks a service up by name.
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().copied().find(|s| s.name == name)
}

/// Where a launcher runs one replica of a service: what every launcher (the local
/// processes of `cargo xtask up`, its podman containers, the Kubernetes pods, the fault
/// harness) tells it through [`Service::environment`], so that a service's environment is
/// spelled once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch<'a> {
    /// The address it listens on: `127.0.0.1` on a shared machine, `0.0.0.0` in a pod.
    pub host: &'a str,
    /// The port it listens on.
    pub port: u16,
    /// Kafka's bootstrap servers, for a service that uses Kafka; `None`: its default.
    pub kafka: Option<&'a str>,
    /// Cassandra's contact points, for a service that uses Cassandra; `None`: its default.
    pub cassandra: Option<&'a str>,
    /// Where it exports its traces (OTLP over HTTP); `None`: no export.
    pub otlp: Option<&'a str>,
    /// `service.instance.id` in its traces, when several replicas share a service name.
    pub instance: Option<&'a str>,
}

impl Service {
    /// The environment of one replica launched as `launch` says. The service's other
    /// settings keep their defaults (each binary's `--help`); a test of the Kubernetes
    /// manifests checks that every variable set here is one the service reads.
    pub fn environment(&self, launch: &Launch<'_>) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("HTTP_HOST", launch.host.to_owned()),
            ("HTTP_PORT", launch.port.to_string()),
        ];
        let kafka = matches!(self.role, Role::Command | Role::Projection | Role::Push);
        if let (true, Some(servers)) = (kafka, launch.kafka) {
            env.push(("KAFKA_BOOTSTRAP_SERVERS", servers.to_owned()));
        }
        let cassandra = matches!(self.role, Role::Projection | Role::Query);
        if let (true, Some(points)) = (cassandra, launch.cassandra) {
            env.push(("CASSANDRA_CONTACT_POINTS", points.to_owned()));
        }
        if let Some(otlp) = launch.otlp {
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.to_owned()));
            env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()));
            env.push(("OTEL_SERVICE_NAME", self.name.to_owned()));
        }
        if let Some(instance) = launch.instance {
            env.push((
                "OTEL_RESOURCE_ATTRIBUTES",
                format!("service.instance.id={instance}"),
            ));
        }
        env
    }
}

/// The gateway (nginx locally, ingress-nginx in Kubernetes).
pub mod gateway {
    /// The local gateway's port (`cargo xtask up`).
    pub const LOCAL_PORT: u16 = 8080;
    /// The local gateway's base URL (a test checks it names [`LOCAL_PORT`]).
    pub const LOCAL_URL: &str = "http://127.0.0.1:8080";
    /// The ingress's port in a cluster.
    pub const CLUSTER_PORT: u16 = 80;
    /// The gateway on this machine in front of the local cluster's Services (`cargo xtask
    /// deploy --context kafka-cqrs-local`), which has no ingress controller.
    pub const LOCAL_CLUSTER_PORT: u16 = 8090;
    /// Where the browser GUI is served.
    pub const GUI_PREFIX: &str = "/gui";
    /// The GUI's static files are served by this name in a cluster (its image and Service).
    pub const GUI_NAME: &str = "gui";
    /// The GUI's port in a cluster (a static file server in its own image).
    pub const GUI_PORT: u16 = 8085;
    /// The headers the GUI's page is served with, by the local gateway and by the GUI's
    /// own server in a cluster: scripts, styles and requests from its own origin only
    /// (the trace UI is only linked to, which no policy governs), never framed, no MIME
    /// sniffing, and no full URL leaked to other sites.
    pub const GUI_HEADERS: [(&str, &str); 4] = [
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; \
             form-action 'self'; frame-ancestors 'none'",
        ),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("X-Frame-Options", "DENY"),
    ];
    /// The largest request body the gateway passes on: the services' 64 KiB command limit
    /// with headroom, so that a body just over it still gets the producer's own 413.
    pub const MAX_BODY_KIB: u32 = 80;
    /// Streams one client address may hold open through the gateway, so that one client
    /// cannot take every connection of the gateway (the bench opens 1,000 from one address).
    pub const STREAMS_PER_CLIENT: u32 = 2000;
    /// Read-only trace look-ups: Jaeger's query API behind the gateway under this prefix
    /// (stripped), so that the GUI shows a trace the same way locally and in a cluster.
    pub const TRACES_PREFIX: &str = "/traces";
    /// The only paths routed under [`TRACES_PREFIX`] (a regex of the rest of the path):
    /// one trace by its 32-hex id, as an event's `header.traceId` names it. Jaeger's
    /// searches, services list and UI stay unrouted (404 like any other unrouted path).
    pub const TRACES_LOOKUP: &str = "/api/traces/[0-9a-f]{32}";
    /// The methods of the trace look-ups; any other answers 405.
    pub const TRACES_METHODS: [&str; 2] = ["GET", "HEAD"];
    /// The local gateway's connections per worker: every stream takes two (the client's
    /// and the one to the notifier), so this leaves room for other routes when one
    /// client holds its [`STREAMS_PER_CLIENT`].
    pub const LOCAL_WORKER_CONNECTIONS: u32 = 8192;
    /// Streams the local gateway holds in all, whatever the addresses they come from:
    /// each takes two of its connections, and a quarter of them stays free for the other
    /// routes, so that many clients together cannot take the gateway either.
    pub const LOCAL_STREAMS_TOTAL: u32 = LOCAL_WORKER_CONNECTIONS * 3 / 8;
}

/// Kafka: where it listens locally and the names of the contract.
pub mod kafka {
    /// Where a local broker listens (`cargo xtask infra up`).
    pub const BOOTSTRAP_SERVERS: &str = "127.0.0.1:9092";
    pub const PORT: u16 = 9092;
    /// The topic of document events; its record key is the document id.
    pub const DOCUMENTS_TOPIC: &str = "documents.t";
    /// Partitions of the documents topic: enough to show per-partition ordering and lag.
    pub const DOCUMENTS_TOPIC_PARTITIONS: i32 = 3;
    /// Records that a consumer could not handle, with the reason and origin in headers.
    pub const DLQ_TOPIC: &str = "documents.dlq.t";
    /// One partition keeps the dead letters in the order they were met.
    pub const DLQ_TOPIC_PARTITIONS: i32 = 1;
    /// Retention of the documents topic and of the dead letters: forever. The topic is the
    /// source of truth (replaying it rebuilds the read model), and a dead letter is a
    /// record nobody has dealt with yet.
    pub const RETENTION_MS: i64 = -1;
    /// Replicas of each topic on the one local broker; a cluster sets 3.
    pub const LOCAL_REPLICATION_FACTOR: i32 = 1;
    /// `min.insync.replicas` on the one local broker; a cluster sets 2 (with 3 replicas).
    pub const LOCAL_MIN_INSYNC_REPLICAS: i32 = 1;
    /// The persister's consumer group.
    pub const PERSISTER_GROUP: &str = "persister-group";
}

/// Cassandra: where it listens locally and the keyspace of the contract.
pub mod cassandra {
    pub const CONTACT_POINTS: &str = "127.0.0.1:9042";
    pub const PORT: u16 = 9042;
    pub const KEYSPACE: &str = "documents";
}

/// The observability backends' ports (`cargo xtask up`, and the cluster's).
pub mod observability {
    pub const PROMETHEUS_PORT: u16 = 9090;
    pub const GRAFANA_PORT: u16 = 3000;
    /// Jaeger's query API and UI; the gateway routes its trace look-ups
    /// ([`crate::gateway::TRACES_PREFIX`]) here.
    pub const JAEGER_QUERY_PORT: u16 = 16686;
    pub const OTLP_GRPC_PORT: u16 = 4317;
    pub const OTLP_HTTP_PORT: u16 = 4318;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_gives_each_service_the_servers_of_its_role() {
        let launch = Launch {
            host: "0.0.0.0",
            port: 9000,
            kafka: Some("kafka:9092"),
            cassandra: Some("cassandra:9042"),
            otlp: Some("http://jaeger:4318"),
            instance: None,
        };
        let keys = |service: &Service| -> Vec<&str> {
            service
                .environment(&launch)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        let telemetry = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_SERVICE_NAME",
        ];
        let expect = |servers: &[&'static str]| -> Vec<&'static str> {
            let mut all = vec!["HTTP_HOST", "HTTP_PORT"];
            all.extend(servers);
            all.extend(telemetry);
            all
        };
        assert_eq!(keys(&READER), expect(&["CASSANDRA_CONTACT_POINTS"]));
        assert_eq!(keys(&PRODUCER), expect(&["KAFKA_BOOTSTRAP_SERVERS"]));
        assert_eq!(keys(&NOTIFIER), expect(&["KAFKA_BOOTSTRAP_SERVERS"]));
        assert_eq!(
            keys(&PERSISTER),
            expect(&["KAFKA_BOOTSTRAP_SERVERS", "CASSANDRA_CONTACT_POINTS"])
        );
        let local = Launch {
            kafka: None,
            cassandra: None,
            otlp: None,
            instance: Some("reader-2"),
            ..launch
        };
        assert_eq!(
            READER.environment(&local),
            [
                ("HTTP_HOST", "0.0.0.0".to_owned()),
                ("HTTP_PORT", "9000".to_owned()),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "service.instance.id=reader-2".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn names_ports_and_prefixes_are_unique() {
        // Every replica's port too: `cargo xtask up --replicas N` runs them side by side.
        let mut ports: Vec<u16> = SERVICES
            .iter()
            .flat_map(|s| (0..MAX_LOCAL_REPLICAS).map(|k| s.replica_port(k)))
            .collect();
        ports.extend([
            gateway::LOCAL_PORT,
            gateway::LOCAL_CLUSTER_PORT,
            gateway::GUI_PORT,
            kafka::PORT,
            cassandra::PORT,
            observability::PROMETHEUS_PORT,
            observability::GRAFANA_PORT,
            observability::JAEGER_QUERY_PORT,
            observability::OTLP_GRPC_PORT,
            observability::OTLP_HTTP_PORT,
        ]);
        let count = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), count, "two parts share a port");

        let mut prefixes: Vec<&str> = SERVICES
            .iter()
            .filter_map(|s| s.route.map(|r| r.prefix))
            .chain([gateway::GUI_PREFIX, gateway::TRACES_PREFIX])
            .collect();
        let count = prefixes.len();
        prefixes.sort_unstable();
        prefixes.dedup();
        assert_eq!(prefixes.len(), count, "two routes share a prefix");
    }

    #[test]
    fn the_local_gateway_url_names_its_port() {
        assert_eq!(
            gateway::LOCAL_URL,
            format!("http://127.0.0.1:{}", gateway::LOCAL_PORT)
        );
    }

    #[test]
    fn every_service_is_found_by_its_name() {
        for s in SERVICES {
            assert_eq!(service(s.name), Some(s));
        }
        assert_eq!(service("gateway"), None);
    }
}
