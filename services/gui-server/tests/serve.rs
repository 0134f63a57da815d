//! The GUI server on a real socket: files under /gui/, the redirect from /gui, and
//! readiness that follows whether there is a GUI to serve.

use std::path::PathBuf;

use reqwest::StatusCode;
use reqwest::redirect::Policy;

/// Serves `dir` on a free loopback port and returns the base URL.
async fn serve(dir: PathBuf) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, gui_server::router(&dir)).await });
    format!("http://{address}")
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gui-server-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    dir
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_the_built_files_under_the_gui_prefix() {
    let dir = fresh_dir("files");
    std::fs::write(dir.join("index.html"), "<title>kafka-cqrs</title>").unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log(1)").unwrap();
    let base = serve(dir).await;
    let http = client();

    let index = http.get(format!("{base}/gui/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    for (name, value) in platform::gateway::GUI_HEADERS {
        assert_eq!(index.headers()[name], value, "{name}");
    }
    assert_eq!(index.text().await.unwrap(), "<title>kafka-cqrs</title>");

    let script = http
        .get(format!("{base}/gui/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    let kind = script.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.contains("javascript"), "content-type {kind}");

    let bare = http.get(format!("{base}/gui")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()["location"], "/gui/");

    let missing = http
        .get(format!("{base}/gui/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let outside = http.get(format!("{base}/index.html")).send().await.unwrap();
    assert_eq!(outside.status(), StatusCode::NOT_FOUND);

    for probe in ["/healthz", "/readyz"] {
        let answer = http.get(format!("{base}{probe}")).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{probe}");
    }
}

#[tokio::test]
async fn is_not_ready_without_a_gui_to_serve() {
    let base = serve(fresh_dir("empty")).await;
    let http = client();
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let alive = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
}
