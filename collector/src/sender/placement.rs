//! Which destinations get a line: the relays' placements, so agents can send straight to the
//! nodes of a Graphite cluster and every series lands where carbon-c-relay or carbon-relay
//! would put it. Pure: no I/O.
//!
//! - `carbon_ch` is carbon-c-relay 3.7's `carbon_ch`: 100 ring entries per member, keyed
//!   `('HOST', 'INSTANCE'):i` (`None` without an instance; the port is not part of it), at the
//!   first two bytes of the key's MD5 as a big-endian u16. Entries sort by (position, host,
//!   instance, no instance last); where positions collide the later entry takes the earlier's
//!   member. A name is looked up at the MD5 position of its sanitised form (up to the first
//!   space, or `;` for a tagged name): the first entry at or after it, wrapping, then on along
//!   the ring until `replication` distinct members are found.
//! - `carbon_ch_py` is carbon-relay 1.1.7's ring (`carbon.hashing`): same keys and positions,
//!   but a colliding entry moves up one slot (repeatedly) in the order of the destinations, and
//!   the name is hashed as sent; replicas are "diverse" (carbon's default `DIVERSE_REPLICAS`):
//!   a second instance on an already chosen host is skipped.
//! - `fnv1a_ch`: key `i-HOST:PORT` (or `i-INSTANCE`), FNV-1a 32 folded to 16 bits; ties sort
//!   by host then port.
//! - `jump_fnv1a_ch`: members ordered by instance (numbers numerically, members without one
//!   last, in their order), jump consistent hash (Lamping & Veach) of the name's FNV-1a 64;
//!   each further replica drops the chosen member and rehashes with xorshift.
//! - `any_of`: FNV-1a 32 of the name modulo the member count; `failover`: the first member.
//!   Both pass over members whose last connection attempt failed.
//!
//! carbon-c-relay's FNV-1a reads bytes as C `char` (signed on the platforms it is packaged
//! for), so a byte ≥ 0x80 is sign-extended before the XOR; no FNV crate does that, hence the
//! few lines below. MD5 is the `md-5` crate.

use md5::{Digest, Md5};
use serde::Deserialize;

/// How lines are spread over the destinations (`sender.placement`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every destination gets every line.
    #[default]
    All,
    /// carbon-c-relay's `carbon_ch`.
    CarbonCh,
    /// carbon-relay 1.1.x's `consistent-hashing` router (`carbon_ch`).
    CarbonChPy,
    /// carbon-c-relay's `fnv1a_ch`.
    Fnv1aCh,
    /// carbon-c-relay's `jump_fnv1a_ch`.
    JumpFnv1aCh,
    /// carbon-c-relay's `any_of`: one member per name, another while it is down.
    AnyOf,
    /// carbon-c-relay's `failover`: the first member that is up.
    Failover,
}

impl Mode {
    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::CarbonCh => "carbon_ch",
            Mode::CarbonChPy => "carbon_ch_py",
            Mode::Fnv1aCh => "fnv1a_ch",
            Mode::JumpFnv1aCh => "jump_fnv1a_ch",
            Mode::AnyOf => "any_of",
            Mode::Failover => "failover",
        }
    }

    /// Whether `replication` applies.
    pub fn hashes(self) -> bool {
        matches!(
            self,
            Mode::CarbonCh | Mode::CarbonChPy | Mode::Fnv1aCh | Mode::JumpFnv1aCh
        )
    }
}

/// One destination as the ring sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The host as written (brackets of an IPv6 literal removed).
    pub host: String,
    pub port: u16,
    pub instance: Option<String>,
}

/// Ring entries per member, as both relays.
const REPLICAS: u32 = 100;

/// A built placement: which members get a name.
#[derive(Debug, Clone)]
pub struct Placement {
    mode: Mode,
    replication: usize,
    members: Vec<Member>,
    /// (position, member) sorted by position; positions above 65535 only in `carbon_ch_py`.
    ring: Vec<(u32, usize)>,
    /// `jump_fnv1a_ch`: members in bucket order.
    buckets: Vec<usize>,
    /// Ring positions claimed by more than one member, described for a warning.
    collisions: Vec<String>,
}

/// FNV-1a 32 over bytes read as signed `char`, as carbon-c-relay.
pub fn fnv1a_32(data: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in data {
        h = (h ^ (b as i8 as i32 as u32)).wrapping_mul(16_777_619);
    }
    h
}

/// FNV-1a 64 over bytes read as signed `char`, as carbon-c-relay.
pub fn fnv1a_64(data: &[u8]) -> u64 {
    let mut h: u64 = 14_695_981_039_346_656_037;
    for &b in data {
        h = (h ^ (b as i8 as i64 as u64)).wrapping_mul(1_099_511_628_211);
    }
    h
}

fn md5_pos(data: &[u8]) -> u32 {
    let d = Md5::digest(data);
    u32::from(d[0]) << 8 | u32::from(d[1])
}

fn fnv1a_pos(data: &[u8]) -> u32 {
    let h = fnv1a_32(data);
    (h >> 16) ^ (h & 0xffff)
}

/// Lamping & Veach's jump consistent hash, in carbon-c-relay's floating-point form.
fn jump_bucket(mut key: u64, buckets: usize) -> usize {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < buckets as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as usize
}

/// The name carbon-c-relay hashes: the line sanitised as its dispatcher does (leading and
/// repeated dots dropped, a trailing dot before the value dropped, bytes other than
/// `[A-Za-z0-9-_:#]` made `_`), up to the first space or, for a tagged name, the `;`.
pub fn relay_name<'b>(line: &[u8], buf: &'b mut Vec<u8>) -> &'b [u8] {
    buf.clear();
    for &c in line {
        match c {
            b'\n' | b'\r' | b';' => break,
            b' ' | b'\t' | b'.' if buf.is_empty() => {}
            b' ' | b'\t' => {
                if buf.last() == Some(&b'.') {
                    buf.pop();
                }
                break;
            }
            b'.' => {
                if buf.last() != Some(&b'.') {
                    buf.push(b'.');
                }
            }
            c if c.is_ascii_alphanumeric() || b"-_:#".contains(&c) => buf.push(c),
            _ => buf.push(b'_'),
        }
    }
    buf
}

/// A line's name as sent: up to the first space.
pub fn raw_name(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .position(|&c| c == b' ' || c == b'\n')
        .unwrap_or(line.len());
    &line[..end]
}

/// carbon-c-relay's order of `jump_fnv1a_ch` instances: both numbers → numerically.
fn instance_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

impl Placement {
    /// Build the placement of `members` (in the order of `sender.destinations`). Errors name
    /// the members that the relays could not tell apart.
    pub fn new(mode: Mode, members: Vec<Member>, replication: usize) -> Result<Placement, String> {
        let n = members.len();
        if mode.hashes() && !(1..=n).contains(&replication) {
            return Err(format!(
                "sender.replication = {replication} must be between 1 and the number of destinations ({n})"
            ));
        }
        if !mode.hashes() && replication != 1 {
            return Err(format!(
                "sender.replication applies to the hashing placements only, not `{}`",
                mode.name()
            ));
        }
        let key_of = |m: &Member| -> String {
            match mode {
                Mode::CarbonCh | Mode::CarbonChPy => match &m.instance {
                    Some(i) => format!("('{}', '{}')", m.host, i),
                    None => format!("('{}', None)", m.host),
                },
                Mode::Fnv1aCh => match &m.instance {
                    Some(i) => i.clone(),
                    None => format!("{}:{}", m.host, m.port),
                },
                _ => format!(
                    "{}:{}={}",
                    m.host,
                    m.port,
                    m.instance.as_deref().unwrap_or("")
                ),
            }
        };
        if mode != Mode::All {
            let mut seen = std::collections::HashMap::new();
            for (i, m) in members.iter().enumerate() {
                if let Some(j) = seen.insert(key_of(m), i) {
                    let what = match mode {
                        Mode::CarbonCh | Mode::CarbonChPy => {
                            "carbon_ch places by host and instance, not port"
                        }
                        _ => "fnv1a_ch places by instance, or host and port without one",
                    };
                    return Err(format!(
                        "sender.destinations: {}:{} and {}:{} are one member of the {} ring ({what}): give each an instance name, e.g. `{}:{}=b`",
                        members[j].host, members[j].port, m.host, m.port, mode.name(), m.host, m.port
                    ));
                }
            }
        }
        if mode == Mode::JumpFnv1aCh {
            let numeric: Vec<bool> = members
                .iter()
                .filter_map(|m| m.instance.as_deref())
                .map(|i| i.parse::<i64>().is_ok())
                .collect();
            if numeric.iter().any(|&x| x) && numeric.iter().any(|&x| !x) {
                return Err("sender.destinations: jump_fnv1a_ch orders instance names either all as numbers or all as text: do not mix them".into());
            }
        }
        let mut p = Placement {
            mode,
            replication,
            members,
            ring: Vec::new(),
            buckets: Vec::new(),
            collisions: Vec::new(),
        };
        match mode {
            Mode::CarbonCh | Mode::Fnv1aCh => p.build_c_ring(&key_of),
            Mode::CarbonChPy => p.build_py_ring(&key_of),
            Mode::JumpFnv1aCh => {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(
                    |&a, &b| match (&p.members[a].instance, &p.members[b].instance) {
                        (None, None) => a.cmp(&b),
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (Some(x), Some(y)) => instance_cmp(x, y),
                    },
                );
                p.buckets = order;
            }
            _ => {}
        }
        Ok(p)
    }

    fn describe(&self, i: usize) -> String {
        let m = &self.members[i];
        match &m.instance {
            Some(inst) => format!("{}:{}={}", m.host, m.port, inst),
            None => format!("{}:{}", m.host, m.port),
        }
    }

    /// carbon-c-relay: sort by (position, host, instance or port), then a run of equal
    /// positions takes the first entry's member.
    fn build_c_ring(&mut self, key_of: &dyn Fn(&Member) -> String) {
        let mut ring = Vec::with_capacity(self.members.len() * REPLICAS as usize);
        for (m, member) in self.members.iter().enumerate() {
            let key = key_of(member);
            for i in 0..REPLICAS {
                let pos = if self.mode == Mode::CarbonCh {
                    md5_pos(format!("{key}:{i}").as_bytes())
                } else {
                    fnv1a_pos(format!("{i}-{key}").as_bytes())
                };
                ring.push((pos, m));
            }
        }
        let members = &self.members;
        let carbon = self.mode == Mode::CarbonCh;
        ring.sort_by(|a, b| {
            let (ma, mb) = (&members[a.1], &members[b.1]);
            a.0.cmp(&b.0)
                .then_with(|| ma.host.as_bytes().cmp(mb.host.as_bytes()))
                .then_with(|| {
                    if carbon {
                        match (&ma.instance, &mb.instance) {
                            (None, None) => std::cmp::Ordering::Equal,
                            (None, Some(_)) => std::cmp::Ordering::Greater,
                            (Some(_), None) => std::cmp::Ordering::Less,
                            (Some(x), Some(y)) => x.as_bytes().cmp(y.as_bytes()),
                        }
                    } else {
                        ma.port.cmp(&mb.port)
                    }
                })
        });
        for i in 1..ring.len() {
            if ring[i].0 == ring[i - 1].0 {
                if ring[i].1 != ring[i - 1].1 {
                    let (pos, lost, kept) = (ring[i].0, ring[i].1, ring[i - 1].1);
                    self.collisions.push(format!(
                        "position {pos}: {} loses it to {}",
                        self.describe(lost),
                        self.describe(kept)
                    ));
                }
                ring[i].1 = ring[i - 1].1;
            }
        }
        self.ring = ring;
    }

    /// carbon-relay: members added in order; a taken position moves up one slot until free.
    fn build_py_ring(&mut self, key_of: &dyn Fn(&Member) -> String) {
        let mut taken: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
        for (m, member) in self.members.iter().enumerate() {
            let key = key_of(member);
            for i in 0..REPLICAS {
                let mut pos = md5_pos(format!("{key}:{i}").as_bytes());
                let first = pos;
                while taken.contains_key(&pos) {
                    pos += 1;
                }
                if pos != first {
                    let holder = taken.get(&first).copied().unwrap_or(m);
                    self.collisions.push(format!(
                        "position {first}: {} moves to {pos} (held by {})",
                        self.describe(m),
                        self.describe(holder)
                    ));
                }
                taken.insert(pos, m);
            }
        }
        let mut ring: Vec<(u32, usize)> = taken.into_iter().collect();
        ring.sort_unstable();
        self.ring = ring;
    }

    /// Ring positions that more than one member hashed to, described (empty if none). The
    /// relays resolve them differently, so such a ring is best avoided (rename an instance).
    pub fn collisions(&self) -> &[String] {
        &self.collisions
    }

    /// The mode this placement implements.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The members that get `line` (whole line or just its name), as indexes into the
    /// destinations, into `out` (cleared first). `up(i)` says whether member `i` is reachable
    /// (only `any_of` and `failover` ask). `buf` is scratch space.
    pub fn place(
        &self,
        line: &[u8],
        up: impl Fn(usize) -> bool,
        buf: &mut Vec<u8>,
        out: &mut Vec<usize>,
    ) {
        out.clear();
        let n = self.members.len();
        match self.mode {
            Mode::All => out.extend(0..n),
            Mode::CarbonCh | Mode::Fnv1aCh => {
                let name = relay_name(line, buf);
                let pos = if self.mode == Mode::CarbonCh {
                    md5_pos(name)
                } else {
                    fnv1a_pos(name)
                };
                self.walk(pos, false, out);
            }
            Mode::CarbonChPy => self.walk(md5_pos(raw_name(line)), true, out),
            Mode::JumpFnv1aCh => {
                let mut hash = fnv1a_64(relay_name(line, buf));
                let mut left = self.buckets.clone();
                while !left.is_empty() {
                    let j = jump_bucket(hash, left.len());
                    out.push(left[j]);
                    if out.len() == self.replication {
                        break;
                    }
                    hash ^= hash >> 12;
                    hash ^= hash << 25;
                    hash ^= hash >> 27;
                    hash = hash.wrapping_mul(2_685_821_657_736_338_717);
                    left.swap_remove(j);
                }
            }
            Mode::AnyOf => {
                let first = fnv1a_32(relay_name(line, buf)) as usize % n;
                let pick = (0..n).map(|k| (first + k) % n).find(|&i| up(i));
                out.push(pick.unwrap_or(first));
            }
            Mode::Failover => out.push((0..n).find(|&i| up(i)).unwrap_or(0)),
        }
    }

    /// From the first ring entry at or after `pos` (wrapping), collect `replication` distinct
    /// members; `diverse`: distinct hosts too (carbon-relay's `DIVERSE_REPLICAS`).
    fn walk(&self, pos: u32, diverse: bool, out: &mut Vec<usize>) {
        let len = self.ring.len();
        let start = self.ring.partition_point(|e| e.0 < pos) % len;
        for k in 0..len {
            let m = self.ring[(start + k) % len].1;
            let dup = out
                .iter()
                .any(|&o| o == m || (diverse && self.members[o].host == self.members[m].host));
            if !dup {
                out.push(m);
                if out.len() == self.replication {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(s: &str) -> Member {
        let (addr, instance) = match s.split_once('=') {
            Some((a, i)) => (a, Some(i.to_string())),
            None => (s, None),
        };
        let (host, port) = addr.rsplit_once(':').unwrap();
        Member {
            host: host.into(),
            port: port.parse().unwrap(),
            instance,
        }
    }

    fn place(p: &Placement, name: &str) -> Vec<usize> {
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        p.place(name.as_bytes(), |_| true, &mut buf, &mut out);
        out
    }

    #[test]
    fn relay_name_sanitises_as_the_dispatcher() {
        let mut b = Vec::new();
        for (line, want) in [
            ("a.b.c 1 2\n", "a.b.c"),
            ("..a..b. 1 2\n", "a.b"),
            ("a b", "a"),
            ("a\tb", "a"),
            ("a/b$c 1", "a_b_c"),
            ("a-b_c:d#e 1", "a-b_c:d#e"),
            ("cpu;dc=eu;x=y 1 2", "cpu"),
            ("a.;dc=eu 1 2", "a."),
            ("é 1", "__"),
        ] {
            assert_eq!(
                relay_name(line.as_bytes(), &mut b),
                want.as_bytes(),
                "{line}"
            );
        }
        assert_eq!(raw_name(b"a..b;x=y 1 2"), b"a..b;x=y");
    }

    #[test]
    fn fnv_sign_extends_as_c_char() {
        // Plain ASCII: the published FNV-1a values.
        assert_eq!(fnv1a_32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        // 0xe9 is XORed as 0xffffffe9.
        assert_eq!(
            fnv1a_32(&[0xe9]),
            (2_166_136_261u32 ^ 0xffff_ffe9).wrapping_mul(16_777_619)
        );
    }

    #[test]
    fn same_host_without_instances_is_refused_for_carbon_ch() {
        let m = vec![member("127.0.0.1:2003"), member("127.0.0.1:2004")];
        let e = Placement::new(Mode::CarbonCh, m.clone(), 1).unwrap_err();
        assert!(e.contains("instance"), "{e}");
        assert!(Placement::new(Mode::Fnv1aCh, m.clone(), 1).is_ok());
        assert!(Placement::new(Mode::CarbonCh, m.clone(), 3).is_err());
        assert!(Placement::new(Mode::AnyOf, m, 2).is_err());
    }

    #[test]
    fn replicas_are_distinct_and_every_mode_places_every_name() {
        let m: Vec<Member> = ["10.0.0.1:2003", "10.0.0.2:2003=a", "10.0.0.3:2004=7"]
            .into_iter()
            .map(member)
            .collect();
        for mode in [Mode::CarbonCh, Mode::CarbonChPy, Mode::Fnv1aCh] {
            for r in 1..=3 {
                let p = Placement::new(mode, m.clone(), r).unwrap();
                for i in 0..200 {
                    let got = place(&p, &format!("host{i}.cpu.total.user 1 2"));
                    let mut d = got.clone();
                    d.sort();
                    d.dedup();
                    assert_eq!((got.len(), d.len()), (r, r), "{mode:?} r={r}");
                }
            }
        }
        let jm: Vec<Member> = ["10.0.0.1:2003=2", "10.0.0.2:2003=1", "10.0.0.3:2004=10"]
            .into_iter()
            .map(member)
            .collect();
        let p = Placement::new(Mode::JumpFnv1aCh, jm, 3).unwrap();
        assert_eq!(p.buckets, vec![1, 0, 2]);
        assert_eq!(place(&p, "x 1 2").len(), 3);
    }

    #[test]
    fn any_of_and_failover_pass_over_members_that_are_down() {
        let m: Vec<Member> = ["a:1", "b:1", "c:1"].into_iter().map(member).collect();
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let f = Placement::new(Mode::Failover, m.clone(), 1).unwrap();
        f.place(b"x 1 2", |i| i != 0, &mut buf, &mut out);
        assert_eq!(out, vec![1]);
        f.place(b"x 1 2", |_| false, &mut buf, &mut out);
        assert_eq!(out, vec![0]);
        let a = Placement::new(Mode::AnyOf, m, 1).unwrap();
        let first = fnv1a_32(b"x") as usize % 3;
        a.place(b"x 1 2", |_| true, &mut buf, &mut out);
        assert_eq!(out, vec![first]);
        a.place(b"x 1 2", |i| i != first, &mut buf, &mut out);
        assert_eq!(out, vec![(first + 1) % 3]);
    }

    #[test]
    fn colliding_positions_are_reported() {
        // Find two instance names whose carbon_ch rings share a position.
        let base = member("10.0.0.1:2003=a");
        let pos_of = |m: &Member| -> std::collections::HashSet<u32> {
            let p = Placement::new(Mode::CarbonCh, vec![m.clone()], 1).unwrap();
            p.ring.iter().map(|e| e.0).collect()
        };
        let mine = pos_of(&base);
        let other = (0..)
            .map(|i| member(&format!("10.0.0.1:2004=b{i}")))
            .find(|m| !pos_of(m).is_disjoint(&mine))
            .unwrap();
        let c = Placement::new(Mode::CarbonCh, vec![base.clone(), other.clone()], 1).unwrap();
        assert!(!c.collisions().is_empty());
        let py = Placement::new(Mode::CarbonChPy, vec![base, other], 1).unwrap();
        assert!(!py.collisions().is_empty());
        assert_eq!(py.ring.len(), 200);
    }
}
