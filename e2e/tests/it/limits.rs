//! The gateway's limit on streams per client address: one address cannot take every
//! connection of the gateway, and what it is refused is a 429 (ingress-nginx answers 503).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Opens a stream over a raw connection (thousands of them: no HTTP client each) and
/// returns the connection with the status the gateway answered.
async fn open_stream(host: &str, address: &str, path: &str) -> (TcpStream, u16) {
    let mut socket = TcpStream::connect(address)
        .await
        .expect("the gateway accepts");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        socket.read_exact(&mut byte).await.expect("a status line");
        line.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&line)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {line:?}"));
    (socket, status)
}

#[tokio::test]
async fn one_address_holds_at_most_its_streams() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let url = reqwest::Url::parse(&base).unwrap();
    assert_eq!(
        url.scheme(),
        "http",
        "this test speaks plain HTTP to the gateway: point {} at its http:// address",
        e2e::GATEWAY_VARIABLE
    );
    let host = url.host_str().unwrap().to_owned();
    let address = format!("{host}:{}", url.port_or_known_default().unwrap());
    let path = format!("{}/notifier/documents", url.path().trim_end_matches('/'));
    let limit = platform::gateway::STREAMS_PER_CLIENT as usize;

    // Other tests of this run may hold a few streams from this address too, so count
    // how many open before the first refusal, up to a little past the limit.
    let mut open = Vec::with_capacity(limit);
    let refused = loop {
        let (socket, status) = open_stream(&host, &address, &path).await;
        if status != 200 {
            break status;
        }
        open.push(socket);
        assert!(
            open.len() <= limit,
            "{} streams open from one address, over the limit of {limit}",
            open.len()
        );
    };
    assert!(
        refused == 429 || refused == 503,
        "stream {} answered {refused}",
        open.len() + 1
    );
    assert!(
        open.len() + 20 >= limit,
        "refused after only {} streams (limit {limit})",
        open.len()
    );
    println!(
        "one address held {} streams through the gateway, then {refused}",
        open.len()
    );

    // Closing them frees the address's share again.
    drop(open);
    testkit::eventually(
        "a stream to be welcome again",
        Duration::from_secs(30),
        || async {
            let (_socket, status) = open_stream(&host, &address, &path).await;
            (status == 200).then_some(())
        },
    )
    .await;
}
