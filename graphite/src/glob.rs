//! Metric-path globs with graphite-web's finder semantics, compiled once and matched many
//! times.
//!
//! As graphite-web's standard finder (`finders/standard.py`, `finders/__init__.py`):
//! backslashes are dropped, the pattern is split on `.` into nodes, each node's `{a,b}`
//! groups are expanded (innermost first, so `{a,{b,c}}` works; an unclosed `{` is literal),
//! and each variant is matched against one path node with Python's `fnmatch`: `*` (any run),
//! `?` (one character), `[seq]`, `[!seq]` (ranges `a-z`; `]` first is literal; an unclosed `[`
//! is literal). Nothing ever matches across a `.`. A node that is exactly `**` matches zero or
//! more nodes; a trailing `**` needs at least one more node (`a.**` = `a.**.*`), as in
//! graphite-web. Matching is case-sensitive.
//!
//! Literal nodes (no `*?[`) compare by string equality; common shapes (`*`, `abc*`, `*abc`,
//! `ab*cd`) have fast paths; brace sets of literals use a hash set.

use std::collections::HashSet;

/// The most variants one node's `{…}` groups may expand to.
pub const MAX_NODE_VARIANTS: usize = 10_000;
/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 16 * 1024;
/// The most variants all the nodes of one pattern may expand to together (matching a path
/// tries each of them).
pub const MAX_PATTERN_VARIANTS: usize = 10_000;
/// The most nodes one pattern may have.
pub const MAX_NODES: usize = 256;
/// The most `**` nodes one pattern may have (each one multiplies the paths a tree walk
/// visits).
pub const MAX_GLOBSTARS: usize = 4;

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid metric pattern {pattern:?}: {reason}")]
pub struct GlobError {
    pattern: String,
    reason: String,
}

/// A compiled pattern over whole metric paths.
#[derive(Debug, Clone)]
pub struct GlobPattern {
    text: String,
    nodes: Vec<NodePattern>,
    globstar: bool,
}

/// The pattern for one path node (the text between two dots).
#[derive(Debug, Clone)]
pub enum NodePattern {
    /// Exactly this name.
    Literal(String),
    /// Any of these names (a brace set without wildcards).
    OneOf(LiteralSet),
    /// Any of these fnmatch variants (at least one has a wildcard).
    Glob(Vec<Fnmatch>),
    /// `**`: zero or more whole nodes.
    GlobStar,
}

/// A set of literal names: a short list scanned linearly, or a hash set.
#[derive(Debug, Clone)]
pub enum LiteralSet {
    Few(Vec<String>),
    Many(HashSet<String>),
}

impl LiteralSet {
    fn contains(&self, s: &str) -> bool {
        match self {
            LiteralSet::Few(v) => v.iter().any(|x| x == s),
            LiteralSet::Many(h) => h.contains(s),
        }
    }

    /// The names, in no particular order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            LiteralSet::Few(v) => v.iter().map(String::as_str).collect(),
            LiteralSet::Many(h) => h.iter().map(String::as_str).collect(),
        }
    }
}

impl NodePattern {
    /// Whether one path node matches. `GlobStar` matches any single node here; whole-path
    /// matching handles its zero-or-more meaning.
    pub fn matches(&self, node: &str) -> bool {
        match self {
            NodePattern::Literal(s) => s == node,
            NodePattern::OneOf(set) => set.contains(node),
            NodePattern::Glob(variants) => variants.iter().any(|v| v.matches(node)),
            NodePattern::GlobStar => true,
        }
    }

    /// The exact name, when this node matches only one.
    pub fn literal(&self) -> Option<&str> {
        match self {
            NodePattern::Literal(s) => Some(s),
            _ => None,
        }
    }
}

impl GlobPattern {
    /// Compiles `pattern`. Errors only for hostile sizes (see the `MAX_*` constants).
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let err = |reason: String| GlobError {
            pattern: truncate(pattern),
            reason,
        };
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(err(format!(
                "longer than {MAX_PATTERN_LEN} bytes ({})",
                pattern.len()
            )));
        }
        let clean: String = pattern.chars().filter(|c| *c != '\\').collect();
        let n_nodes = clean.split('.').count();
        if n_nodes > MAX_NODES {
            return Err(err(format!("more than {MAX_NODES} nodes ({n_nodes})")));
        }
        let globstars = clean.split('.').filter(|n| *n == "**").count();
        if globstars > MAX_GLOBSTARS {
            return Err(err(format!(
                "more than {MAX_GLOBSTARS} `**` nodes ({globstars})"
            )));
        }
        let mut nodes = Vec::new();
        let mut total = 0usize;
        for raw in clean.split('.') {
            if raw == "**" {
                nodes.push(NodePattern::GlobStar);
                continue;
            }
            let left = (MAX_PATTERN_VARIANTS - total).min(MAX_NODE_VARIANTS);
            let variants = expand_braces(raw, left).ok_or_else(|| {
                err(if left < MAX_NODE_VARIANTS {
                    format!("its `{{…}}` groups expand to more than {MAX_PATTERN_VARIANTS} variants in all")
                } else {
                    format!("node {raw:?} expands to more than {MAX_NODE_VARIANTS} variants")
                })
            })?;
            total += variants.len();
            nodes.push(compile_node(variants));
        }
        let globstar = nodes.iter().any(|n| matches!(n, NodePattern::GlobStar));
        if matches!(nodes.last(), Some(NodePattern::GlobStar)) {
            // graphite-web: a terminal globstar adds a `*` pattern for the leaves.
            nodes.push(NodePattern::Glob(vec![Fnmatch::new("*")]));
        }
        Ok(GlobPattern {
            text: pattern.to_owned(),
            nodes,
            globstar,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Per-node patterns, for walking a tree index level by level.
    pub fn nodes(&self) -> &[NodePattern] {
        &self.nodes
    }

    /// True when the pattern names exactly one path (no wildcard, brace set or `**`).
    pub fn is_literal(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| matches!(n, NodePattern::Literal(_)))
    }

    /// Whether a whole metric path matches.
    pub fn matches(&self, path: &str) -> bool {
        if !self.globstar {
            let mut parts = path.split('.');
            for node in &self.nodes {
                match parts.next() {
                    Some(part) if node.matches(part) => {}
                    _ => return false,
                }
            }
            return parts.next().is_none();
        }
        const STACK: usize = 64;
        let n = path.split('.').count();
        if n >= STACK {
            let parts: Vec<&str> = path.split('.').collect();
            return self.matches_dp(&parts, &mut vec![false; n + 1], &mut vec![false; n + 1]);
        }
        let mut parts = [""; STACK];
        for (slot, part) in parts.iter_mut().zip(path.split('.')) {
            *slot = part;
        }
        self.matches_dp(
            &parts[..n],
            &mut [false; STACK + 1],
            &mut [false; STACK + 1],
        )
    }

    /// Whole-path matching with `**`: `reach[j]` says the pattern nodes so far can consume
    /// exactly the first `j` path nodes. O(pattern nodes × path nodes), no allocation.
    fn matches_dp(&self, parts: &[&str], reach: &mut [bool], next: &mut [bool]) -> bool {
        let (mut reach, mut next) = (reach, next);
        reach[..=parts.len()].fill(false);
        reach[0] = true;
        for node in &self.nodes {
            next[..=parts.len()].fill(false);
            if let NodePattern::GlobStar = node {
                let mut on = false;
                for j in 0..=parts.len() {
                    on |= reach[j];
                    next[j] = on;
                }
            } else {
                for j in 0..parts.len() {
                    if reach[j] && node.matches(parts[j]) {
                        next[j + 1] = true;
                    }
                }
            }
            std::mem::swap(&mut reach, &mut next);
        }
        reach[parts.len()]
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_owned();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn compile_node(mut variants: Vec<String>) -> NodePattern {
    let wild = |v: &String| v.contains(['*', '?', '[']);
    if variants.iter().any(wild) {
        return NodePattern::Glob(variants.iter().map(|v| Fnmatch::new(v)).collect());
    }
    if variants.len() == 1 {
        return NodePattern::Literal(variants.pop().unwrap_or_default());
    }
    if variants.len() <= 8 {
        NodePattern::OneOf(LiteralSet::Few(variants))
    } else {
        NodePattern::OneOf(LiteralSet::Many(variants.into_iter().collect()))
    }
}

/// graphite-web's `expand_braces`: repeatedly expands the leftmost innermost `{…}` (one
/// without braces inside), splitting on `,`. Returns `None` past `limit` variants, counting
/// duplicates too (`{,}{,}…` is exponential work even though it yields one string).
pub fn expand_braces(s: &str, limit: usize) -> Option<Vec<String>> {
    let mut done: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut work = vec![s.to_owned()];
    let mut budget = limit.saturating_mul(4);
    while let Some(cur) = work.pop() {
        budget = budget.checked_sub(1)?;
        match innermost_group(&cur) {
            None => {
                if !seen.contains(&cur) {
                    if done.len() >= limit {
                        return None;
                    }
                    seen.insert(cur.clone());
                    done.push(cur);
                }
            }
            Some((open, close)) => {
                let inner = &cur[open + 1..close];
                if work.len() + done.len() + inner.matches(',').count() + 1 > limit {
                    return None;
                }
                for alt in inner.split(',') {
                    work.push(format!("{}{}{}", &cur[..open], alt, &cur[close + 1..]));
                }
            }
        }
    }
    Some(done)
}

/// Byte positions of the first `{` … `}` pair with no brace between them (regex
/// `\{([^{}]*)\}`, leftmost match).
fn innermost_group(s: &str) -> Option<(usize, usize)> {
    let mut open = None;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'{' => open = Some(i),
            b'}' => {
                if let Some(o) = open {
                    return Some((o, i));
                }
            }
            _ => {}
        }
    }
    None
}

/// One compiled `fnmatch` pattern for a single node, as Python 3.11's `fnmatch.translate`.
#[derive(Debug, Clone)]
pub struct Fnmatch {
    shape: Shape,
}

#[derive(Debug, Clone)]
enum Shape {
    /// `*` (any run of stars).
    Any,
    /// `abc*`
    Prefix(String),
    /// `*abc`
    Suffix(String),
    /// `ab*cd`
    PrefixSuffix(String, String),
    /// Anything else.
    General(Vec<Tok>),
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(String),
    One,
    Star,
    Class(Class),
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    chars: Vec<char>,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        let hit =
            self.chars.contains(&c) || self.ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
        hit != self.negated
    }
}

impl Fnmatch {
    /// Compiles one node pattern (no `.` or braces are interpreted here).
    pub fn new(pat: &str) -> Self {
        let toks = translate(pat);
        let shape = match toks.as_slice() {
            [Tok::Star] => Shape::Any,
            [Tok::Lit(p), Tok::Star] => Shape::Prefix(p.clone()),
            [Tok::Star, Tok::Lit(s)] => Shape::Suffix(s.clone()),
            [Tok::Lit(p), Tok::Star, Tok::Lit(s)] => Shape::PrefixSuffix(p.clone(), s.clone()),
            _ => Shape::General(toks),
        };
        Fnmatch { shape }
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        match &self.shape {
            Shape::Any => true,
            Shape::Prefix(p) => name.starts_with(p.as_str()),
            Shape::Suffix(s) => name.ends_with(s.as_str()),
            Shape::PrefixSuffix(p, s) => {
                name.len() >= p.len() + s.len()
                    && name.starts_with(p.as_str())
                    && name.ends_with(s.as_str())
            }
            Shape::General(toks) => match_general(toks, name),
        }
    }
}

/// Matches one token at `at` (not `Star`); returns the end position.
fn step(tok: &Tok, name: &str, at: usize) -> Option<usize> {
    match tok {
        Tok::Lit(l) => name[at..].starts_with(l.as_str()).then(|| at + l.len()),
        Tok::One => name[at..].chars().next().map(|c| at + c.len_utf8()),
        Tok::Class(cls) => {
            let c = name[at..].chars().next()?;
            cls.matches(c).then(|| at + c.len_utf8())
        }
        Tok::Star => Some(at),
    }
}

/// Greedy star matching with one backtrack point: correct because every non-star token
/// matches a fixed-length piece.
fn match_general(toks: &[Tok], name: &str) -> bool {
    let (mut t, mut at) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None; // (token after star, name position)
    loop {
        if t < toks.len() {
            if let Tok::Star = toks[t] {
                star = Some((t + 1, at));
                t += 1;
                continue;
            }
            if let Some(end) = step(&toks[t], name, at) {
                t += 1;
                at = end;
                continue;
            }
        } else if at == name.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more character.
        match star {
            Some((st, sat)) => match name[sat..].chars().next() {
                Some(c) => {
                    let next = sat + c.len_utf8();
                    star = Some((st, next));
                    t = st;
                    at = next;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// Python's `fnmatch.translate`, producing tokens instead of a regex.
fn translate(pat: &str) -> Vec<Tok> {
    let p: Vec<char> = pat.chars().collect();
    let n = p.len();
    let mut out: Vec<Tok> = Vec::new();
    let push_lit = |out: &mut Vec<Tok>, c: char| match out.last_mut() {
        Some(Tok::Lit(s)) => s.push(c),
        _ => out.push(Tok::Lit(c.to_string())),
    };
    let mut i = 0;
    while i < n {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if !matches!(out.last(), Some(Tok::Star)) {
                    out.push(Tok::Star);
                }
            }
            '?' => out.push(Tok::One),
            '[' => {
                let mut j = i;
                if j < n && p[j] == '!' {
                    j += 1;
                }
                if j < n && p[j] == ']' {
                    j += 1;
                }
                while j < n && p[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    push_lit(&mut out, '[');
                    continue;
                }
                out.push(compile_class(&p[i..j]));
                i = j + 1;
            }
            c => push_lit(&mut out, c),
        }
    }
    out
}

/// The set between `[` and `]` (`stuff` may start with `!`).
fn compile_class(stuff: &[char]) -> Tok {
    let negated = stuff.first() == Some(&'!');
    // Chunks split at range hyphens, as fnmatch does: the first char after `[` / `[!` and
    // the char right after a range hyphen cannot start a range hyphen themselves.
    let mut chunks: Vec<Vec<char>> = Vec::new();
    let (mut i, mut k) = (0usize, if negated { 2 } else { 1 });
    if stuff.contains(&'-') {
        loop {
            let found = (k..stuff.len()).find(|&x| stuff[x] == '-');
            let Some(h) = found else { break };
            chunks.push(stuff[i..h].to_vec());
            i = h + 1;
            k = h + 3;
        }
        let last = stuff[i.min(stuff.len())..].to_vec();
        if last.is_empty() {
            if let Some(prev) = chunks.last_mut() {
                prev.push('-');
            }
        } else {
            chunks.push(last);
        }
        // Remove empty (reversed) ranges.
        let mut c = chunks.len();
        while c > 1 {
            c -= 1;
            let (a_last, b_first) = (chunks[c - 1].last().copied(), chunks[c].first().copied());
            if let (Some(a), Some(b)) = (a_last, b_first) {
                if a > b {
                    let tail: Vec<char> = chunks[c][1..].to_vec();
                    let prev = &mut chunks[c - 1];
                    prev.pop();
                    prev.extend(tail);
                    chunks.remove(c);
                }
            }
        }
    } else {
        chunks.push(stuff.to_vec());
    }
    // Flatten: a range joins the last char of one chunk and the first of the next.
    let mut items: Vec<char> = Vec::new();
    let mut ranges = Vec::new();
    let flat_len: usize = chunks.iter().map(Vec::len).sum();
    for (ci, chunk) in chunks.iter().enumerate() {
        for (xi, &ch) in chunk.iter().enumerate() {
            let joins_prev = ci > 0 && xi == 0;
            let joins_next = ci + 1 < chunks.len() && xi + 1 == chunk.len();
            if joins_prev {
                continue; // consumed as a range end below
            }
            if joins_next {
                let hi = chunks[ci + 1][0];
                ranges.push((ch, hi));
            } else {
                items.push(ch);
            }
        }
    }
    if negated {
        // Drop the leading '!' (it was the first item, never part of a range: k started
        // past it).
        if let Some(pos) = items.iter().position(|c| *c == '!') {
            items.remove(pos);
        }
    }
    if flat_len == 0 {
        // `[z-a]` collapsed to nothing: never matches.
        return Tok::Class(Class {
            negated: false,
            chars: Vec::new(),
            ranges: Vec::new(),
        });
    }
    if negated && items.is_empty() && ranges.is_empty() {
        // `[!z-a]`: any character.
        return Tok::One;
    }
    Tok::Class(Class {
        negated,
        chars: items,
        ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        GlobPattern::new(p).unwrap().matches(s)
    }

    /// Expectations checked against graphite-web's `match_entries` / Python 3.11 `fnmatch`.
    #[test]
    fn node_table() {
        let table: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "abc", true),
            ("a*", "abc", true),
            ("a*", "ba", false),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abbc", true),
            ("a*c", "acb", false),
            ("ab*bc", "abc", false),
            ("?", "a", true),
            ("?", "", false),
            ("?", "é", true),
            ("a?c", "abc", true),
            ("a??", "ab", false),
            ("*a*b*", "xxaxxbxx", true),
            ("*a*b*", "xxbxxaxx", false),
            ("[abc]", "b", true),
            ("[abc]", "d", false),
            ("[!abc]", "d", true),
            ("[!abc]", "a", false),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[!a-c]", "d", true),
            ("[]]", "]", true),
            ("[!]]", "a", true),
            ("[!]]", "]", false),
            ("[a-]", "-", true),
            ("[-a]", "-", true),
            ("[a-c-e]", "-", true),
            ("[a-c-e]", "d", false),
            ("[a-c-e]", "e", true),
            ("[z-a]", "z", false),
            ("[z-a]", "-", false),
            ("[!z-a]", "q", true),
            ("[^a]", "^", true),
            ("[^a]", "b", false),
            ("[", "[", true),
            ("a[b", "a[b", true),
            ("[!]", "[!]", true),
            ("[*]", "*", true),
            ("[*]", "a", false),
            ("cpu[0-9][0-9]", "cpu17", true),
            ("cpu[0-9][0-9]", "cpu1", false),
            ("{a,b}", "a", true),
            ("{a,b}", "c", false),
            ("x{a,b}y", "xby", true),
            ("{a,{b,c}}", "c", true),
            ("{a,b", "{a,b", true),
            ("{a,b}*", "bzz", true),
            ("{,a}x", "x", true),
            ("}{", "}{", true),
            ("{a*,b}", "azz", true),
            ("{a*,b}", "bzz", false),
            ("a\\*", "ab", true), // backslashes are dropped, so this is `a*`
        ];
        for (p, s, want) in table {
            assert_eq!(m(p, s), *want, "pattern {p:?} on {s:?}");
        }
    }

    #[test]
    fn path_table() {
        let table: &[(&str, &str, bool)] = &[
            ("servers.*.cpu", "servers.web1.cpu", true),
            ("servers.*.cpu", "servers.web1.x.cpu", false),
            ("servers.*", "servers.web1.cpu", false),
            ("servers.*", "servers", false),
            ("*", "a.b", false),
            ("a.*.c", "a..c", true),
            ("a.{b,c}.d", "a.c.d", true),
            ("a.{b.x,c}.d", "a.b.x.d", false), // braces never span a dot
            ("a.**", "a", false),
            ("a.**", "a.b", true),
            ("a.**", "a.b.c.d", true),
            ("a.**.d", "a.d", true),
            ("a.**.d", "a.b.c.d", true),
            ("a.**.d", "a.b.c.e", false),
            ("**.cpu", "x.y.cpu", true),
            ("**", "x", true),
            (
                "servers.web[1-3].{cpu,mem}.*",
                "servers.web2.mem.used",
                true,
            ),
            (
                "servers.web[1-3].{cpu,mem}.*",
                "servers.web4.mem.used",
                false,
            ),
        ];
        for (p, s, want) in table {
            assert_eq!(m(p, s), *want, "pattern {p:?} on {s:?}");
        }
    }

    #[test]
    fn globstar_over_long_paths() {
        let long = vec!["n"; 100].join(".");
        assert!(m("**.n", &long));
        assert!(m("n.**", &long));
        assert!(!m("**.x", &long));
        let g = GlobPattern::new("a.**.b.**.c").unwrap();
        assert!(g.matches("a.b.c") && g.matches("a.x.b.y.z.c") && !g.matches("a.c.b"));
    }

    #[test]
    fn literal_and_nodes() {
        let g = GlobPattern::new("a.b.c").unwrap();
        assert!(g.is_literal());
        assert_eq!(g.nodes().len(), 3);
        assert_eq!(g.nodes()[1].literal(), Some("b"));
        assert!(!GlobPattern::new("a.{b,c}").unwrap().is_literal());
        assert!(GlobPattern::new("a.{b}").unwrap().is_literal());
        let many: String = format!(
            "x.{{{}}}",
            (0..20).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        );
        let g = GlobPattern::new(&many).unwrap();
        assert!(matches!(
            g.nodes()[1],
            NodePattern::OneOf(LiteralSet::Many(_))
        ));
        assert!(g.matches("x.17") && !g.matches("x.20"));
    }

    #[test]
    fn expansion_is_bounded() {
        let bomb = "{a,b}".repeat(20); // 2^20 variants in one node
        let e = GlobPattern::new(&bomb).unwrap_err();
        assert!(e.to_string().contains("variants"), "{e}");
        // Across nodes nothing multiplies: each node is matched on its own.
        let wide = ["{a,b,c,d}"; 30].join(".");
        assert!(GlobPattern::new(&wide).is_ok());
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        assert!(GlobPattern::new(&long).is_err());
        // ... but all the nodes' variants together are capped, and so are `**` and nodes.
        let node = "{0,1,2,3,4,5,6,7,8,9}".repeat(3); // 1000 variants
        let e = GlobPattern::new(&[node.as_str(); 11].join(".")).unwrap_err();
        assert!(e.to_string().contains("in all"), "{e}");
        assert!(GlobPattern::new(&[node.as_str(); 10].join(".")).is_ok());
        let e = GlobPattern::new(&["**"; MAX_GLOBSTARS + 1].join(".a.")).unwrap_err();
        assert!(e.to_string().contains("`**`"), "{e}");
        assert!(GlobPattern::new(&["**"; MAX_GLOBSTARS].join(".a.")).is_ok());
        assert!(GlobPattern::new(&["a"; MAX_NODES + 1].join(".")).is_err());
    }

    #[test]
    fn brace_expansion_matches_graphite() {
        let mut v = expand_braces("x{a,{b,c}}y", 100).unwrap();
        v.sort();
        assert_eq!(v, ["xay", "xby", "xcy"]);
        let mut v = expand_braces("{a,b}{c,d}", 100).unwrap();
        v.sort();
        assert_eq!(v, ["ac", "ad", "bc", "bd"]);
        assert_eq!(expand_braces("{a,a}", 100).unwrap(), ["a"]);
        assert_eq!(expand_braces("{a,b}{c,d}", 3), None);
    }

    #[test]
    fn fuzz_regressions() {
        // Duplicate-only expansions used to take exponential time (fuzz timeout).
        let dup = "{,}".repeat(40);
        assert!(GlobPattern::new(&dup).is_err());
        let found = "{a,{{a,{b,c}}b,,}}ries(tsex{1,2}), x{1,2}, s{1,ariZ\0\0\0\0\0\0es(t{0,2}), \
                     x{,1},1 s{1,2}, scarieries(tsex{1,2}), x{1,2}, s{1,aries(t{0,2}), x{,1},1 },},\
                     s{1,s(tsex{1,2}), x{1,2}, scaries(dem";
        assert!(GlobPattern::new(found).is_err());
    }
}
