//! The ceiling for the edge's fast path, for `scripts/bench-serve.sh`: a
//! bare hyper 1 server that answers every request with one file's bytes
//! held in memory as `Full<Bytes>`, and nothing else (no routing, no
//! headers beyond the length, no logging, no metrics).
//!
//! Usage: bare-hyper FILE PORT

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(port)) = (args.next(), args.next()) else {
        return Err("usage: bare-hyper FILE PORT".into());
    };
    let body = Bytes::from(std::fs::read(file)?);
    let addr = SocketAddr::from(([127, 0, 0, 1], port.parse::<u16>()?));
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
