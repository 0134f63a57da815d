//! The gateway's limits on streams: one client address cannot take every connection of
//! the gateway, nor can many addresses together (the local gateway), and what they are
//! refused is a 429 (ingress-nginx answers 503).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The tests count streams against limits the others' streams count towards too.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Opens a stream over a raw connection (thousands of them: no HTTP client each) and
/// returns the connection with the status the gateway answered. The streams never read:
/// each is narrowed to a document nobody writes (`documentId`), so that other tests'
/// events do not fill its queue and get it closed as a slow client meanwhile.
async fn open_stream(host: &str, address: &str, path: &str) -> (TcpStream, u16) {
    let socket = TcpStream::connect(address)
        .await
        .expect("the gateway accepts");
    request_stream(socket, host, path).await
}

/// [`open_stream`] from the local address `from`.
async fn open_stream_from(
    from: std::net::IpAddr,
    host: &str,
    address: std::net::SocketAddr,
    path: &str,
) -> (TcpStream, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("cannot bind to {from}: {e}"));
    let socket = socket.connect(address).await.expect("the gateway accepts");
    request_stream(socket, host, path).await
}

async fn request_stream(mut socket: TcpStream, host: &str, path: &str) -> (TcpStream, u16) {
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
    let _alone = ONE_AT_A_TIME.lock().await;
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
    let path = format!(
        "{}/notifier/documents?documentId={}",
        url.path().trim_end_matches('/'),
        uuid::Uuid::new_v4()
    );
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

/// Many addresses together (127.0.0.2 and up, all local on Linux) cannot take the local
/// gateway either: it holds `LOCAL_STREAMS_TOTAL` streams in all, then answers 429, and
/// the other routes still answer meanwhile. Needs a gateway on loopback.
#[tokio::test]
async fn all_addresses_together_hold_at_most_the_local_gateways_streams() {
    if e2e::local_only(
        "the cap on all addresses' streams together is the local nginx's \
         (gateway::LOCAL_STREAMS_TOTAL); a deployment's ingress sizes its own",
    ) {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    let url = reqwest::Url::parse(&base).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let Some(ip) = host
        .parse::<std::net::IpAddr>()
        .ok()
        .filter(std::net::IpAddr::is_loopback)
    else {
        println!(
            "not run: the gateway {base} is not on a loopback address (this limit is the local gateway's)"
        );
        return;
    };
    let address = std::net::SocketAddr::new(ip, url.port_or_known_default().unwrap());
    let path = format!(
        "{}/notifier/documents?documentId={}",
        url.path().trim_end_matches('/'),
        uuid::Uuid::new_v4()
    );
    let total = platform::gateway::LOCAL_STREAMS_TOTAL as usize;
    let per_address = platform::gateway::STREAMS_PER_CLIENT as usize / 2;

    let mut open = Vec::with_capacity(total);
    let mut sources = (2..=254_u8).map(|last| std::net::IpAddr::from([127, 0, 0, last]));
    let mut from = sources.next().unwrap();
    let refused = loop {
        // Well under the per-address limit, so that only the total can refuse.
        if open.len() % per_address == per_address - 1 {
            from = sources.next().expect("enough loopback addresses");
        }
        let (socket, status) = open_stream_from(from, &host, address, &path).await;
        if status != 200 {
            break status;
        }
        open.push(socket);
        assert!(
            open.len() <= total,
            "{} streams open through the gateway, over its total of {total}",
            open.len()
        );
    };
    assert_eq!(refused, 429, "stream {} answered {refused}", open.len() + 1);
    assert!(
        open.len() + 20 >= total,
        "refused after only {} streams (total {total})",
        open.len()
    );
    let other_route = client
        .get(format!("{base}/reader/healthz"))
        .send()
        .await
        .expect("the gateway answers other routes while the streams are held");
    assert_eq!(other_route.status(), 200);
    println!(
        "the gateway held {} streams from {} addresses, then {refused}; /reader/healthz still answered 200",
        open.len(),
        open.len().div_ceil(per_address)
    );
}

/// The notifier itself, reached directly as Prometheus and the probes reach it: it holds
/// its `SSE_MAX_CLIENTS` streams (10,000 by default), then answers 429 with a problem.
#[tokio::test]
async fn the_notifier_holds_its_streams_then_answers_429() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // One notifier replica, by its own address: a Service in front of several spreads the
    // streams across them, each with its own cap.
    let Some(base) =
        e2e::replica_urls(&platform::NOTIFIER).and_then(|urls| urls.into_iter().next())
    else {
        return;
    };
    let url = reqwest::Url::parse(&base).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let address = format!("{host}:{}", url.port_or_known_default().unwrap());
    let path = format!(
        "{}/documents?documentId={}",
        url.path().trim_end_matches('/'),
        uuid::Uuid::new_v4()
    );
    // Past the default cap, in case the notifier was started with a larger one.
    const AT_MOST: usize = 12_000;
    let began = std::time::Instant::now();
    let mut open = Vec::with_capacity(10_000);
    let refused = loop {
        let (socket, status) = open_stream(&host, &address, &path).await;
        if status != 200 {
            break status;
        }
        open.push(socket);
        assert!(
            open.len() < AT_MOST,
            "{AT_MOST} streams open and none refused: the notifier has no cap"
        );
    };
    assert_eq!(refused, 429, "stream {} answered {refused}", open.len() + 1);
    println!(
        "the notifier held {} streams, then {refused} (opened in {:.1?})",
        open.len(),
        began.elapsed()
    );
}
