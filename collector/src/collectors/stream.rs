//! A plain TCP or unix-socket connection for the collectors that speak a small text protocol
//! (Redis `INFO`, memcached `stats`): where to connect, connecting with a short timeout, and
//! reading one reply without letting a peer make it unbounded. Not a collector itself.

use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader, ReadBuf};

/// How long a connection attempt may take before the run fails with `cannot connect`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a service listens: `host:port` or a unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp(String),
    Unix(PathBuf),
}

impl Address {
    /// From the `address:` / `socket:` settings of a config, `default` when neither is set.
    pub fn from_config(
        address: Option<String>,
        socket: Option<PathBuf>,
        default: &str,
    ) -> anyhow::Result<Address> {
        match (address, socket) {
            (Some(_), Some(_)) => anyhow::bail!("set either `address:` or `socket:`, not both"),
            (None, Some(path)) => Ok(Address::Unix(path)),
            (address, None) => {
                let address = address.unwrap_or_else(|| default.to_string());
                let ok = address
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !ok {
                    anyhow::bail!("address: {address:?} is not `host:port` (e.g. {default})");
                }
                Ok(Address::Tcp(address))
            }
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => f.write_str(a),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A connected stream, buffered for reading.
pub struct Conn {
    inner: BufReader<Either>,
}

enum Either {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for Either {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Either::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Either::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Either {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Either::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Either::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Either::Tcp(s) => Pin::new(s).poll_flush(cx),
            Either::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Either::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Either::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl Conn {
    /// Connect to `address` within [`CONNECT_TIMEOUT`].
    pub async fn connect(address: &Address) -> anyhow::Result<Conn> {
        let connect = async {
            Ok::<_, std::io::Error>(match address {
                Address::Tcp(a) => {
                    let s = tokio::net::TcpStream::connect(a.as_str()).await?;
                    let _ = s.set_nodelay(true);
                    Either::Tcp(s)
                }
                Address::Unix(p) => Either::Unix(tokio::net::UnixStream::connect(p).await?),
            })
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| anyhow::anyhow!("{address}: cannot connect: timed out"))?
            .with_context(|| format!("{address}: cannot connect"))?;
        Ok(Conn {
            inner: BufReader::new(stream),
        })
    }

    /// Send `request` in full.
    pub async fn send(&mut self, request: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.inner.get_mut().write_all(request).await
    }

    /// One line up to `\n` (without `\r\n`) into `line`, at most `max` bytes. A closed
    /// connection is an error.
    pub async fn read_line(&mut self, line: &mut Vec<u8>, max: usize) -> std::io::Result<()> {
        line.clear();
        let n = (&mut self.inner)
            .take(max as u64 + 1)
            .read_until(b'\n', line)
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if !line.ends_with(b"\n") {
            return Err(if n > max {
                std::io::Error::other(format!("reply line longer than {max} bytes"))
            } else {
                std::io::ErrorKind::UnexpectedEof.into()
            });
        }
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
        Ok(())
    }

    /// Exactly `n` bytes, appended to `buf`.
    pub async fn read_exact(&mut self, buf: &mut Vec<u8>, n: usize) -> std::io::Result<()> {
        let start = buf.len();
        buf.resize(start + n, 0);
        self.inner.read_exact(&mut buf[start..]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = |s: Option<&str>, p: Option<&str>| {
            Address::from_config(s.map(String::from), p.map(PathBuf::from), "127.0.0.1:6379")
        };
        assert_eq!(
            a(None, None).unwrap(),
            Address::Tcp("127.0.0.1:6379".into())
        );
        assert_eq!(
            a(Some("cache:11211"), None).unwrap(),
            Address::Tcp("cache:11211".into())
        );
        assert_eq!(
            a(Some("[::1]:1"), None).unwrap(),
            Address::Tcp("[::1]:1".into())
        );
        assert_eq!(
            a(None, Some("/run/x.sock")).unwrap().to_string(),
            "unix:/run/x.sock"
        );
        assert!(a(Some("h"), None)
            .unwrap_err()
            .to_string()
            .contains("host:port"));
        assert!(a(Some("h:99999"), None).is_err());
        assert!(a(Some("h:1"), Some("/x")).is_err());
    }

    #[tokio::test]
    async fn bounded_lines() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = Address::Tcp(l.local_addr().unwrap().to_string());
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"short\r\nthis line is too long\n")
                .await
                .unwrap();
        });
        let mut c = Conn::connect(&addr).await.unwrap();
        let mut line = Vec::new();
        c.read_line(&mut line, 10).await.unwrap();
        assert_eq!(line, b"short");
        let e = c.read_line(&mut line, 10).await.unwrap_err();
        assert!(e.to_string().contains("longer than 10"), "{e}");
    }
}
