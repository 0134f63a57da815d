//! The local gateway's nginx configuration, generated from the table of services in
//! `libs/platform`: one upstream and one prefix-stripping location per public route, the
//! streaming route unbuffered. `cargo xtask up` fills in the `@...@` placeholders.

use std::fmt::Write as _;

use events::{Problem, ProblemKind};
use platform::{SERVICES, gateway};

use super::HEADER_NOTE;

/// The text of `deployment/local/nginx/nginx.conf`.
pub fn nginx_conf() -> String {
    let mut upstreams = String::new();
    let mut locations = String::new();
    for service in SERVICES.iter().rev() {
        let Some(route) = service.route else { continue };
        let _ = writeln!(
            upstreams,
            "    upstream {name} {{ server 127.0.0.1:{port}; keepalive 16; }}",
            name = service.name,
            port = service.port
        );
        let _ = writeln!(locations);
        if route.streaming {
            let _ = writeln!(
                locations,
                "        # Server-Sent Events: no buffering, no gzip, and streams may stay open for hours."
            );
        }
        let _ = writeln!(locations, "        location {}/ {{", route.prefix);
        let _ = writeln!(
            locations,
            "            proxy_pass http://{}/;",
            service.name
        );
        if route.streaming {
            let _ = writeln!(
                locations,
                "            limit_conn streams_per_client {};",
                gateway::STREAMS_PER_CLIENT
            );
        }
        if route.streaming {
            locations.push_str(
                "            proxy_buffering off;\n            proxy_cache off;\n            \
                 gzip off;\n            proxy_read_timeout 24h;\n            proxy_send_timeout 24h;\n",
            );
        }
        let _ = writeln!(locations, "        }}");
    }
    let prefixes: Vec<&str> = SERVICES
        .iter()
        .filter_map(|s| s.route.map(|r| r.prefix.trim_start_matches('/')))
        .collect();
    let internal = platform::internal_paths();
    let not_public = problem(
        ProblemKind::NotFound,
        "metrics and readiness are not public; Prometheus and the probes reach each service directly",
    );
    let too_large = problem(
        ProblemKind::PayloadTooLarge,
        &format!(
            "the gateway passes bodies of at most {} KiB; a command is at most {} KiB",
            gateway::MAX_BODY_KIB,
            events::MAX_COMMAND_BYTES / 1024
        ),
    );
    let too_many = problem(
        ProblemKind::TooManyRequests,
        &format!(
            "this address holds {} streams through the gateway already; close one first",
            gateway::STREAMS_PER_CLIENT
        ),
    );
    let not_allowed = problem(
        ProblemKind::MethodNotAllowed,
        "the gateway does not pass this method on; the Allow header lists what this path answers",
    );
    format!(
        r#"# The local gateway on port {port}: the same routes as the Kubernetes ingress, each prefix
# stripped before the request reaches its service. `cargo xtask up` fills in the @...@
# placeholders (paths under target/system/gateway) and runs
#   nginx -p target/system/gateway -c target/system/gateway/nginx.conf
# {HEADER_NOTE}

worker_processes 1;
# A descriptor for every connection: a stream takes two (the client's, the notifier's).
worker_rlimit_nofile {descriptors};
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/logs/error.log warn;
daemon off;

events {{
    worker_connections {connections};
}}

http {{
    include @MIME_TYPES@;
    default_type application/octet-stream;
    access_log @PREFIX@/logs/access.log;

    client_body_temp_path @PREFIX@/tmp/client_body;
    proxy_temp_path @PREFIX@/tmp/proxy;
    fastcgi_temp_path @PREFIX@/tmp/fastcgi;
    uwsgi_temp_path @PREFIX@/tmp/uwsgi;
    scgi_temp_path @PREFIX@/tmp/scgi;

    # Commands are at most 64 KiB (the producer answers 413 beyond): keep them in memory,
    # let a slightly larger body reach the producer so that the 413 is its own, and stop
    # anything larger here.
    client_max_body_size {body_kib}k;
    client_body_buffer_size {body_kib}k;

    # One client address holds at most STREAMS_PER_CLIENT streams (the notifier's route).
    limit_conn_zone $binary_remote_addr zone=streams_per_client:1m;
    limit_conn_status 429;

    # Keep-alive connections to the services.
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Prefix $gateway_prefix;

    map $uri $gateway_prefix {{
        ~^(/[^/]+)/ $1;
        default "";
    }}

    # The methods each public path answers, for the Allow header of the 405 that nginx
    # itself sends (for TRACE, which it never passes on): a path of no route has none.
    map $uri $allowed_methods {{
{allowed}        default "";
    }}

{upstreams}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;

        location = / {{
            return 302 {gui}/;
        }}

        # The gateway's own refusals are problem bodies, as the services' are.
        error_page 413 @body_too_large;
        error_page 429 @too_many_streams;
        error_page 405 @method_not_allowed;
        location @body_too_large {{
            default_type application/problem+json;
            return 413 '{too_large}';
        }}
        location @too_many_streams {{
            default_type application/problem+json;
            return 429 '{too_many}';
        }}
        location @method_not_allowed {{
            default_type application/problem+json;
            add_header Allow $allowed_methods always;
            return 405 '{not_allowed}';
        }}

        # Metrics and readiness are for Prometheus and the probes, which reach each service
        # directly: not routed (a regex location wins over the prefixes below).
        location ~ ^/({prefixes})/({internal})/?$ {{
            default_type application/problem+json;
            return 404 '{not_public}';
        }}
{locations}
        location {gui}/ {{
            alias @GUI_DIR@/;
            index index.html;
{gui_headers}        }}
    }}
}}
"#,
        port = gateway::LOCAL_PORT,
        gui = gateway::GUI_PREFIX,
        gui_headers = gateway::GUI_HEADERS
            .iter()
            .map(|(name, value)| format!("            add_header {name} \"{value}\" always;\n"))
            .collect::<String>(),
        connections = gateway::LOCAL_WORKER_CONNECTIONS,
        descriptors = 2 * gateway::LOCAL_WORKER_CONNECTIONS,
        body_kib = gateway::MAX_BODY_KIB,
        allowed = allowed_methods(),
        prefixes = prefixes.join("|"),
        internal = internal.join("|"),
    )
}

/// The lines of the `$allowed_methods` map: one regex per public path of each routed
/// service (its API and its liveness probe), with or without a trailing slash, naming the
/// methods it answers as the service's own 405 does (HEAD wherever GET is).
fn allowed_methods() -> String {
    let mut lines = String::new();
    for service in SERVICES.iter().rev() {
        let Some(route) = service.route else { continue };
        let mut by_path: Vec<(&str, Vec<&str>)> = Vec::new();
        let operations = service
            .api
            .iter()
            .filter_map(|operation| operation.split_once(' '))
            .chain([("GET", service.liveness_path)]);
        for (method, path) in operations {
            match by_path.iter_mut().find(|(p, _)| *p == path) {
                Some((_, methods)) => methods.push(method),
                None => by_path.push((path, vec![method])),
            }
        }
        for (path, mut methods) in by_path {
            if methods.contains(&"GET") {
                methods.push("HEAD");
            }
            let pattern: Vec<String> = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "[^/]+".to_owned()
                    } else {
                        segment.replace('.', "\\.")
                    }
                })
                .collect();
            let _ = writeln!(
                lines,
                "        ~^{}{}/?$ \"{}\";",
                route.prefix,
                pattern.join("/"),
                methods.join(", ")
            );
        }
    }
    lines
}

/// A problem body as the services write it, for nginx's single-quoted `return` text.
fn problem(kind: ProblemKind, detail: &str) -> String {
    let json = String::from_utf8(Problem::new(kind, detail).to_json()).expect("JSON is UTF-8");
    assert!(!json.contains('\''), "nginx quotes it with '");
    json
}
