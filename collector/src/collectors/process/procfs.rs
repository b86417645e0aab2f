//! The process table read from `/proc` directly, for the same numbers the `sysinfo` scan
//! gives: one read of `/proc/<pid>/stat` per process (name, CPU time, memory, threads, start
//! time), plus `status` (user), `exe` and `cmdline` only when a group matches on them, and
//! `io` and `fd/` for matched processes alone. `sysinfo` also walks every process's
//! `task/` directory and keeps a record per thread; this does neither, which is why it costs
//! less per scan (`benches/process-scan.sh`, docs/benchmarks.md).

use std::collections::HashMap;
use std::io::Read;

use super::{in_unit, Group, Table, Totals};

/// One process's `/proc/<pid>/stat` fields that the groups need.
struct Stat {
    /// CPU time (user + system), clock ticks.
    ticks: u64,
    vsize: u64,
    rss_pages: u64,
    threads: u64,
    /// Start, clock ticks after boot.
    start: u64,
}

/// Read `path` into `buf` (cleared first); false if the process is gone or unreadable.
fn read_into(path: &str, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(buf))
        .is_ok()
}

/// `(comm, fields after it)` of a stat line: the name is in parentheses and may hold spaces
/// or parentheses, so it ends at the last `)`.
fn split_stat(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    Some((text.get(open + 1..close)?, text.get(close + 2..)?))
}

fn parse_stat(rest: &[u8]) -> Option<Stat> {
    // Fields after the name, from field 3 (state): utime is field 14, stime 15, num_threads
    // 20, starttime 22, vsize 23, rss 24 (proc(5)).
    let mut f = rest.split(|&b| b == b' ');
    let mut nth = |n: usize| -> Option<u64> {
        std::str::from_utf8(f.nth(n)?).ok()?.parse().ok()
    };
    let utime = nth(11)?; // field 14
    let stime = nth(0)?; // 15
    let threads = nth(4)?; // 20
    let start = nth(1)?; // 22
    let vsize = nth(0)?; // 23
    let rss_pages = nth(0)?; // 24
    Some(Stat {
        ticks: utime + stime,
        vsize,
        rss_pages,
        threads,
        start,
    })
}

/// The real user id from a `status` file (`Uid:\treal\teffective…`), as sysinfo reports it.
fn real_uid(status: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `read_bytes` and `write_bytes` of an `io` file.
fn io_bytes(io: &[u8]) -> (u64, u64) {
    let text = std::str::from_utf8(io).unwrap_or_default();
    let mut read = 0;
    let mut written = 0;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("read_bytes: ") {
            read = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("write_bytes: ") {
            written = v.trim().parse().unwrap_or(0);
        }
    }
    (read, written)
}

fn sysconf(name: libc::c_int, default: u64) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(default)
}

/// Seconds since boot and total memory (bytes), from sysinfo(2).
fn uptime_and_memory() -> (u64, f64) {
    // SAFETY: an all-zero `sysinfo` struct is valid, and sysinfo(2) only writes to it.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return (0, 0.0);
    }
    let unit = u64::from(si.mem_unit.max(1));
    (
        u64::try_from(si.uptime).unwrap_or(0),
        (si.totalram as u64).saturating_mul(unit) as f64,
    )
}

/// One scan of `/proc` for every group: each group's sums, and the host's total memory.
/// `table` keeps each matched process's CPU time for the next scan's CPU %.
pub fn scan(state: &mut Table, groups: &[Group]) -> (Vec<Totals>, f64) {
    let ticks_per_s = sysconf(libc::_SC_CLK_TCK, 100);
    let page = sysconf(libc::_SC_PAGESIZE, 4096);
    let (uptime, total_memory) = uptime_and_memory();
    let need_user = groups.iter().any(|g| g.user.is_some());
    let need_exe = groups.iter().any(|g| !g.exe.is_empty());
    let need_cmd = groups.iter().any(|g| !g.cmdline.is_empty());
    let pidfiles: Vec<Option<u32>> = groups
        .iter()
        .map(|g| g.pidfile.as_deref().and_then(super::read_pidfile))
        .map(|p| p.map(|p| p.as_u32()))
        .collect();
    let own = std::process::id();
    let now = std::time::Instant::now();
    let elapsed_ms = state
        .at
        .map(|at| now.duration_since(at).as_secs_f64() * 1e3)
        .filter(|ms| *ms > 0.0);
    let mut cpu_ms = HashMap::new();
    let mut totals = vec![Totals::default(); groups.len()];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (totals, total_memory);
    };
    let mut buf = Vec::with_capacity(1024);
    let mut aux = Vec::new();
    let mut path = String::new();
    let mut cmdline = String::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        path.clear();
        path.push_str("/proc/");
        path.push_str(name.to_str().unwrap_or_default());
        let base = path.len();
        path.push_str("/stat");
        if !read_into(&path, &mut buf) {
            continue; // exited since the listing: never an error
        }
        let Some((comm, rest)) = split_stat(&buf) else {
            continue;
        };
        let comm = String::from_utf8_lossy(comm);
        let mut uid: Option<Option<u32>> = None;
        let mut exe: Option<Option<String>> = None;
        let mut cmd_read = false;
        let mut cgroup: Option<Option<String>> = None;
        let mut matched_any = false;
        let mut stat: Option<Option<Stat>> = None;
        for (i, (g, pidfile)) in groups.iter().zip(&pidfiles).enumerate() {
            if let Some(want) = &g.user {
                let got = *uid.get_or_insert_with(|| {
                    path.truncate(base);
                    path.push_str("/status");
                    if need_user && read_into(&path, &mut aux) {
                        real_uid(&aux)
                    } else {
                        None
                    }
                });
                if got != Some(**want) {
                    continue;
                }
            }
            let matched = !g.any_selector
                || (g.selfmon && pid == own)
                || *pidfile == Some(pid)
                || (!g.name.is_empty() && g.name.iter().any(|r| r.0.is_match(&comm)))
                || (need_exe && !g.exe.is_empty() && {
                    let e = exe.get_or_insert_with(|| {
                        path.truncate(base);
                        path.push_str("/exe");
                        std::fs::read_link(&path)
                            .ok()
                            .map(|p| p.to_string_lossy().into_owned())
                    });
                    e.as_deref()
                        .is_some_and(|e| g.exe.iter().any(|r| r.0.is_match(e)))
                })
                || (need_cmd && !g.cmdline.is_empty() && {
                    if !cmd_read {
                        cmd_read = true;
                        cmdline.clear();
                        path.truncate(base);
                        path.push_str("/cmdline");
                        if read_into(&path, &mut aux) {
                            let args = aux.strip_suffix(b"\0").unwrap_or(&aux);
                            for (k, a) in args.split(|&b| b == 0).enumerate() {
                                if k > 0 {
                                    cmdline.push(' ');
                                }
                                cmdline.push_str(&String::from_utf8_lossy(a));
                            }
                        }
                    }
                    !cmdline.is_empty() && g.cmdline.iter().any(|r| r.0.is_match(&cmdline))
                })
                || g.unit.as_deref().is_some_and(|unit| {
                    cgroup
                        .get_or_insert_with(|| {
                            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
                        })
                        .as_deref()
                        .is_some_and(|text| in_unit(text, unit))
                });
            if !matched {
                continue;
            }
            let Some(s) = stat.get_or_insert_with(|| parse_stat(rest)) else {
                continue;
            };
            if !matched_any {
                matched_any = true;
                let used = s.ticks * 1000 / ticks_per_s;
                cpu_ms.insert(pid, used);
            }
            let t = &mut totals[i];
            t.count += 1;
            let used = s.ticks * 1000 / ticks_per_s;
            if let (Some(&before), Some(ms)) = (state.cpu_ms.get(&pid), elapsed_ms) {
                t.cpu_percent += used.saturating_sub(before) as f64 / ms * 100.0;
            }
            t.rss += (s.rss_pages * page) as f64;
            t.vms += s.vsize as f64;
            t.threads += s.threads as f64;
            let age = uptime.saturating_sub(s.start / ticks_per_s) as f64;
            t.uptime = Some(t.uptime.map_or(age, |u| u.max(age)));
            path.truncate(base);
            path.push_str("/io");
            if read_into(&path, &mut aux) {
                let (r, w) = io_bytes(&aux);
                t.read_bytes += r as f64;
                t.write_bytes += w as f64;
            }
            path.truncate(base);
            path.push_str("/fd");
            t.fds += std::fs::read_dir(&path).map_or(0, |d| d.count()) as f64;
        }
    }
    state.cpu_ms = cpu_ms;
    state.at = Some(now);
    (totals, total_memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_of_a_name_with_spaces_and_parentheses() {
        let line = b"42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                     12345 1048576 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let (comm, rest) = split_stat(line).unwrap();
        assert_eq!(comm, b"a (b) c");
        let s = parse_stat(rest).unwrap();
        assert_eq!(
            (s.ticks, s.threads, s.start, s.vsize, s.rss_pages),
            (300, 7, 12345, 1048576, 300)
        );
    }

    #[test]
    fn own_process_matches_proc_status() {
        let mut buf = Vec::new();
        assert!(read_into("/proc/self/stat", &mut buf));
        let (_, rest) = split_stat(&buf).unwrap();
        let s = parse_stat(rest).unwrap();
        assert!(s.threads >= 1 && s.vsize > 0 && s.rss_pages > 0);
        assert!(read_into("/proc/self/status", &mut buf));
        // SAFETY: getuid has no preconditions.
        assert_eq!(real_uid(&buf), Some(unsafe { libc::getuid() }));
        assert_eq!(
            io_bytes(b"rchar: 5\nread_bytes: 4096\nwrite_bytes: 8192\n"),
            (4096, 8192)
        );
    }
}
