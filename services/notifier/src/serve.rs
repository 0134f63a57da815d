//! Serving HTTP with a handle on each connection. `axum::serve` cannot close one
//! connection on its own; the notifier must, because a client that stops reading blocks
//! its connection on a full socket, where only closing it frees what it holds. Each
//! request carries a `ConnectionKill` that closes its connection at once.
//!
//! Shutdown: stop accepting, let responses finish (the hub ends every stream first),
//! and close what is still open after a grace period.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::Layer as _;

use crate::internal_events::ConnectionsCut;
use crate::routes::ConnectionKill;

/// How long open connections may take to finish after shutdown began.
const GRACE: Duration = Duration::from_secs(5);

pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    let force = CancellationToken::new();
    loop {
        let (socket, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let kill = force.child_token();
        // The extension wraps the whole router once: `Router::layer` would wrap each of
        // its routes anew for every connection, allocations every stream held for life.
        let service = TowerToHyperService::new(web::accept_trailing_slashes(
            axum::Extension(ConnectionKill(kill.clone())).layer(router.clone()),
        ));
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let builder = web::connection_builder();
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(socket), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = kill.cancelled() => return,
                () = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            tokio::select! {
                _ = connection.as_mut() => {}
                () = kill.cancelled() => {}
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    if tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        ConnectionsCut {
            open: connections.len(),
        }
        .emit();
        force.cancel();
        while connections.join_next().await.is_some() {}
    }
}
