//! A static file server for the browser GUI's container image: the Vite build output
//! under `/gui/`, plus `/healthz` and `/readyz` like every other service.
//!
//! Locally nginx serves `services/gui/dist` itself; in a cluster the GUI has its own
//! image (`FROM scratch`, so no nginx), and this is the whole program in it.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{Redirect, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

use platform::gateway::{GUI_HEADERS, GUI_PORT, GUI_PREFIX};

/// The server's settings, from flags or the environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gui-server", about = "Serves the built GUI under /gui/")]
pub struct Config {
    /// Address to listen on; 0.0.0.0 serves every interface (as a container must; the
    /// image sets it).
    #[arg(long = "http-host", env = "HTTP_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on.
    #[arg(long = "http-port", env = "HTTP_PORT", default_value_t = GUI_PORT)]
    pub port: u16,
    /// The directory of the built GUI (`services/gui/dist`; `/srv/gui` in the image).
    #[arg(long = "gui-dir", env = "GUI_DIR", default_value = "/srv/gui")]
    pub dir: PathBuf,
}

/// Adds the headers a page needs (`platform::gateway::GUI_HEADERS`, the same the local
/// gateway adds) to each answer with the GUI's files.
async fn page_headers(mut response: Response) -> Response {
    for (name, value) in GUI_HEADERS {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// The routes: the files under the GUI prefix, a redirect from the bare prefix (the
/// GUI's asset URLs are relative, so the trailing slash matters), and the probes.
pub fn router(dir: &Path) -> Router {
    let index = dir.join("index.html");
    let slash = format!("{GUI_PREFIX}/");
    Router::new()
        .route(
            GUI_PREFIX,
            get(move || {
                let to = slash.clone();
                async move { Redirect::permanent(&to) }
            }),
        )
        .merge(
            Router::new()
                .nest_service(&format!("{GUI_PREFIX}/"), ServeDir::new(dir))
                .layer(axum::middleware::map_response(page_headers)),
        )
        .route("/healthz", get(|| async { "ok" }))
        // Ready once there is something to serve: an image built without the GUI's
        // files must not receive traffic.
        .route(
            "/readyz",
            get(move || {
                let index = index.clone();
                async move {
                    if tokio::fs::metadata(&index).await.is_ok() {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "no index.html to serve")
                    }
                }
            }),
        )
}
