//! The series index: a trie of path nodes, matched the way graphite-web's standard finder
//! walks a whisper directory tree.
//!
//! Patterns are compiled by [`crate::glob::GlobPattern`] — the crate's one copy of
//! graphite-web's glob rules (backslashes dropped, split on `.` first so a glob never crosses
//! a dot, `{…}` groups expanded, each variant a Python `fnmatch`, `**` for any depth) — and
//! the trie is walked node by node with its [`NodePattern`]s: a literal or a brace set of
//! literals is an exact child lookup, a wildcard scans the children.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};

use crate::glob::{GlobPattern, NodePattern};

/// One answer of [`Index::find`]: graphite-web's `BranchNode` / `LeafNode`. A path that is both
/// a series and a prefix of others is returned twice, once of each kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindNode {
    pub path: String,
    pub is_leaf: bool,
}

/// [`Index::find`]'s answer: the nodes sorted by path (a branch before the leaf of the same
/// path), every path in one shared buffer with where its last node's name starts, so an
/// answer of 100k nodes is two allocations and its names need no search.
#[derive(Debug, Default, Clone)]
pub struct Found {
    text: String,
    nodes: Vec<Span>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    name: usize,
    end: usize,
    is_leaf: bool,
}

/// One node of a [`Found`]: its path, the path's last node (`name`), and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundNode<'a> {
    pub path: &'a str,
    pub name: &'a str,
    pub is_leaf: bool,
}

impl Found {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes in order (by path, unless built from another order by `from_iter`).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = FoundNode<'_>> + '_ {
        self.nodes.iter().map(|s| FoundNode {
            path: &self.text[s.start..s.end],
            name: &self.text[s.name..s.end],
            is_leaf: s.is_leaf,
        })
    }

    /// Keeps the leaves only (`leavesOnly`).
    pub fn retain_leaves(&mut self) {
        self.nodes.retain(|s| s.is_leaf);
    }

    /// Each node as its own [`FindNode`].
    pub fn to_nodes(&self) -> Vec<FindNode> {
        self.iter()
            .map(|n| FindNode {
                path: n.path.to_string(),
                is_leaf: n.is_leaf,
            })
            .collect()
    }

    /// Appends `path` once, as a branch and/or a leaf.
    fn push(&mut self, path: &str, branch: bool, leaf: bool) {
        if !branch && !leaf {
            return;
        }
        let start = self.text.len();
        self.text.push_str(path);
        let end = self.text.len();
        let name = path.rfind('.').map_or(start, |i| start + i + 1);
        for is_leaf in [false, true] {
            if (is_leaf && leaf) || (!is_leaf && branch) {
                self.nodes.push(Span {
                    start,
                    name,
                    end,
                    is_leaf,
                });
            }
        }
    }

    /// Sorted by (path, kind) and deduplicated; a walk in name order is so already, which
    /// one pass over the adjacent paths (one buffer, read in order) checks.
    fn sort_dedup(&mut self) {
        let Found { text, nodes } = self;
        let key = |s: &Span| (&text[s.start..s.end], s.is_leaf);
        if nodes.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
            return;
        }
        nodes.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        nodes.dedup_by(|a, b| key(a) == key(b));
    }
}

impl FromIterator<FindNode> for Found {
    /// The nodes sorted by path and deduplicated, as [`Index::find`] answers.
    fn from_iter<I: IntoIterator<Item = FindNode>>(iter: I) -> Self {
        let mut out = Found::default();
        for n in iter {
            out.push(&n.path, !n.is_leaf, n.is_leaf);
        }
        out.sort_dedup();
        out
    }
}

/// A child's name in its parent's map: up to 22 bytes inline (most path nodes: `host123`,
/// `cpu`, `user`), so the names of one node's children lie together in the map's own nodes
/// and a walk over them reads memory in order; longer names are boxed.
#[derive(Debug, Clone)]
enum Key {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

const INLINE: usize = 22;
const _: () = assert!(std::mem::size_of::<Key>() == 24);

impl Key {
    fn new(name: &str) -> Key {
        match u8::try_from(name.len()) {
            Ok(n) if name.len() <= INLINE => {
                let mut b = [0; INLINE];
                b[..name.len()].copy_from_slice(name.as_bytes());
                Key::Inline(n, b)
            }
            _ => Key::Heap(name.as_bytes().into()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Key::Inline(n, b) => &b[..usize::from(*n)],
            Key::Heap(b) => b,
        }
    }

    fn as_str(&self) -> &str {
        // SAFETY: a key's bytes are a whole `&str`'s, copied by `Key::new`.
        unsafe { std::str::from_utf8_unchecked(self.bytes()) }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Byte order, which is `str`'s and Python's code point order.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

#[derive(Debug, Default)]
struct Node {
    /// In name order: a walk visits children in the order of graphite-web's answers, so a
    /// find of one node's children needs no sort.
    children: BTreeMap<Key, u32>,
    series: Option<u64>,
    /// Untagged series (paths without `;`) at or below this node: a branch only tagged
    /// series made is left out of [`Index::find`], as graphite-web's tree has none.
    plain: u32,
}

/// A trie of dotted paths. Node 0 is the root.
#[derive(Debug)]
pub struct Index {
    nodes: Vec<Node>,
    len: usize,
    /// The nodes of the last inserted path, and where each of its nodes' names ends: the
    /// next path starts from the longest whole-node prefix they share (series of one host
    /// come together, at open and from an agent).
    last: String,
    chain: Vec<(usize, u32)>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            nodes: vec![Node::default()],
            len: 0,
            last: String::new(),
            chain: Vec::new(),
        }
    }
}

impl Index {
    /// Number of series.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add (or re-point) a series path.
    pub fn insert(&mut self, path: &str, id: u64) {
        // The nodes shared with the last path: its chain up to the first name that differs.
        let mut keep = 0;
        let mut start = 0;
        for &(end, _) in &self.chain {
            let same = path.len() >= end
                && self.last.as_bytes()[start..end] == path.as_bytes()[start..end]
                && matches!(path.as_bytes().get(end), Some(b'.'));
            if !same {
                break;
            }
            keep += 1;
            start = end + 1;
        }
        self.chain.truncate(keep);
        let mut cur = self.chain.last().map_or(0, |&(_, n)| n as usize);
        let mut at = start;
        for part in path[start..].split('.') {
            cur = match self.nodes[cur].children.get(part.as_bytes()) {
                Some(&n) => n as usize,
                None => {
                    let n = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[cur].children.insert(Key::new(part), n as u32);
                    n
                }
            };
            at += part.len();
            self.chain.push((at, cur as u32));
            at += 1;
        }
        self.last.clear();
        self.last.push_str(path);
        if self.nodes[cur].series.replace(id).is_none() {
            self.len += 1;
            if !path.contains(';') {
                self.nodes[0].plain += 1;
                for &(_, n) in &self.chain {
                    self.nodes[n as usize].plain += 1;
                }
            }
        }
    }

    /// The series id of an exact path.
    pub fn get(&self, path: &str) -> Option<u64> {
        let mut cur = 0usize;
        for part in path.split('.') {
            cur = *self.nodes[cur].children.get(part.as_bytes())? as usize;
        }
        self.nodes[cur].series
    }

    /// Visit every node matching `pattern` as `(path, node)` (possibly more than once
    /// with several `**`).
    fn walk(&self, pattern: &GlobPattern, mut visit: impl FnMut(&str, &Node)) {
        let mut path = String::new();
        let mut seen = HashSet::new();
        self.walk_rec(0, pattern.nodes(), &mut path, &mut seen, &mut visit);
    }

    fn walk_rec(
        &self,
        node: usize,
        pats: &[NodePattern],
        path: &mut String,
        seen: &mut HashSet<(usize, usize)>,
        visit: &mut impl FnMut(&str, &Node),
    ) {
        let Some((first, rest)) = pats.split_first() else {
            visit(path, &self.nodes[node]);
            return;
        };
        match first {
            // `**`: the rest of the pattern from this node and from every branch below it,
            // as graphite-web's globstar walks directories (GlobPattern gives a terminal
            // `**` its `*`). `seen` keeps several `**` from walking a subtree twice.
            NodePattern::GlobStar => {
                let mut stack = vec![(node, path.clone())];
                while let Some((n, mut p)) = stack.pop() {
                    if !seen.insert((n, rest.len())) {
                        continue;
                    }
                    self.walk_rec(n, rest, &mut p, seen, visit);
                    for (name, &child) in &self.nodes[n].children {
                        if !self.nodes[child as usize].children.is_empty() {
                            let mut cp = p.clone();
                            if !cp.is_empty() {
                                cp.push('.');
                            }
                            cp.push_str(name.as_str());
                            stack.push((child as usize, cp));
                        }
                    }
                }
            }
            NodePattern::Literal(name) => {
                if let Some(&child) = self.nodes[node].children.get(name.as_bytes()) {
                    self.descend(name, child, rest, path, seen, visit);
                }
            }
            NodePattern::OneOf(set) => {
                for name in set.names() {
                    if let Some(&child) = self.nodes[node].children.get(name.as_bytes()) {
                        self.descend(name, child, rest, path, seen, visit);
                    }
                }
            }
            NodePattern::Glob(_) => {
                for (name, &child) in &self.nodes[node].children {
                    let name = name.as_str();
                    if first.matches(name) {
                        self.descend(name, child, rest, path, seen, visit);
                    }
                }
            }
        }
    }

    fn descend(
        &self,
        name: &str,
        child: u32,
        rest: &[NodePattern],
        path: &mut String,
        seen: &mut HashSet<(usize, usize)>,
        visit: &mut impl FnMut(&str, &Node),
    ) {
        let base = path.len();
        if base > 0 {
            path.push('.');
        }
        path.push_str(name);
        self.walk_rec(child as usize, rest, path, seen, visit);
        path.truncate(base);
    }

    /// graphite-web's `find`: branch and leaf nodes matching `pattern`, sorted by path.
    /// Tagged series (`name;tag=value`) are not in the tree (graphite-web keeps them out of
    /// its directory tree): neither their leaves nor branches only they make.
    pub fn find(&self, pattern: &GlobPattern) -> Found {
        let mut out = Found::default();
        self.walk(pattern, |path, node| {
            if path.contains(';') {
                return;
            }
            let own = u32::from(node.series.is_some());
            let branch = !node.children.is_empty() && node.plain > own;
            out.push(path, branch, node.series.is_some());
        });
        out.sort_dedup();
        out
    }

    /// The series (path, id) matching `pattern`, sorted by path.
    pub fn expand(&self, pattern: &GlobPattern) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        self.walk(pattern, |path, node| {
            if let Some(id) = node.series {
                out.push((path.to_owned(), id));
            }
        });
        // Equal entries are identical: an unstable sort gives the same order.
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(ix: &Index, pattern: &str) -> Vec<(String, u64)> {
        ix.expand(&GlobPattern::new(pattern).unwrap())
    }

    fn find(ix: &Index, pattern: &str) -> Vec<FindNode> {
        ix.find(&GlobPattern::new(pattern).unwrap()).to_nodes()
    }

    fn index(paths: &[&str]) -> Index {
        let mut ix = Index::default();
        for (i, p) in paths.iter().enumerate() {
            ix.insert(p, i as u64);
        }
        ix
    }

    const PATHS: &[&str] = &[
        "servers.web1.cpu.user",
        "servers.web1.cpu.system",
        "servers.web2.cpu.user",
        "servers.db1.cpu.user",
        "servers.db1.load",
        "servers.web10.cpu.user",
        "servers.w.cpu.user",
        "servers.{x}.cpu.user",
        "servers.[a].cpu.user",
        "other.web1.cpu.user",
    ];

    #[test]
    fn expand_table_matches_graphite_web() {
        let ix = index(PATHS);
        let cases: &[(&str, &[&str])] = &[
            ("servers.web1.cpu.user", &["servers.web1.cpu.user"]),
            ("servers.web1.cpu", &[]),
            (
                "servers.web*.cpu.user",
                &[
                    "servers.web1.cpu.user",
                    "servers.web10.cpu.user",
                    "servers.web2.cpu.user",
                ],
            ),
            (
                "servers.web?.cpu.user",
                &["servers.web1.cpu.user", "servers.web2.cpu.user"],
            ),
            (
                "servers.web[12].cpu.user",
                &["servers.web1.cpu.user", "servers.web2.cpu.user"],
            ),
            ("servers.web[!1].cpu.user", &["servers.web2.cpu.user"]),
            (
                "servers.web[0-1]*.cpu.user",
                &["servers.web1.cpu.user", "servers.web10.cpu.user"],
            ),
            (
                "servers.{web1,db1}.cpu.user",
                &["servers.db1.cpu.user", "servers.web1.cpu.user"],
            ),
            (
                "servers.{web,db}1.cpu.user",
                &["servers.db1.cpu.user", "servers.web1.cpu.user"],
            ),
            (
                "servers.web{1,2}.cpu.{user,system}",
                &[
                    "servers.web1.cpu.system",
                    "servers.web1.cpu.user",
                    "servers.web2.cpu.user",
                ],
            ),
            ("servers.db1.{cpu,load}", &["servers.db1.load"]),
            // `*` never crosses a dot.
            ("servers.*", &[]),
            ("servers.*.load", &["servers.db1.load"]),
            (
                "*.web1.cpu.user",
                &["other.web1.cpu.user", "servers.web1.cpu.user"],
            ),
            // Braces are split on dots first: `{web1.cpu,x}` is two nodes, both literal text.
            ("servers.{web1.cpu,x}.user", &[]),
            // Backslashes are dropped, then `[a]` is a set matching `a`: no match for `[a]`.
            ("servers.\\[a\\].cpu.user", &[]),
            // An unclosed `[` is literal.
            ("servers.[a.cpu.user", &[]),
            // A literal node with braces of no comma: `{x}` expands to `x`.
            ("servers.{x}.cpu.user", &[]),
            ("servers.w.cpu.user", &["servers.w.cpu.user"]),
            (
                "servers.**.user",
                &[
                    "servers.[a].cpu.user",
                    "servers.db1.cpu.user",
                    "servers.w.cpu.user",
                    "servers.web1.cpu.user",
                    "servers.web10.cpu.user",
                    "servers.web2.cpu.user",
                    "servers.{x}.cpu.user",
                ],
            ),
        ];
        for (pattern, want) in cases {
            let got: Vec<String> = expand(&ix, pattern).into_iter().map(|(p, _)| p).collect();
            assert_eq!(got, *want, "pattern {pattern}");
        }
    }

    #[test]
    fn fnmatch_nodes() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("*x", "xxx", true),
            ("[]a]", "]", true),
            ("[!]a]", "b", true),
            ("[!]a]", "a", false),
            ("[a-c]z", "bz", true),
            ("[a-c]z", "dz", false),
            // graphite-web 1.1 expands every brace group (`expand_braces`), not only the
            // first one as 1.0's `match_entries` did.
            ("{a,b}{c,d}", "ac", true),
            ("{a,b}{c,d}", "bd", true),
            ("{a,b}{c,d}", "a{c,d}", false),
            ("x{}", "x", true),
            ("ab?", "abc", true),
            ("ab?", "ab", false),
            ("{", "{", true),
            // Python 3.7+ fnmatch: `^` after `[` is a literal, not a negation.
            ("[^a]", "^", true),
            ("[^a]", "b", false),
        ];
        for (pat, name, want) in cases {
            let g = GlobPattern::new(pat).unwrap();
            assert_eq!(g.nodes()[0].matches(name), *want, "{pat} vs {name}");
        }
    }

    #[test]
    fn several_globstars_and_brace_sets() {
        let ix = index(PATHS);
        let all: Vec<String> = expand(&ix, "**").into_iter().map(|(p, _)| p).collect();
        assert_eq!(all.len(), PATHS.len());
        // `**.**.user` visits subtrees more than once; each series is returned once.
        assert_eq!(expand(&ix, "**.**.user"), expand(&ix, "**.user"));
        assert_eq!(
            expand(&ix, "servers.{db1,web2,nope}.cpu.user")
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>(),
            vec!["servers.db1.cpu.user", "servers.web2.cpu.user"]
        );
    }

    #[test]
    fn find_returns_branches_and_leaves() {
        let ix = index(&["a.b", "a.b.c", "a.d"]);
        let got = find(&ix, "a.*");
        let want = vec![
            FindNode {
                path: "a.b".into(),
                is_leaf: false,
            },
            FindNode {
                path: "a.b".into(),
                is_leaf: true,
            },
            FindNode {
                path: "a.d".into(),
                is_leaf: true,
            },
        ];
        assert_eq!(got, want);
        assert_eq!(
            find(&ix, "*"),
            vec![FindNode {
                path: "a".into(),
                is_leaf: false
            }]
        );
        assert_eq!(ix.get("a.b"), Some(0));
        assert_eq!(ix.get("a"), None);
        assert_eq!(ix.len(), 3);
    }

    #[test]
    fn hundred_thousand_series() {
        let mut ix = Index::default();
        for h in 0..1000 {
            for m in 0..100 {
                ix.insert(
                    &format!("servers.host{h:04}.metric{m:03}.value"),
                    h * 100 + m,
                );
            }
        }
        assert_eq!(ix.len(), 100_000);
        assert_eq!(expand(&ix, "servers.host0042.*.value").len(), 100);
        assert_eq!(expand(&ix, "servers.*.metric007.value").len(), 1000);
        assert_eq!(
            expand(&ix, "servers.host00{1,2}?.metric00[0-4].value").len(),
            100
        );
        assert_eq!(ix.get("servers.host0999.metric099.value"), Some(99_999));
    }

    #[test]
    fn tagged_series_stay_out_of_the_tree() {
        let mut ix = Index::default();
        ix.insert("cpu;host=h1", 1);
        ix.insert("disk.used;host=h1;dc=x.y", 2);
        ix.insert("servers.a.cpu", 3);
        ix.insert("servers.b;role=web", 4);
        let find = |ix: &Index, p: &str| -> Vec<(String, bool)> {
            ix.find(&GlobPattern::new(p).unwrap())
                .iter()
                .map(|n| (n.path.to_string(), n.is_leaf))
                .collect()
        };
        assert_eq!(find(&ix, "*"), [("servers".to_string(), false)]);
        assert_eq!(find(&ix, "servers.*"), [("servers.a".to_string(), false)]);
        assert!(find(&ix, "disk.*").is_empty());
        assert_eq!(find(&ix, "**").len(), 3, "{:?}", find(&ix, "**"));
        // Re-pointing a series does not count it twice.
        ix.insert("servers.a.cpu", 5);
        assert_eq!(find(&ix, "servers.*"), [("servers.a".to_string(), false)]);
    }
}
