//! Connections to one destination: TCP or UDP, reconnect backoff, replay pacing.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::config::Target;

/// An open connection.
pub enum Conn {
    Tcp(TcpStream),
    Udp { socket: UdpSocket, max: usize },
}

impl Conn {
    /// Resolve `target` again (DNS may have changed) and connect to the first address that
    /// accepts.
    pub async fn connect(target: &Target, udp_max: usize) -> io::Result<Conn> {
        let (addr, udp) = match target {
            Target::Tcp(a) => (a, false),
            Target::Udp(a) => (a, true),
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr.as_str()).await?.collect();
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            format!("{addr} resolved to no address"),
        );
        for a in addrs {
            let res = if udp {
                let local: SocketAddr = if a.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                match UdpSocket::bind(local).await {
                    Ok(s) => s.connect(a).await.map(|()| Conn::Udp {
                        socket: s,
                        max: udp_max,
                    }),
                    Err(e) => Err(e),
                }
            } else {
                TcpStream::connect(a).await.map(|s| {
                    let _ = s.set_nodelay(true);
                    Conn::Tcp(s)
                })
            };
            match res {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Has the peer closed (or reset) the connection? Checked before every write: carbon never
    /// sends anything, so a readable socket means EOF or an error. Bytes it did send are
    /// discarded.
    pub fn peer_closed(&self) -> bool {
        let Conn::Tcp(s) = self else { return false };
        let mut buf = [0u8; 512];
        loop {
            match s.try_read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    /// Resolves when the peer closes the connection (never for UDP). Used while idle.
    pub async fn closed(&self) {
        let Conn::Tcp(s) = self else {
            return std::future::pending().await;
        };
        loop {
            if s.readable().await.is_err() || self.peer_closed() {
                return;
            }
        }
    }

    /// Write all of `data`. UDP: one datagram per run of whole lines of at most `max` bytes
    /// (a longer line goes alone).
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(data).await,
            Conn::Udp { socket, max } => {
                for d in datagrams(data, *max) {
                    socket.send(d).await?;
                }
                Ok(())
            }
        }
    }

    /// Close gracefully (TCP FIN), bounded by `timeout`.
    pub async fn close(self, timeout: Duration) {
        if let Conn::Tcp(mut s) = self {
            let _ = tokio::time::timeout(timeout, s.shutdown()).await;
        }
    }
}

/// Split `data` (whole lines) into runs of at most `max` bytes, cut at line ends.
pub fn datagrams(data: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        for (i, &b) in rest.iter().enumerate() {
            if b == b'\n' {
                if i + 1 > max && end > 0 {
                    break;
                }
                end = i + 1;
                if end >= max {
                    break;
                }
            }
        }
        if end == 0 {
            end = rest.len();
        }
        let (d, r) = rest.split_at(end);
        rest = r;
        Some(d)
    })
}

/// Capped exponential backoff with jitter: each delay is uniform in `[d/2, d]`, `d` doubling
/// from `min` up to `max`.
pub struct Backoff {
    min: Duration,
    max: Duration,
    cur: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, cur: min }
    }

    pub fn reset(&mut self) {
        self.cur = self.min;
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.cur;
        self.cur = (self.cur * 2).min(self.max);
        let half = d / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Paces replayed lines to `rate` lines per second (0 = unlimited).
pub struct Pacer {
    rate: u64,
    next: Option<Instant>,
}

impl Pacer {
    pub fn new(rate: u64) -> Pacer {
        Pacer { rate, next: None }
    }

    /// When the next batch may go.
    pub fn ready_at(&self) -> Option<Instant> {
        self.next
    }

    /// Account for `lines` just sent.
    pub fn sent(&mut self, lines: u64) {
        if self.rate == 0 {
            return;
        }
        let now = Instant::now();
        let base = self.next.filter(|n| *n > now).unwrap_or(now);
        self.next = Some(base + Duration::from_secs_f64(lines as f64 / self.rate as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_cut_at_line_ends() {
        let data = b"aaaa 1 1\nbbbb 2 2\ncccc 3 3\n";
        let got: Vec<_> = datagrams(data, 20).collect();
        assert_eq!(got, vec![&b"aaaa 1 1\nbbbb 2 2\n"[..], &b"cccc 3 3\n"[..]]);
        let got: Vec<_> = datagrams(data, 5).collect();
        assert_eq!(got.len(), 3, "a line longer than max goes alone");
        assert_eq!(got.concat(), data.to_vec());
        let got: Vec<_> = datagrams(data, 1400).collect();
        assert_eq!(got, vec![&data[..]]);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let mut caps = vec![];
        for _ in 0..6 {
            let d = b.next_delay();
            caps.push(d);
        }
        let bounds = [100, 200, 400, 800, 800, 800];
        for (d, hi) in caps.iter().zip(bounds) {
            assert!(*d <= Duration::from_millis(hi) && *d >= Duration::from_millis(hi / 2));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn tcp_peer_close_is_detected() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut c = Conn::connect(&Target::Tcp(addr), 1400).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        assert!(!c.peer_closed());
        c.write_all(b"a 1 1\n").await.unwrap();
        drop(server);
        // Resolves only once the FIN arrived.
        c.closed().await;
        assert!(c.peer_closed());
    }
}
