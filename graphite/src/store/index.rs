//! The series index: a trie of path nodes, matched the way graphite-web's standard finder
//! walks a whisper directory tree.
//!
//! Patterns are compiled by [`crate::glob::GlobPattern`] — the crate's one copy of
//! graphite-web's glob rules (backslashes dropped, split on `.` first so a glob never crosses
//! a dot, `{…}` groups expanded, each variant a Python `fnmatch`, `**` for any depth) — and
//! the trie is walked node by node with its [`NodePattern`]s: a literal or a brace set of
//! literals is an exact child lookup, a wildcard scans the children.

use std::collections::{HashMap, HashSet};

use crate::glob::{GlobPattern, NodePattern};

/// One answer of [`Index::find`]: graphite-web's `BranchNode` / `LeafNode`. A path that is both
/// a series and a prefix of others is returned twice, once of each kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindNode {
    pub path: String,
    pub is_leaf: bool,
}

#[derive(Debug, Default)]
struct Node {
    /// Unordered (answers are sorted at the end): a hash lookup per node on insert and on
    /// literal pattern nodes.
    children: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
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
}

impl Default for Index {
    fn default() -> Self {
        Index {
            nodes: vec![Node::default()],
            len: 0,
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
        let mut cur = 0usize;
        for part in path.split('.') {
            cur = match self.nodes[cur].children.get(part) {
                Some(&n) => n as usize,
                None => {
                    let n = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[cur].children.insert(part.into(), n as u32);
                    n
                }
            };
        }
        if self.nodes[cur].series.replace(id).is_none() {
            self.len += 1;
            if !path.contains(';') {
                let mut n = 0usize;
                self.nodes[0].plain += 1;
                for part in path.split('.') {
                    n = self.nodes[n].children.get(part).map_or(0, |&c| c as usize);
                    self.nodes[n].plain += 1;
                }
            }
        }
    }

    /// The series id of an exact path.
    pub fn get(&self, path: &str) -> Option<u64> {
        let mut cur = 0usize;
        for part in path.split('.') {
            cur = *self.nodes[cur].children.get(part)? as usize;
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
                            cp.push_str(name);
                            stack.push((child as usize, cp));
                        }
                    }
                }
            }
            NodePattern::Literal(name) => {
                if let Some(&child) = self.nodes[node].children.get(name.as_str()) {
                    self.descend(name, child, rest, path, seen, visit);
                }
            }
            NodePattern::OneOf(set) => {
                for name in set.names() {
                    if let Some(&child) = self.nodes[node].children.get(name) {
                        self.descend(name, child, rest, path, seen, visit);
                    }
                }
            }
            NodePattern::Glob(_) => {
                for (name, &child) in &self.nodes[node].children {
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
    pub fn find(&self, pattern: &GlobPattern) -> Vec<FindNode> {
        let mut out = Vec::new();
        self.walk(pattern, |path, node| {
            if path.contains(';') {
                return;
            }
            let own = u32::from(node.series.is_some());
            if !node.children.is_empty() && node.plain > own {
                out.push(FindNode {
                    path: path.to_owned(),
                    is_leaf: false,
                });
            }
            if node.series.is_some() {
                out.push(FindNode {
                    path: path.to_owned(),
                    is_leaf: true,
                });
            }
        });
        // Equal entries are identical: an unstable sort gives the same order.
        out.sort_unstable();
        out.dedup();
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
        ix.find(&GlobPattern::new(pattern).unwrap())
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
                .into_iter()
                .map(|n| (n.path, n.is_leaf))
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
