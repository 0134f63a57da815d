//! The local gateway's nginx configuration, generated from the table of services in
//! `libs/platform`: one upstream and one prefix-stripping location per public route, the
//! streaming route unbuffered, and the read-only trace look-ups on Jaeger's query API. `cargo xtask up` fills in the `@...@` placeholders.

use std::fmt::Write as _;

use events::{Problem, ProblemKind};
use platform::{SERVICES, gateway};

use super::HEADER_NOTE;

/// The `server` lines of `service`'s upstream for `replicas` of it on this machine; `cargo
/// xtask up --replicas N` puts the lines for N in place of those for one.
pub fn upstream_servers(service: &platform::Service, replicas: u16) -> String {
    (0..replicas.max(1))
        .map(|k| format!("server 127.0.0.1:{};", service.replica_port(k)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of `deployment/local/nginx/nginx.conf`.
pub fn nginx_conf() -> String {
    let mut upstreams = String::new();
    let mut locations = String::new();
    for service in SERVICES.iter().rev() {
        let Some(route) = service.route else { continue };
        let _ = writeln!(
            upstreams,
            "    upstream {name} {{ {servers} keepalive 16; }}",
            name = service.name,
            servers = upstream_servers(service, 1)
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
                "            limit_conn streams_per_client {};\n            limit_conn streams_total {};",
                gateway::STREAMS_PER_CLIENT,
                gateway::LOCAL_STREAMS_TOTAL
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
    traces_route(&mut upstreams, &mut locations);
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

    # One client address holds at most STREAMS_PER_CLIENT streams (the notifier's route),
    # and all addresses together at most LOCAL_STREAMS_TOTAL, leaving connections free
    # for the other routes.
    limit_conn_zone $binary_remote_addr zone=streams_per_client:1m;
    limit_conn_zone $server_name zone=streams_total:1m;
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

/// The read-only trace look-ups: one location for `GET /traces/api/traces/{id}` to
/// Jaeger's query port (prefix stripped), one that answers 404 for everything else under
/// the prefix, and a problem body in place of nginx's own page when Jaeger does not answer.
fn traces_route(upstreams: &mut String, locations: &mut String) {
    let prefix = gateway::TRACES_PREFIX;
    let _ = writeln!(
        upstreams,
        "    upstream jaeger {{ server 127.0.0.1:{}; keepalive 4; }}",
        platform::observability::JAEGER_QUERY_PORT
    );
    let methods = gateway::TRACES_METHODS.join("|");
    let allow = gateway::TRACES_METHODS.join(", ");
    let wrong_method = problem(
        ProblemKind::MethodNotAllowed,
        &format!("trace look-ups are read-only: {allow}"),
    );
    let not_routed = problem(
        ProblemKind::NotFound,
        &format!("only trace look-ups are routed here: {prefix}/api/traces/<32 hex digits>"),
    );
    let unavailable = problem(
        ProblemKind::Unavailable,
        "Jaeger does not answer; traces cannot be looked up right now",
    );
    let _ = write!(
        locations,
        r#"
        # Read-only trace look-ups on Jaeger's query API: one trace by its id, nothing else
        # (quoted: the regex has braces).
        location ~ "^{prefix}{lookup}$" {{
            # Only the refusal below lacks a type of its own (Jaeger's answers carry theirs).
            default_type application/problem+json;
            if ($request_method !~ ^({methods})$) {{
                add_header Allow "{allow}" always;
                return 405 '{wrong_method}';
            }}
            rewrite ^{prefix}(/.*)$ $1 break;
            proxy_pass http://jaeger;
            error_page 502 503 504 = @jaeger_unavailable;
        }}
        location @jaeger_unavailable {{
            default_type application/problem+json;
            add_header Retry-After 5 always;
            return 503 '{unavailable}';
        }}
        location {prefix}/ {{
            default_type application/problem+json;
            return 404 '{not_routed}';
        }}
"#,
        lookup = gateway::TRACES_LOOKUP,
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The trace route reaches Jaeger's query port with the one look-up path, read-only,
    /// and the rest of its prefix is refused.
    #[test]
    fn the_trace_route_is_the_lookup_only_and_read_only() {
        let conf = nginx_conf();
        let port = platform::observability::JAEGER_QUERY_PORT;
        assert!(conf.contains(&format!("upstream jaeger {{ server 127.0.0.1:{port};")));
        let lookup = format!(
            "location ~ \"^{}{}$\" {{",
            gateway::TRACES_PREFIX,
            gateway::TRACES_LOOKUP
        );
        let block = conf.split(&lookup).nth(1).expect("a look-up location");
        let block = &block[..block.find("\n        }").unwrap()];
        assert!(block.contains("proxy_pass http://jaeger;"));
        assert!(block.contains("return 405"));
        assert!(block.contains("if ($request_method !~ ^(GET|HEAD)$)"));
        let rest = format!("location {}/ {{", gateway::TRACES_PREFIX);
        let rest = conf.split(&rest).nth(1).expect("a refusal of the rest");
        assert!(rest[..rest.find('}').unwrap()].contains("return 404"));
    }
}
