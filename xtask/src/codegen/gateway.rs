//! The local gateway's nginx configuration, generated from the table of services in
//! `libs/platform`: one upstream and one prefix-stripping location per public route, the
//! streaming route unbuffered. `cargo xtask up` fills in the `@...@` placeholders.

use std::fmt::Write as _;

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
            locations.push_str(
                "            proxy_buffering off;\n            proxy_cache off;\n            \
                 gzip off;\n            proxy_read_timeout 24h;\n            proxy_send_timeout 24h;\n",
            );
        }
        let _ = writeln!(locations, "        }}");
    }
    format!(
        r#"# The local gateway on port {port}: the same routes as the Kubernetes ingress, each prefix
# stripped before the request reaches its service. `cargo xtask up` fills in the @...@
# placeholders (paths under target/system/gateway) and runs
#   nginx -p target/system/gateway -c target/system/gateway/nginx.conf
# {HEADER_NOTE}

worker_processes 1;
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/logs/error.log warn;
daemon off;

events {{
    worker_connections 4096;
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
    # and let a slightly larger body reach the producer so that the 413 is its problem body.
    client_max_body_size 1m;
    client_body_buffer_size 1m;

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

{upstreams}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;

        location = / {{
            return 302 {gui}/;
        }}
{locations}
        location {gui}/ {{
            alias @GUI_DIR@/;
            index index.html;
        }}
    }}
}}
"#,
        port = gateway::LOCAL_PORT,
        gui = gateway::GUI_PREFIX,
    )
}
