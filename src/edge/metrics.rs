//! The private listener for `/metrics` (`metrics.listen`), kept off the
//! public port: it answers that one path and nothing else, with a header
//! timeout of its own, until shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::service::health::Health;

pub async fn serve(listener: TcpListener, health: Arc<Health>, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("the metrics listener could not accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let health = Arc::clone(&health);
                async move { Ok::<_, Infallible>(answer(&req, &health).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

async fn answer(req: &Request<Incoming>, health: &Health) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if req.method() != Method::GET {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".to_string(),
        )
    } else if req.uri().path() != "/metrics" {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            "only /metrics lives here\n".to_string(),
        )
    } else {
        match health.metrics_text().await {
            Ok(text) => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            ),
            Err(e) => {
                tracing::error!("could not read the metrics: {}", e.chain());
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "metrics unavailable\n".into(),
                )
            }
        }
    };
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    res
}
