//! Connections to one destination: TCP or UDP, reconnect backoff, replay pacing.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use std::os::unix::io::AsRawFd;
use tokio::io::AsyncWriteExt;

use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;

use super::config::Target;

/// An open connection.
pub enum Conn {
    Tcp(TcpStream),
    Udp { socket: UdpSocket, max: usize },
}

impl Conn {
    /// Resolve `target` again (DNS may have changed) and connect to the first address that
    /// accepts. TCP sockets get a send buffer of `send_buffer` bytes (what the kernel may hold
    /// for the peer; the kernel doubles it) and 1 s keepalive probes, whose answers carry the
    /// peer's current receive window (see [`ReadEstimate`]).
    pub async fn connect(target: &Target, udp_max: usize, send_buffer: u32) -> io::Result<Conn> {
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
                tcp_connect(a, send_buffer).await.map(Conn::Tcp)
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
    /// discarded. A reset is reported once (the next read sees EOF).
    pub fn peer_closed(&self) -> Option<Closed> {
        let Conn::Tcp(s) = self else { return None };
        let mut buf = [0u8; 512];
        loop {
            match s.try_read(&mut buf) {
                Ok(0) => return Some(Closed::Eof),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(_) => return Some(Closed::Reset),
            }
        }
    }

    /// Resolves when the peer closes the connection (never for UDP). Used while idle.
    pub async fn closed(&self) -> Closed {
        let Conn::Tcp(s) = self else {
            return std::future::pending().await;
        };
        loop {
            if s.readable().await.is_err() {
                return Closed::Reset;
            }
            if let Some(k) = self.peer_closed() {
                return k;
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

    /// How far the peer has acknowledged what was written, and its receive window, for
    /// [`ReadEstimate`]. `None` for UDP (no feedback at all) or if the kernel cannot tell.
    pub fn progress(&self, written: u64) -> Option<Progress> {
        let Conn::Tcp(s) = self else { return None };
        let fd = s.as_raw_fd();
        let mut outq: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) on a TCP socket writes one int: the bytes written and
        // not yet acknowledged by the peer.
        if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut outq) } != 0 {
            return None;
        }
        let acked = written.saturating_sub(u64::try_from(outq).unwrap_or(u64::MAX));
        // SAFETY: tcp_info is plain data; the kernel fills at most `len` bytes of it.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: valid pointers to `info` and `len`, sized as told.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        // After a reset the kernel drops its send queue: the counts mean nothing any more.
        const ESTABLISHED: u8 = 1;
        const CLOSE_WAIT: u8 = 8;
        if rc != 0 || !matches!(info.tcpi_state, ESTABLISHED | CLOSE_WAIT) {
            return None;
        }
        let has_wnd = std::mem::offset_of!(libc::tcp_info, tcpi_snd_wnd) + 4;
        let window = (len as usize >= has_wnd).then(|| {
            let unit = 1u64 << (info.tcpi_snd_rcv_wscale & 0x0f);
            (u64::from(info.tcpi_snd_wnd), unit)
        });
        Some(Progress { acked, window })
    }

    /// Close: TCP sends FIN and waits (bounded by `timeout`) for the peer to close its side,
    /// which it does only after reading everything before our FIN. True if it did: then
    /// everything written was read (a peer that closes with unread data sends a reset).
    pub async fn close(self, timeout: Duration) -> bool {
        let Conn::Tcp(mut s) = self else { return true };
        let bye = async {
            s.shutdown().await?;
            let mut buf = [0u8; 512];
            loop {
                if tokio::io::AsyncReadExt::read(&mut s, &mut buf).await? == 0 {
                    return Ok::<_, io::Error>(());
                }
            }
        };
        matches!(tokio::time::timeout(timeout, bye).await, Ok(Ok(())))
    }
}

async fn tcp_connect(addr: SocketAddr, send_buffer: u32) -> io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_send_buffer_size(send_buffer)?;
    sock.set_keepalive(true)?;
    let fd = sock.as_raw_fd();
    for (opt, val) in [
        (libc::TCP_KEEPIDLE, 1),
        (libc::TCP_KEEPINTVL, 1),
        (libc::TCP_KEEPCNT, 30),
    ] {
        let v: libc::c_int = val;
        // SAFETY: setsockopt with a pointer to a live int of the size given.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    let s = sock.connect(addr).await?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// How the peer ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// FIN (a peer that shuts its socket down before closing it sends one even over unread
    /// data, then a reset).
    Eof,
    /// Reset (or another error): what it had not read is lost.
    Reset,
}

/// What [`Conn::progress`] reads from the kernel.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Bytes of this connection the peer's TCP acknowledged.
    pub acked: u64,
    /// The peer's receive window now and its granularity (`2^wscale`), if the kernel says.
    pub window: Option<(u64, u64)>,
}

/// How far the peer's *application* has read a connection. TCP acknowledges bytes as soon as
/// they are in the peer's receive buffer, and a peer that closes or resets with unread data
/// there loses them; so acknowledged bytes count as read only on evidence from the peer's
/// receive window (the free space of that buffer):
/// - the window is back at the largest value seen after bytes arrived (at least `GUARD` of
///   them, so an unread arrival would have shrunk it), and that largest value has held for a
///   whole window of bytes (while the kernel still grows the buffer, growth can hide unread
///   bytes): the buffer is as empty as it gets;
/// - the window opened while nothing new arrived: the application read (keepalive probes,
///   every second on an idle connection, make the peer report its window);
/// - a window larger than ever before, with new bytes, is the kernel growing the buffer, not
///   evidence (a peer that never reads grows it too);
/// - the one ambiguous case, everything acknowledged and the window at its largest but never
///   seen larger than right after the last bytes (a buffer still growing can hide unread
///   bytes), is reported by [`ReadEstimate::ambiguous`] once it holds for
///   [`ReadEstimate::SETTLE`]; the worker then closes the connection and waits for the peer's
///   FIN (sent only after it read everything) before counting the bytes as read.
///
/// Without a window (old kernels) acknowledged means read.
#[derive(Debug, Default)]
pub struct ReadEstimate {
    max_window: u64,
    /// Acknowledged bytes when `max_window` was last raised.
    raised_at: u64,
    prev: Option<(u64, u64)>,
    read: u64,
    still_since: Option<Instant>,
}

impl ReadEstimate {
    pub const SETTLE: Duration = Duration::from_millis(300);
    /// Fewest new bytes for "the window did not shrink" to mean they were read.
    const GUARD: u64 = 4096;

    /// Bytes of the connection (of `written`) the peer's application has surely read. Call
    /// once right after connecting (`written` 0) to learn the empty buffer's window.
    pub fn read_upto(&mut self, written: u64, p: Progress, now: Instant) -> u64 {
        let acked = p.acked.min(written);
        let Some((window, unit)) = p.window else {
            return acked;
        };
        let guard = (2 * unit).max(Self::GUARD);
        match self.prev {
            None => self.max_window = window,
            Some((pa, pw)) => {
                if window > self.max_window {
                    if acked == pa {
                        self.read = acked; // opened with nothing new: the application read
                    }
                    self.max_window = window;
                    self.raised_at = acked;
                } else if window == self.max_window
                    && ((acked >= pa + guard && acked >= self.raised_at + self.max_window)
                        || (acked == pa && window > pw))
                {
                    self.read = acked;
                }
            }
        }
        let changed = self.prev != Some((acked, window));
        self.prev = Some((acked, window));
        if acked == written && window == self.max_window && self.read < acked {
            if changed || self.still_since.is_none() {
                self.still_since = Some(now);
            }
        } else {
            self.still_since = None;
        }
        self.read.min(acked)
    }

    /// The case the window cannot settle: everything acknowledged, the window at its largest
    /// (possibly grown over unread bytes), unchanged for [`ReadEstimate::SETTLE`]. The worker
    /// then asks the peer itself: it closes the connection and waits for the peer's FIN.
    pub fn ambiguous(&self, now: Instant) -> bool {
        self.still_since
            .is_some_and(|t| now.duration_since(t) >= Self::SETTLE)
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
    async fn tcp_peer_close_and_reset_are_told_apart() {
        use tokio::io::AsyncReadExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        // A peer that read everything and closes: FIN.
        let mut c = Conn::connect(&Target::Tcp(addr.clone()), 1400, 1 << 16)
            .await
            .unwrap();
        let (mut server, _) = l.accept().await.unwrap();
        assert_eq!(c.peer_closed(), None);
        c.write_all(b"a 1 1\n").await.unwrap();
        let mut buf = [0u8; 6];
        server.read_exact(&mut buf).await.unwrap();
        drop(server);
        assert_eq!(c.closed().await, Closed::Eof);
        assert_eq!(c.peer_closed(), Some(Closed::Eof));
        // A peer that closes with unread data: reset.
        let mut c = Conn::connect(&Target::Tcp(addr), 1400, 1 << 16)
            .await
            .unwrap();
        let (server, _) = l.accept().await.unwrap();
        c.write_all(b"a 1 1\n").await.unwrap();
        let mut one = [0u8; 1];
        server.peek(&mut one).await.unwrap();
        drop(server);
        assert_eq!(c.closed().await, Closed::Reset);
    }

    fn progress(acked: u64, window: u64) -> Progress {
        Progress {
            acked,
            window: Some((window, 128)),
        }
    }

    #[test]
    fn read_estimate_needs_evidence_from_the_window() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        // A peer that never reads: the window grows once, then shrinks; nothing is read.
        let mut e = ReadEstimate::default();
        assert_eq!(e.read_upto(0, progress(0, 65_483), t), 0);
        assert_eq!(e.read_upto(10_000, progress(10_000, 93_184), ms(1)), 0);
        assert_eq!(e.read_upto(20_000, progress(20_000, 86_016), ms(2)), 0);
        assert_eq!(e.read_upto(20_000, progress(20_000, 86_016), ms(2_000)), 0);
        // A peer that reads: back at the largest window after new bytes.
        let mut e = ReadEstimate::default();
        e.read_upto(0, progress(0, 65_483), t);
        assert_eq!(
            e.read_upto(10_000, progress(10_000, 95_232), ms(1)),
            0,
            "growth"
        );
        assert_eq!(e.read_upto(20_000, progress(20_000, 90_112), ms(2)), 0);
        assert_eq!(
            e.read_upto(20_000, progress(20_000, 95_232), ms(3)),
            20_000,
            "opened"
        );
        assert_eq!(
            e.read_upto(30_000, progress(30_000, 95_232), ms(4)),
            20_000,
            "at max, but the buffer may still be growing"
        );
        assert_eq!(
            e.read_upto(110_000, progress(110_000, 95_232), ms(5)),
            110_000,
            "at max a whole window after it last grew"
        );
        // Unacknowledged bytes are never read.
        assert_eq!(
            e.read_upto(140_000, progress(125_000, 95_232), ms(6)),
            125_000
        );
        // The ambiguous case: acknowledged, window at its (grown) largest, still. Never
        // counted as read; reported as ambiguous once it lasts.
        let mut e = ReadEstimate::default();
        e.read_upto(0, progress(0, 65_483), t);
        assert_eq!(e.read_upto(500, progress(500, 95_232), ms(1)), 0);
        assert_eq!(e.read_upto(500, progress(500, 95_232), ms(100)), 0);
        assert!(!e.ambiguous(ms(100)));
        assert_eq!(e.read_upto(500, progress(500, 95_232), ms(400)), 0);
        assert!(e.ambiguous(ms(400)));
        // No window from the kernel: acknowledged is all there is.
        let mut e = ReadEstimate::default();
        let p = Progress {
            acked: 7,
            window: None,
        };
        assert_eq!(e.read_upto(9, p, t), 7);
    }
}
