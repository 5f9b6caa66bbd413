//! A raw HTTP/1.1 server on loopback, for what no well-behaved server does:
//! answering a byte at a time, never answering, redirecting to any scheme,
//! sending any header. Each connection serves one request. Runs on the
//! shared test runtime (it outlives blocking CLI runs); stopped when
//! dropped. An https front is [`https_front`] (the project's TLS proxy with
//! a certificate of the test CA).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedcloud_appliance::testsrv::{tls::TlsOptions, tls_proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pki::pki;
use super::sync::serve_on_loopback;

/// What the server does with a request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Accept and never answer.
    Silent,
    /// The status line and headers at once (`Content-Length: len`), then
    /// one byte of the body every `every`.
    Drip { len: u64, every: Duration },
    /// A complete answer.
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

impl Answer {
    /// A redirect to `location`.
    pub fn redirect(location: &str) -> Answer {
        Answer::Fixed {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }
}

/// A running raw server.
pub struct Raw {
    pub addr: SocketAddr,
    /// The request lines received (`GET /x HTTP/1.1`).
    pub requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Raw {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve `answer(path)` for each request.
pub fn serve(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Raw {
    let answer = Arc::new(answer);
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    let (addr, task) = serve_on_loopback(move |l| {
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = l.accept().await else {
                    return;
                };
                let answer = answer.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let line = text.lines().next().unwrap_or("").to_string();
                    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                    log.lock().unwrap().push(line);
                    match answer(&path) {
                        Answer::Silent => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        Answer::Drip { len, every } => {
                            let h = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
                            );
                            if sock.write_all(h.as_bytes()).await.is_err() {
                                return;
                            }
                            for _ in 0..len {
                                if sock.write_all(b"x").await.is_err() {
                                    return;
                                }
                                let _ = sock.flush().await;
                                tokio::time::sleep(every).await;
                            }
                        }
                        Answer::Fixed {
                            status,
                            headers,
                            body,
                        } => {
                            let mut h = format!("HTTP/1.1 {status} X\r\n");
                            for (k, v) in headers {
                                h.push_str(&format!("{k}: {v}\r\n"));
                            }
                            h.push_str(&format!(
                                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            ));
                            let _ = sock.write_all(h.as_bytes()).await;
                            let _ = sock.write_all(&body).await;
                            let _ = sock.shutdown().await;
                        }
                    }
                });
            }
        });
        (addr, task)
    });
    Raw {
        addr,
        requests,
        task,
    }
}

/// An https front (TLS proxy, certificate for 127.0.0.1 from the test CA)
/// for the plain-http server at `upstream`; its `https://` base URL.
pub fn https_front(upstream: &str) -> (fedcloud_appliance::testsrv::Server, String) {
    let (cert, key) = pki().server_tls();
    let server = serve_on_loopback(|l| {
        tls_proxy::serve(
            l,
            tls_proxy::TlsProxyOptions {
                upstream: url::Url::parse(upstream).unwrap(),
                tls: TlsOptions {
                    cert,
                    key,
                    client_ca_dir: None,
                },
            },
        )
        .unwrap()
    });
    let base = format!("https://{}", server.addr());
    (server, base)
}
