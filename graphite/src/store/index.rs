//! The series index: a trie of path nodes, matched the way graphite-web's standard finder
//! walks a whisper directory tree.
//!
//! graphite-web (`finders/standard.py`, `finders/__init__.py`): backslashes are removed from
//! the pattern, it is split on `.` *before* anything else (so a glob never crosses a `.`), and
//! each node is matched against the children of the current directory: a node without any of
//! `{ [ * ?` is an exact lookup; otherwise its first `{…}` group (first `{`, first `}` after
//! it) is expanded into variants, each matched with Python's `fnmatch` (`*`, `?`, `[seq]`,
//! `[!seq]`; an unclosed `[` is literal; further braces are literal). `**` as a whole node
//! matches any depth.
//!
//! Node matching goes through [`NodeMatcher`] so the index can switch to `graphite::glob`
//! (the target language's `GlobPattern`) with a one-line change in [`compile_node`].

use std::collections::BTreeMap;

/// Matches one path node (the text between two dots).
pub trait NodeMatcher {
    /// `Some(name)` when the node is a plain name (exact lookup, no scan).
    fn literal(&self) -> Option<&str>;
    fn matches(&self, name: &str) -> bool;
}

/// Compile one pattern node. The single place to swap in another glob implementation.
pub fn compile_node(node: &str) -> Box<dyn NodeMatcher + Send + Sync> {
    Box::new(FnmatchNode::new(node))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// graphite-web's `match_entries`: first-brace-group variants, each a Python fnmatch.
#[derive(Debug, Clone)]
pub struct FnmatchNode {
    literal: Option<String>,
    variants: Vec<Vec<Tok>>,
}

impl FnmatchNode {
    pub fn new(node: &str) -> FnmatchNode {
        if !node.contains(['{', '[', '*', '?']) {
            return FnmatchNode {
                literal: Some(node.to_owned()),
                variants: Vec::new(),
            };
        }
        let mut variants = Vec::new();
        match (node.find('{'), node.find('}')) {
            (Some(open), Some(close)) if close > open => {
                for v in node[open + 1..close].split(',') {
                    let text = format!("{}{}{}", &node[..open], v, &node[close + 1..]);
                    variants.push(translate(&text));
                }
            }
            _ => variants.push(translate(node)),
        }
        FnmatchNode {
            literal: None,
            variants,
        }
    }
}

impl NodeMatcher for FnmatchNode {
    fn literal(&self) -> Option<&str> {
        self.literal.as_deref()
    }

    fn matches(&self, name: &str) -> bool {
        match &self.literal {
            Some(l) => l == name,
            None => {
                let chars: Vec<char> = name.chars().collect();
                self.variants.iter().any(|v| match_toks(v, &chars))
            }
        }
    }
}

/// Python's `fnmatch.translate`, as tokens.
fn translate(pat: &str) -> Vec<Tok> {
    let p: Vec<char> = pat.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if out.last() != Some(&Tok::Star) {
                    out.push(Tok::Star);
                }
            }
            '?' => out.push(Tok::Any),
            '[' => {
                let mut j = i;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    out.push(Tok::Lit('['));
                    continue;
                }
                let mut body = &p[i..j];
                i = j + 1;
                let negated = body.first() == Some(&'!');
                if negated {
                    body = &body[1..];
                }
                let mut ranges = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        ranges.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        ranges.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(Tok::Set { negated, ranges });
            }
            c => out.push(Tok::Lit(c)),
        }
    }
    out
}

fn tok_matches(t: &Tok, c: char) -> bool {
    match t {
        Tok::Lit(l) => *l == c,
        Tok::Any => true,
        Tok::Star => true,
        Tok::Set { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Glob match with `*` backtracking to the last star only (linear for single-char tokens).
fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let (mut ti, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if ti < toks.len() && toks[ti] == Tok::Star {
            star = Some((ti, si));
            ti += 1;
        } else if ti < toks.len() && tok_matches(&toks[ti], s[si]) {
            ti += 1;
            si += 1;
        } else if let Some((st, ss)) = star {
            ti = st + 1;
            si = ss + 1;
            star = Some((st, ss + 1));
        } else {
            return false;
        }
    }
    while ti < toks.len() && toks[ti] == Tok::Star {
        ti += 1;
    }
    ti == toks.len()
}

/// One answer of [`Index::find`]: graphite-web's `BranchNode` / `LeafNode`. A path that is both
/// a series and a prefix of others is returned twice, once of each kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindNode {
    pub path: String,
    pub is_leaf: bool,
}

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<Box<str>, u32>,
    series: Option<u64>,
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

    /// Visit every node matching `pattern` as `(path, node)`.
    fn walk(&self, pattern: &str, mut visit: impl FnMut(&str, &Node)) {
        let clean = pattern.replace('\\', "");
        let parts: Vec<&str> = clean.split('.').collect();
        let matchers: Vec<Option<Box<dyn NodeMatcher + Send + Sync>>> = parts
            .iter()
            .map(|p| (*p != "**").then(|| compile_node(p)))
            .collect();
        let mut path = String::new();
        self.walk_rec(0, &matchers, &mut path, &mut visit);
    }

    fn walk_rec(
        &self,
        node: usize,
        matchers: &[Option<Box<dyn NodeMatcher + Send + Sync>>],
        path: &mut String,
        visit: &mut impl FnMut(&str, &Node),
    ) {
        let Some((first, rest)) = matchers.split_first() else {
            visit(path, &self.nodes[node]);
            return;
        };
        match first {
            // `**`: this node and every node below it, then the rest of the pattern (a
            // terminal `**` is `**.*`), as graphite-web's globstar walks directories.
            None => {
                let star: Vec<Option<Box<dyn NodeMatcher + Send + Sync>>> =
                    vec![Some(compile_node("*"))];
                let rest = if rest.is_empty() { &star[..] } else { rest };
                let mut stack = vec![(node, path.clone())];
                while let Some((n, mut p)) = stack.pop() {
                    self.walk_rec(n, rest, &mut p, visit);
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
            Some(m) => match m.literal() {
                Some(name) => {
                    if let Some(&child) = self.nodes[node].children.get(name) {
                        self.descend(name, child, rest, path, visit);
                    }
                }
                None => {
                    for (name, &child) in &self.nodes[node].children {
                        if m.matches(name) {
                            self.descend(name, child, rest, path, visit);
                        }
                    }
                }
            },
        }
    }

    fn descend(
        &self,
        name: &str,
        child: u32,
        rest: &[Option<Box<dyn NodeMatcher + Send + Sync>>],
        path: &mut String,
        visit: &mut impl FnMut(&str, &Node),
    ) {
        let base = path.len();
        if base > 0 {
            path.push('.');
        }
        path.push_str(name);
        self.walk_rec(child as usize, rest, path, visit);
        path.truncate(base);
    }

    /// graphite-web's `find`: branch and leaf nodes matching `pattern`, sorted by path.
    pub fn find(&self, pattern: &str) -> Vec<FindNode> {
        let mut out = Vec::new();
        self.walk(pattern, |path, node| {
            if !node.children.is_empty() {
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
        out.sort();
        out.dedup();
        out
    }

    /// The series (path, id) matching `pattern`, sorted by path.
    pub fn expand(&self, pattern: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        self.walk(pattern, |path, node| {
            if let Some(id) = node.series {
                out.push((path.to_owned(), id));
            }
        });
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let got: Vec<String> = ix.expand(pattern).into_iter().map(|(p, _)| p).collect();
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
            ("{a,b}{c,d}", "a{c,d}", true),
            ("{a,b}{c,d}", "ac", false),
            ("x{}", "x", true),
            ("ab?", "abc", true),
            ("ab?", "ab", false),
            ("{", "{", true),
        ];
        for (pat, name, want) in cases {
            assert_eq!(
                FnmatchNode::new(pat).matches(name),
                *want,
                "{pat} vs {name}"
            );
        }
    }

    #[test]
    fn find_returns_branches_and_leaves() {
        let ix = index(&["a.b", "a.b.c", "a.d"]);
        let got = ix.find("a.*");
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
            ix.find("*"),
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
        assert_eq!(ix.expand("servers.host0042.*.value").len(), 100);
        assert_eq!(ix.expand("servers.*.metric007.value").len(), 1000);
        assert_eq!(
            ix.expand("servers.host00{1,2}?.metric00[0-4].value").len(),
            100
        );
        assert_eq!(ix.get("servers.host0999.metric099.value"), Some(99_999));
    }
}
