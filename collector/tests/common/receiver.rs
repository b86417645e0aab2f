//! A plaintext line receiver on 127.0.0.1 that records every line it reads, in order, into a
//! [`Sink`] shared across restarts (so an outage test can stop it and start it again on the
//! same port).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Every line received, in arrival order (across connections and restarts).
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<String>>>);

impl Sink {
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Listen on `127.0.0.1:port` (0 = any free port), recording into `sink`.
    pub async fn start(port: u16, sink: Sink) -> Receiver {
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_reuseaddr(true).unwrap();
        sock.bind(([127, 0, 0, 1], port).into()).unwrap();
        let listener = sock.listen(64).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut conns = Vec::new();
            loop {
                tokio::select! {
                    r = listener.accept() => {
                        let Ok((stream, _)) = r else { continue };
                        conns.push(tokio::spawn(serve(stream, sink.clone(), stop_rx.clone())));
                    }
                    _ = stop_rx.changed() => break,
                }
            }
            drop(listener);
            for c in conns {
                let _ = tokio::time::timeout(Duration::from_secs(20), c).await;
            }
        });
        Receiver { addr, stop, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Close the listener and every connection the way a server shutting down does: stop
    /// accepting, send FIN, read what the peer still had in flight until it closes too.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn serve(stream: TcpStream, sink: Sink, mut stop: watch::Receiver<bool>) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    loop {
        tokio::select! {
            l = lines.next_line() => match l {
                Ok(Some(l)) => sink.push(l),
                _ => return,
            },
            _ = stop.changed() => break,
        }
    }
    let _ = wr.shutdown().await;
    while let Ok(Some(l)) = lines.next_line().await {
        sink.push(l);
    }
}
