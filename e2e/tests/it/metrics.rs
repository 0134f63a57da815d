//! Every service's `/metrics` carries its families of the contract, with their label
//! keys, after some traffic: the producer, reader and notifier through the gateway, the
//! persister (which the gateway does not route) on its own port.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use telemetry::names;
use testkit::sse::SseClient;

const DEADLINE: Duration = Duration::from_secs(30);

/// Family name to its label keys (without `le`), from the Prometheus text format.
fn families(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut families: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, _) = line.rsplit_once(' ').unwrap_or((line, ""));
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        let keys = families.entry(name.to_owned()).or_default();
        for pair in labels
            .trim_end_matches('}')
            .split(',')
            .filter(|p| !p.is_empty())
        {
            if let Some((key, _)) = pair.split_once('=')
                && key != "le"
            {
                keys.insert(key.to_owned());
            }
        }
    }
    families
}

/// The families of the contract that `url` serves, once they all appeared.
async fn contract_families(
    client: &reqwest::Client,
    url: &str,
    expected: &[&str],
) -> BTreeMap<String, BTreeSet<String>> {
    testkit::eventually(&format!("{expected:?} at {url}"), DEADLINE, || async {
        let response = client.get(url).send().await.ok()?;
        let text = response.text().await.ok()?;
        let all = families(&text);
        expected.iter().all(|f| all.contains_key(*f)).then(|| {
            all.into_iter()
                .filter(|(f, _)| expected.contains(&f.as_str()))
                .collect()
        })
    })
    .await
}

#[tokio::test]
async fn every_service_serves_its_contract_families() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    if platform::SERVICES
        .iter()
        .any(|s| e2e::service_url(s).is_none())
    {
        return;
    }

    // Traffic that touches every family: a stream, a create, a read, a delete.
    let mut stream = SseClient::connect(&format!("{base}/notifier/documents"), None).await;
    stream.next_frame(DEADLINE).await.expect("opening frame");
    let api = testkit::Api::new(&format!("{base}/producer"), &format!("{base}/reader"));
    let id = api.create(r#"{"author":"metrics"}"#).await;
    stream.next_event(DEADLINE).await;
    testkit::eventually("the document", DEADLINE, || api.read_document(id)).await;
    api.delete(id).await;

    // Metrics are not routed through the gateway: Prometheus reaches each service directly.
    let metrics = |service: &platform::Service| {
        let direct = e2e::service_url(service).expect("checked above");
        format!("{direct}{}", service.metrics_path)
    };
    let services = [
        (
            "producer",
            metrics(&platform::PRODUCER),
            vec![
                names::HTTP_SERVER_REQUEST_DURATION,
                names::KAFKA_PRODUCE_DURATION,
            ],
        ),
        (
            "reader",
            metrics(&platform::READER),
            vec![
                names::HTTP_SERVER_REQUEST_DURATION,
                names::CASSANDRA_QUERY_DURATION,
            ],
        ),
        (
            "notifier",
            metrics(&platform::NOTIFIER),
            vec![
                names::HTTP_SERVER_REQUEST_DURATION,
                names::KAFKA_MESSAGES_CONSUMED,
                names::KAFKA_CONSUMER_LAG,
                names::DOCUMENTS_PIPELINE_LATENCY,
                names::SSE_CLIENTS,
                names::SSE_EVENTS_SENT,
            ],
        ),
        (
            "persister",
            metrics(&platform::PERSISTER),
            vec![
                names::HTTP_SERVER_REQUEST_DURATION,
                names::KAFKA_MESSAGES_CONSUMED,
                names::KAFKA_CONSUMER_LAG,
                names::CASSANDRA_QUERY_DURATION,
                names::DOCUMENTS_PIPELINE_LATENCY,
                names::DLQ_MESSAGES,
                names::DOCUMENTS_DUPLICATES_SKIPPED,
                names::PERSISTER_STUCK_SECONDS,
            ],
        ),
    ];
    let mut report = String::new();
    for (service, url, expected) in services {
        let found = contract_families(&client, &url, &expected).await;
        report.push_str(&format!("{service}:\n"));
        for (family, keys) in found {
            let keys: Vec<String> = keys.into_iter().collect();
            report.push_str(&format!("  {family} {{{}}}\n", keys.join(", ")));
        }
    }
    insta::assert_snapshot!(report);
}
