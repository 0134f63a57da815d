//! Methods a path does not answer, through the gateway: found by fuzzing (schemathesis's
//! unsupported-method check). nginx refuses TRACE itself, before any route; its 405 must
//! still say what the path answers, as the services' own 405 does.

use events::mime;
use reqwest::{Method, StatusCode};
use uuid::Uuid;

/// The `Allow` methods of a 405, sorted, whatever the separator.
fn allowed(response: &reqwest::Response) -> Vec<String> {
    let value = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let mut methods: Vec<String> = value
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    methods.sort();
    methods
}

#[tokio::test]
async fn trace_is_refused_with_the_methods_the_path_answers() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let id = Uuid::new_v4();
    for service in platform::SERVICES {
        let Some(route) = service.route else { continue };
        for operation in service.api {
            let (_, path) = operation.split_once(' ').unwrap();
            let path = path.replace("{id}", &id.to_string());
            // The service's own answer to a method it does not serve on this path.
            let Some(direct) = e2e::service_url(service) else {
                return;
            };
            let direct = client
                .request(Method::TRACE, format!("{direct}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(direct.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
            let expected = allowed(&direct);
            assert!(!expected.is_empty(), "{} {path}: no Allow", service.name);
            for slash in ["", "/"] {
                let url = format!("{base}{}{path}{slash}", route.prefix);
                let response = client.request(Method::TRACE, &url).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{url}");
                assert_eq!(response.headers()["content-type"], mime::PROBLEM, "{url}");
                assert_eq!(allowed(&response), expected, "TRACE {url}");
                let problem: events::Problem = response.json().await.unwrap();
                assert_eq!(problem.status, 405, "{url}");
            }
        }
    }
}
