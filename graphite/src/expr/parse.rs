//! The target parser: graphite-web 1.1.10's pyparsing grammar (`render/grammar_unsafe.py`)
//! re-expressed with `nom` for the tokens and a small PEG driver for the structure, plus the
//! evaluator's desugaring (pipes, `template()`), so the [`Expr`] tree is what graphite-web
//! would evaluate.
//!
//! Faithful corners (each checked against pyparsing 3.0.9 running graphite-web's grammar):
//! - ordered choice without backtracking into a committed alternative, e.g. `f(true.x)` fails
//!   because `true` is taken as a boolean;
//! - a number must be followed by `,` `)` or the end, else it is a path (`1h`, `a.1b`,
//!   `1e+3`, `-inf` are paths; `-1` and `1e3` are numbers);
//! - strings keep their backslashes and doubled quotes verbatim (graphite-web strips only the
//!   quotes);
//! - a call needs a positional argument before keyword arguments: `f(x=1)` is rejected, like
//!   graphite-web does;
//! - `=` is a path character, so `f(a, x=)` passes the path `x=`.
//!
//! Deviations: graphite-web ignores text after the longest parseable prefix
//! (`target1,target2` evaluates `target1`); [`parse`] rejects it with an error, and
//! [`parse_prefix`] offers graphite-web's behaviour. Non-ASCII characters are path
//! characters (graphite-web's `UTF8_METRICS = True`). Integers past `i64` become floats (Python's
//! are unbounded). Hostile inputs hit the `MAX_*` limits.

use std::collections::HashMap;
use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{char, digit1, one_of, satisfy};
use nom::combinator::{opt, recognize};
use nom::{IResult, Parser};

use super::ast::{Call, Expr};
use crate::series::py_float;

/// The longest target accepted, in bytes.
pub const MAX_TARGET_LEN: usize = 16 * 1024;
/// The deepest nesting of calls accepted.
pub const MAX_DEPTH: usize = 64;
/// The most paths one path's `{…}` groups may expand to (product over all groups).
pub const MAX_BRACE_EXPANSION: usize = 10_000;

/// A target that does not parse: what was expected, where, and the target itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    target: String,
    column: usize,
    message: String,
}

impl ParseError {
    /// 1-based column (in characters) of the offending position.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What went wrong, without the target and caret lines.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The target that failed to parse.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// An error about `target` at byte offset `byte` (e.g. a bad argument found after
    /// parsing, positioned with [`Spans`]); it prints with the same caret line.
    pub fn at_byte(target: &str, byte: usize, message: impl Into<String>) -> Self {
        Self::at(target, byte, message.into())
    }

    fn at(target: &str, byte: usize, message: String) -> Self {
        let byte = byte.min(target.len());
        let column = target.char_indices().take_while(|(i, _)| *i < byte).count() + 1;
        ParseError {
            target: target.to_owned(),
            column,
            message,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Show at most ~60 characters either side of the column.
        const SIDE: usize = 60;
        let chars: Vec<char> = self.target.chars().collect();
        let col0 = self.column - 1;
        let start = col0.saturating_sub(SIDE);
        let end = (col0 + SIDE).min(chars.len());
        let mut line = String::new();
        if start > 0 {
            line.push('…');
        }
        line.extend(
            chars[start..end]
                .iter()
                .map(|c| if c.is_control() { ' ' } else { *c }),
        );
        if end < chars.len() {
            line.push('…');
        }
        let pad = col0 - start + usize::from(start > 0);
        write!(
            f,
            "invalid target: {} at column {}\n  {}\n  {}^",
            self.message,
            self.column,
            line,
            " ".repeat(pad)
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole target. Templates are expanded with no external variables.
pub fn parse(target: &str) -> Result<Expr, ParseError> {
    parse_with_vars(target, &[])
}

/// Parses a whole target, expanding `template()` with external variables that override the
/// template's own defaults, as graphite-web's `template[name]=value` render parameters do.
pub fn parse_with_vars(target: &str, vars: &[(&str, &str)]) -> Result<Expr, ParseError> {
    run(target, vars, true).map(|(e, _, _)| e)
}

/// Like [`parse`], with where each node starts, for messages that point into the target
/// (`graphite::functions::check_target` puts its caret under a bad argument with it).
pub fn parse_spanned(target: &str) -> Result<(Expr, Spans), ParseError> {
    run(target, &[], true).map(|(e, _, s)| (e, s))
}

/// Where the nodes of a parsed target start: byte offsets into the target, in the shape of
/// the [`Expr`] tree (`args` / `kwargs` of a call in the call's order; empty for the rest).
/// A node substituted by `template()` starts where its variable was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans {
    /// Byte offset of the node's first character (a call: its name).
    pub start: usize,
    pub args: Vec<Spans>,
    pub kwargs: Vec<Spans>,
}

impl Spans {
    fn leaf(start: usize) -> Self {
        Spans {
            start,
            ..Spans::default()
        }
    }
}

/// graphite-web's leniency: parses the longest prefix it can and ignores the rest. Returns
/// the expression and the byte length consumed. Prefer [`parse`].
pub fn parse_prefix(target: &str, vars: &[(&str, &str)]) -> Result<(Expr, usize), ParseError> {
    run(target, vars, false).map(|(e, n, _)| (e, n))
}

fn run(
    target: &str,
    vars: &[(&str, &str)],
    whole: bool,
) -> Result<(Expr, usize, Spans), ParseError> {
    if target.len() > MAX_TARGET_LEN {
        return Err(ParseError::at(
            target,
            MAX_TARGET_LEN,
            format!(
                "target is {} bytes, longer than the {MAX_TARGET_LEN} allowed",
                target.len()
            ),
        ));
    }
    let mut p = P::new(target);
    let start = p.ws(0);
    let result = p.expression(start);
    let fail = |p: &P| {
        let (pos, msg) = match &p.fatal {
            Some((pos, msg)) => (*pos, msg.clone()),
            None => (p.fail_pos, p.expected_message()),
        };
        ParseError::at(target, pos, msg)
    };
    let (end, node) = match result {
        Ok(v) => v,
        Err(_) => return Err(fail(&p)),
    };
    let end = p.ws(end);
    if whole && end < target.len() {
        p.expect(end, EXP_END);
        return Err(fail(&p));
    }
    let ext: Vec<(String, Val)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Val::Str((*v).to_owned())))
        .collect();
    let mut len = 0;
    let (expr, spans) = resolve(node, None, &ext, &mut len)
        .map_err(|(pos, msg)| ParseError::at(target, pos, msg))?;
    Ok((expr, end, spans))
}

/// A parse tree node before template substitution.
#[derive(Debug, Clone)]
enum Node {
    Path {
        text: String,
        pos: usize,
    },
    Call {
        name: String,
        pos: usize,
        args: Vec<Node>,
        kwargs: Vec<(String, Node)>,
    },
    /// A literal and its start (byte offset).
    Lit(Expr, usize),
    Template {
        inner: Box<Node>,
        vars: Vec<(String, Val)>,
    },
}

/// How deep calls nest in `node` (0 for a path or literal). Every node the parser builds is
/// at most [`MAX_DEPTH`] deep, so this recursion is bounded.
fn height(node: &Node) -> usize {
    match node {
        Node::Path { .. } | Node::Lit(..) => 0,
        Node::Call { args, kwargs, .. } => {
            1 + args
                .iter()
                .chain(kwargs.iter().map(|(_, v)| v))
                .map(height)
                .max()
                .unwrap_or(0)
        }
        Node::Template { inner, .. } => 1 + height(inner),
    }
}

/// A template variable's value: a literal argument or an external string.
#[derive(Debug, Clone)]
enum Val {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Val {
    /// Python's `str(value)`.
    fn py_str(&self) -> String {
        match self {
            Val::Int(i) => i.to_string(),
            Val::Float(f) => py_float(*f),
            Val::Str(s) => s.clone(),
        }
    }
}

type Replacements<'a> = Option<&'a [(String, Val)]>;

/// Resolves templates. `len` counts the bytes of the paths and strings produced, so the
/// [`MAX_TARGET_LEN`] limit also holds after substitution.
fn resolve(
    node: Node,
    repl: Replacements<'_>,
    ext: &[(String, Val)],
    len: &mut usize,
) -> Result<(Expr, Spans), (usize, String)> {
    match node {
        Node::Lit(e, pos) => Ok((e, Spans::leaf(pos))),
        Node::Path { text, pos } => Ok((substitute(text, pos, repl, len)?, Spans::leaf(pos))),
        Node::Call {
            name,
            pos,
            args,
            kwargs,
        } => {
            if name == "template" {
                return Err((
                    pos,
                    "invalid template() syntax, only string/numeric arguments are allowed".into(),
                ));
            }
            let mut spans = Spans::leaf(pos);
            let mut out_args = Vec::with_capacity(args.len());
            for a in args {
                let (e, sp) = resolve(a, repl, ext, len)?;
                out_args.push(e);
                spans.args.push(sp);
            }
            let mut out_kwargs = Vec::with_capacity(kwargs.len());
            for (k, v) in kwargs {
                let (e, sp) = resolve(v, repl, ext, len)?;
                out_kwargs.push((k, e));
                spans.kwargs.push(sp);
            }
            Ok((
                Expr::Call(Call {
                    name,
                    args: out_args,
                    kwargs: out_kwargs,
                }),
                spans,
            ))
        }
        Node::Template {
            inner, mut vars, ..
        } => {
            for (k, v) in ext {
                match vars.iter_mut().find(|(n, _)| n == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => vars.push((k.clone(), v.clone())),
                }
            }
            resolve(*inner, Some(&vars), ext, len)
        }
    }
}

/// graphite-web's path substitution: in variable order, a path that *is* `$name` becomes the
/// value itself; otherwise every `$name` is replaced by `str(value)`.
fn substitute(
    mut text: String,
    pos: usize,
    repl: Replacements<'_>,
    len: &mut usize,
) -> Result<Expr, (usize, String)> {
    let too_long = |n: usize| {
        (
            pos,
            format!(
                "target is more than {n} bytes after template substitution, longer than the \
                 {MAX_TARGET_LEN} allowed"
            ),
        )
    };
    for (name, val) in repl.unwrap_or(&[]) {
        let var = format!("${name}");
        if text == var {
            if let Val::Str(s) = val {
                *len = len.saturating_add(s.len());
                if *len > MAX_TARGET_LEN {
                    return Err(too_long(*len));
                }
            }
            return match val {
                Val::Int(i) => Ok(Expr::Int(*i)),
                Val::Float(f) => Ok(Expr::Float(*f)),
                Val::Str(s) if looks_numeric(s) => {
                    s.parse::<f64>().map(Expr::Float).map_err(|_| {
                        (
                            pos,
                            format!("template variable ${name} = {s:?} is not a valid number"),
                        )
                    })
                }
                Val::Str(s) => Ok(Expr::Str(s.clone())),
            };
        }
        if text.contains(&var) {
            let value = val.py_str();
            // The length after replacing, checked before the replacement is made.
            let n = text.matches(var.as_str()).count();
            let grown = (text.len() - n * var.len()).saturating_add(n.saturating_mul(value.len()));
            if len.saturating_add(grown) > MAX_TARGET_LEN {
                return Err(too_long(len.saturating_add(grown)));
            }
            text = text.replace(&var, &value);
        }
    }
    *len = len.saturating_add(text.len());
    if *len > MAX_TARGET_LEN {
        return Err(too_long(*len));
    }
    Ok(Expr::Path(text))
}

/// `^-?[\d.]+$`
fn looks_numeric(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

// Expectation labels, a bit set.
const EXP_PATH: u16 = 1;
const EXP_LPAREN: u16 = 1 << 1;
const EXP_RPAREN: u16 = 1 << 2;
const EXP_COMMA: u16 = 1 << 3;
const EXP_ARG: u16 = 1 << 4;
const EXP_KWARG: u16 = 1 << 5;
const EXP_RBRACE: u16 = 1 << 6;
const EXP_QUOTE: u16 = 1 << 7;
const EXP_END: u16 = 1 << 8;
const EXP_LITERAL: u16 = 1 << 9;
const EXP_POSITIONAL_FIRST: u16 = 1 << 10;

const EXP_NAMES: &[(u16, &str)] = &[
    (EXP_PATH, "a metric path or function call"),
    (EXP_ARG, "an argument"),
    (
        EXP_LITERAL,
        "a number or quoted string (template() takes only those)",
    ),
    (EXP_KWARG, "a keyword argument (name=value)"),
    (EXP_LPAREN, "'('"),
    (EXP_COMMA, "','"),
    (EXP_RPAREN, "')'"),
    (EXP_RBRACE, "'}' or ','"),
    (EXP_QUOTE, "a closing quote"),
    (EXP_END, "the end of the target"),
];

/// Whitespace pyparsing skips between tokens.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Characters that end a path token (graphite-web's `symbols`) plus whitespace.
fn is_path_char(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || "(){},.'\"\\|".contains(c))
}

/// Characters a backslash may escape in a path.
fn is_escapable(c: char) -> bool {
    "(){},.'\"\\|=".contains(c)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

type Lex<'a> = IResult<&'a str, &'a str>;

fn lex_int(i: &str) -> Lex<'_> {
    recognize((opt(char('-')), digit1)).parse(i)
}

fn lex_float(i: &str) -> Lex<'_> {
    recognize((opt(char('-')), digit1, char('.'), digit1)).parse(i)
}

fn lex_sci(i: &str) -> Lex<'_> {
    recognize((alt((lex_float, lex_int)), one_of("eE"), lex_int)).parse(i)
}

fn lex_name(i: &str) -> Lex<'_> {
    recognize((
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)
}

fn lex_path_run(i: &str) -> Lex<'_> {
    take_while1(is_path_char).parse(i)
}

/// A caseless (ASCII) keyword not followed by an identifier character; returns the rest.
fn lex_keyword<'a>(i: &'a str, kw: &'static str) -> Option<&'a str> {
    let n = kw.len();
    let head = i.get(..n)?;
    if !head.eq_ignore_ascii_case(kw) {
        return None;
    }
    let rest = &i[n..];
    match rest.chars().next() {
        Some(c) if is_ident_char(c) => None,
        _ => Some(rest),
    }
}

/// Backtrack (try the next alternative) or abort the whole parse.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fail {
    Back,
    Fatal,
}

type R<T> = Result<(usize, T), Fail>;
/// An optional match: `Ok(None)` when the rule does not apply here.
type Opt<T> = Result<Option<(usize, T)>, Fail>;
type Kwarg = (String, Node);
type Lexer = fn(&str) -> Lex<'_>;

struct P<'a> {
    src: &'a str,
    fail_pos: usize,
    expected: u16,
    fatal: Option<(usize, String)>,
    depth: usize,
    memo_call: HashMap<usize, R<Node>>,
    memo_template: HashMap<usize, R<Node>>,
    memo_kwarg: HashMap<usize, R<Kwarg>>,
}

impl<'a> P<'a> {
    fn new(src: &'a str) -> Self {
        P {
            src,
            fail_pos: 0,
            expected: 0,
            fatal: None,
            depth: 0,
            memo_call: HashMap::new(),
            memo_template: HashMap::new(),
            memo_kwarg: HashMap::new(),
        }
    }

    fn rest(&self, pos: usize) -> &'a str {
        &self.src[pos..]
    }

    fn pos_of(&self, rest: &str) -> usize {
        self.src.len() - rest.len()
    }

    fn ws(&self, pos: usize) -> usize {
        pos + self.rest(pos).len() - self.rest(pos).trim_start_matches(is_ws).len()
    }

    fn peek(&self, pos: usize) -> Option<char> {
        self.rest(pos).chars().next()
    }

    fn expect(&mut self, pos: usize, what: u16) {
        if pos > self.fail_pos {
            self.fail_pos = pos;
            self.expected = what;
        } else if pos == self.fail_pos {
            self.expected |= what;
        }
    }

    fn fatal(&mut self, pos: usize, msg: String) -> Fail {
        if self.fatal.is_none() {
            self.fatal = Some((pos, msg));
        }
        Fail::Fatal
    }

    fn expected_message(&self) -> String {
        let found = match self.peek(self.fail_pos) {
            Some(c) => format!("found {c:?}"),
            None => "found the end of the target".into(),
        };
        if self.expected & EXP_POSITIONAL_FIRST != 0 {
            return format!(
                "expected a positional argument before keyword arguments (graphite-web cannot parse a call with keyword arguments only), {found}"
            );
        }
        let names: Vec<&str> = EXP_NAMES
            .iter()
            .filter(|(bit, _)| self.expected & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        let what = match names.as_slice() {
            [] => "a valid target".to_string(),
            [one] => (*one).to_string(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        };
        format!("expected {what}, {found}")
    }

    fn enter(&mut self, pos: usize) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.fatal(pos, format!("calls nested deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    /// `pipedExpression`: (template | call | path) followed by `| call` pieces.
    fn expression(&mut self, pos: usize) -> R<Node> {
        let (mut end, mut node) = match self.template(pos) {
            Err(Fail::Back) => match self.call(pos) {
                Err(Fail::Back) => self.path(pos)?,
                other => other?,
            },
            other => other?,
        };
        loop {
            let q = self.ws(end);
            if self.peek(q) != Some('|') {
                break;
            }
            let r = self.ws(q + 1);
            match self.call(r) {
                Ok((
                    e,
                    Node::Call {
                        name,
                        pos,
                        mut args,
                        kwargs,
                    },
                )) => {
                    args.insert(0, node);
                    node = Node::Call {
                        name,
                        pos,
                        args,
                        kwargs,
                    };
                    end = e;
                    // A pipe nests its left side one call deeper: counted like a call.
                    if self.depth + height(&node) > MAX_DEPTH {
                        return Err(self.fatal(
                            r,
                            format!("calls nested deeper than {MAX_DEPTH} (pipes count as calls)"),
                        ));
                    }
                }
                Ok(_) => break,
                Err(Fail::Back) => {
                    self.expect(r, EXP_PATH);
                    break;
                }
                Err(Fail::Fatal) => return Err(Fail::Fatal),
            }
        }
        Ok((end, node))
    }

    /// `pathExpression`: dot-separated elements of runs, escapes and `{a,b}` groups.
    fn path(&mut self, pos: usize) -> R<Node> {
        let mut text = String::new();
        let mut at = pos;
        let mut variants: usize = 1;
        loop {
            // One path element: (partial | enum) (enum | partial)*
            let elem_start = at;
            loop {
                if let Some((e, t)) = self.partial(at) {
                    text.push_str(&t);
                    at = e;
                } else if self.peek(at) == Some('{') {
                    match self.match_enum(at) {
                        Some((e, t, n)) => {
                            text.push_str(&t);
                            variants = variants.saturating_mul(n);
                            at = e;
                        }
                        None => break,
                    }
                } else {
                    break;
                }
            }
            if at == elem_start {
                if elem_start == pos {
                    self.expect(pos, EXP_PATH);
                    return Err(Fail::Back);
                }
                // A trailing '.' is not part of the path (delimitedList without trailing).
                text.pop();
                at -= 1;
                break;
            }
            if self.peek(at) == Some('.') {
                text.push('.');
                at += 1;
            } else {
                break;
            }
        }
        if variants > MAX_BRACE_EXPANSION {
            return Err(self.fatal(
                pos,
                format!("path expands to more than {MAX_BRACE_EXPANSION} patterns through its {{}} groups"),
            ));
        }
        Ok((at, Node::Path { text, pos }))
    }

    /// `partialPathElem`: one or more valid characters or backslash escapes.
    fn partial(&mut self, pos: usize) -> Option<(usize, String)> {
        let mut text = String::new();
        let mut at = pos;
        loop {
            let rest = self.rest(at);
            if let Ok((r, run)) = lex_path_run(rest) {
                text.push_str(run);
                at = self.pos_of(r);
                continue;
            }
            let mut cs = rest.chars();
            match (cs.next(), cs.next()) {
                (Some('\\'), Some(c)) if is_escapable(c) => {
                    text.push(c);
                    at += 1 + c.len_utf8();
                }
                _ => break,
            }
        }
        (at > pos).then_some((at, text))
    }

    /// `matchEnum`: `{` partial (`,` partial)* `}`; returns the text and alternative count.
    fn match_enum(&mut self, pos: usize) -> Option<(usize, String, usize)> {
        let mut text = String::from("{");
        let mut at = pos + 1;
        let mut n = 0usize;
        loop {
            match self.partial(at) {
                Some((e, t)) => {
                    text.push_str(&t);
                    at = e;
                    n += 1;
                }
                None => {
                    self.expect(at, EXP_PATH);
                    return None;
                }
            }
            match self.peek(at) {
                Some(',') => {
                    text.push(',');
                    at += 1;
                }
                Some('}') => {
                    text.push('}');
                    return Some((at + 1, text, n));
                }
                _ => {
                    self.expect(at, EXP_RBRACE);
                    return None;
                }
            }
        }
    }

    /// `call`: name `(` [args [`,` kwargs]] `)`. Memoized by position (PEG alternatives
    /// re-try calls at the same place; without this, nested `template(` is exponential).
    fn call(&mut self, pos: usize) -> R<Node> {
        if let Some(r) = self.memo_call.get(&pos) {
            return r.clone();
        }
        let r = self.call_inner(pos);
        if r.as_ref().err() != Some(&Fail::Fatal) {
            self.memo_call.insert(pos, r.clone());
        }
        r
    }

    fn call_inner(&mut self, pos: usize) -> R<Node> {
        let Ok((rest, name)) = lex_name(self.rest(pos)) else {
            return Err(Fail::Back);
        };
        let name = name.to_owned();
        let q = self.ws(self.pos_of(rest));
        if self.peek(q) != Some('(') {
            self.expect(q, EXP_LPAREN);
            return Err(Fail::Back);
        }
        self.enter(q)?;
        let r = self.call_body(pos, name, self.ws(q + 1));
        self.depth -= 1;
        r
    }

    fn call_body(&mut self, pos: usize, name: String, start: usize) -> R<Node> {
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        let mut end = start;
        // args: delimitedList(~kwarg + arg)
        let mut at = start;
        loop {
            match self.kwarg(at) {
                Ok(_) => {
                    if args.is_empty() {
                        self.expect(at, EXP_POSITIONAL_FIRST);
                    }
                    break;
                }
                Err(Fail::Fatal) => return Err(Fail::Fatal),
                Err(Fail::Back) => {}
            }
            match self.arg(at) {
                Ok((e, node)) => {
                    args.push(node);
                    end = e;
                }
                Err(Fail::Back) => break,
                Err(Fail::Fatal) => return Err(Fail::Fatal),
            }
            let c = self.ws(end);
            if self.peek(c) != Some(',') {
                self.expect(c, EXP_COMMA | EXP_RPAREN);
                break;
            }
            at = self.ws(c + 1);
        }
        // Optional(comma + kwargs), only after at least one positional argument.
        if !args.is_empty() {
            let c = self.ws(end);
            if self.peek(c) == Some(',') {
                let mut at = self.ws(c + 1);
                loop {
                    match self.kwarg(at) {
                        Ok((e, kv)) => {
                            kwargs.push(kv);
                            end = e;
                        }
                        Err(Fail::Back) => {
                            self.expect(at, EXP_KWARG);
                            break;
                        }
                        Err(Fail::Fatal) => return Err(Fail::Fatal),
                    }
                    let c = self.ws(end);
                    if self.peek(c) != Some(',') {
                        break;
                    }
                    at = self.ws(c + 1);
                }
            }
        }
        let close = self.ws(end);
        if self.peek(close) != Some(')') {
            self.expect(
                close,
                if args.is_empty() {
                    EXP_ARG | EXP_RPAREN
                } else {
                    EXP_COMMA | EXP_RPAREN
                },
            );
            return Err(Fail::Back);
        }
        if name == "seriesByTag" {
            // graphite-web fetches the call's raw text; its string arguments are the query.
            let exprs = args
                .iter()
                .filter_map(|a| match a {
                    Node::Lit(Expr::Str(s), _) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let raw = self.src.get(pos..close + 1).unwrap_or_default().to_owned();
            return Ok((close + 1, Node::Lit(Expr::SeriesByTag { raw, exprs }, pos)));
        }
        Ok((
            close + 1,
            Node::Call {
                name,
                pos,
                args,
                kwargs,
            },
        ))
    }

    /// `kwarg`: name `=` arg. Memoized by position (tried as a lookahead, then for real).
    fn kwarg(&mut self, pos: usize) -> R<Kwarg> {
        if let Some(r) = self.memo_kwarg.get(&pos) {
            return r.clone();
        }
        let r = self.kwarg_inner(pos);
        if r.as_ref().err() != Some(&Fail::Fatal) {
            self.memo_kwarg.insert(pos, r.clone());
        }
        r
    }

    fn kwarg_inner(&mut self, pos: usize) -> R<Kwarg> {
        let Ok((rest, name)) = lex_name(self.rest(pos)) else {
            return Err(Fail::Back);
        };
        let q = self.ws(self.pos_of(rest));
        if self.peek(q) != Some('=') {
            return Err(Fail::Back);
        }
        let (end, value) = self.arg(self.ws(q + 1))?;
        Ok((end, (name.to_owned(), value)))
    }

    /// `arg`: boolean | number | none | string | inf | expression.
    fn arg(&mut self, pos: usize) -> R<Node> {
        let rest = self.rest(pos);
        for (kw, value) in [("true", Expr::Bool(true)), ("false", Expr::Bool(false))] {
            if let Some(r) = lex_keyword(rest, kw) {
                return Ok((self.pos_of(r), Node::Lit(value, pos)));
            }
        }
        if let Some(r) = self.number(pos)? {
            return Ok(r);
        }
        if let Some(r) = lex_keyword(rest, "none") {
            return Ok((self.pos_of(r), Node::Lit(Expr::None, pos)));
        }
        if let Some((end, s)) = self.string(pos) {
            return Ok((end, Node::Lit(Expr::Str(s), pos)));
        }
        if let Some(r) = lex_keyword(rest, "inf") {
            return Ok((self.pos_of(r), Node::Lit(Expr::Float(f64::INFINITY), pos)));
        }
        match self.expression(pos) {
            Err(Fail::Back) => {
                self.expect(pos, EXP_ARG);
                Err(Fail::Back)
            }
            other => other,
        }
    }

    /// sci | float | int, each only when followed by `,`, `)` or the end of the line.
    fn number(&mut self, pos: usize) -> Opt<Node> {
        let rest = self.rest(pos);
        let lexers: [(Lexer, u8); 3] = [(lex_sci, 0), (lex_float, 1), (lex_int, 2)];
        for (lex, kind) in lexers {
            let Ok((r, text)) = lex(rest) else { continue };
            let end = self.pos_of(r);
            if !self.after_number(end) {
                continue;
            }
            let node = if kind == 2 {
                match text.parse::<i64>() {
                    Ok(i) => Expr::Int(i),
                    // Python ints are unbounded; past i64 a float keeps the magnitude.
                    Err(_) => Expr::Float(text.parse::<f64>().unwrap_or(f64::NAN)),
                }
            } else {
                Expr::Float(text.parse::<f64>().unwrap_or(f64::NAN))
            };
            return Ok(Some((end, Node::Lit(node, pos))));
        }
        Ok(None)
    }

    fn after_number(&self, end: usize) -> bool {
        let q = self.ws(end);
        if matches!(self.peek(q), None | Some(',') | Some(')')) {
            return true;
        }
        let r =
            end + self.rest(end).len() - self.rest(end).trim_start_matches([' ', '\t', '\r']).len();
        self.peek(r) == Some('\n')
    }

    /// pyparsing's `quotedString`; the value keeps escapes verbatim, minus the quotes.
    fn string(&mut self, pos: usize) -> Option<(usize, String)> {
        let rest = self.rest(pos);
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let b = rest.as_bytes();
        let q = quote as u8;
        let mut i = 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') | Some(b'\r') => break,
                Some(&c) if c == q => {
                    if b.get(i + 1) == Some(&q) {
                        i += 2; // doubled quote stays inside
                    } else {
                        return Some((pos + i + 1, rest[1..i].to_owned()));
                    }
                }
                Some(b'\\') => match b.get(i + 1) {
                    Some(b'x') => {
                        let hex = b[i + 2..]
                            .iter()
                            .take_while(|c| c.is_ascii_hexdigit())
                            .count();
                        if hex == 0 {
                            break;
                        }
                        i += 2 + hex;
                    }
                    Some(_) => {
                        // skip the backslash and one whole character
                        let c = rest[i + 1..].chars().next().map_or(1, char::len_utf8);
                        i += 1 + c;
                    }
                    None => break,
                },
                Some(_) => {
                    let c = rest[i..].chars().next().map_or(1, char::len_utf8);
                    i += c;
                }
            }
        }
        self.expect(pos + i, EXP_QUOTE);
        None
    }

    /// `template`: `template(` (call | path) [`,` litargs | litkwargs] `)`. Memoized like
    /// [`Self::call`].
    fn template(&mut self, pos: usize) -> R<Node> {
        if let Some(r) = self.memo_template.get(&pos) {
            return r.clone();
        }
        let r = self.template_inner(pos);
        if r.as_ref().err() != Some(&Fail::Fatal) {
            self.memo_template.insert(pos, r.clone());
        }
        r
    }

    fn template_inner(&mut self, pos: usize) -> R<Node> {
        if !self.rest(pos).starts_with("template") {
            return Err(Fail::Back);
        }
        let q = self.ws(pos + "template".len());
        if self.peek(q) != Some('(') {
            return Err(Fail::Back);
        }
        self.enter(q)?;
        let r = self.template_body(self.ws(q + 1));
        self.depth -= 1;
        r
    }

    fn template_body(&mut self, start: usize) -> R<Node> {
        let (mut end, inner) = match self.call(start) {
            Err(Fail::Back) => self.path(start)?,
            other => other?,
        };
        let mut vars: Vec<(String, Val)> = Vec::new();
        let c = self.ws(end);
        if self.peek(c) == Some(',') {
            let at = self.ws(c + 1);
            // litargs | litkwargs
            if let Some((e, v)) = self.lit_list(at, false)? {
                end = e;
                vars = v;
            } else if let Some((e, v)) = self.lit_list(at, true)? {
                end = e;
                vars = v;
            } else {
                self.expect(at, EXP_LITERAL);
            }
        }
        let close = self.ws(end);
        if self.peek(close) != Some(')') {
            self.expect(close, EXP_COMMA | EXP_RPAREN);
            return Err(Fail::Back);
        }
        Ok((
            close + 1,
            Node::Template {
                inner: Box::new(inner),
                vars,
            },
        ))
    }

    /// `litargs` (positional, named "1", "2", …) or `litkwargs`.
    fn lit_list(&mut self, start: usize, keyword: bool) -> Opt<Vec<(String, Val)>> {
        let mut out = Vec::new();
        let mut end = start;
        let mut at = start;
        loop {
            let kw = self.lit_kwarg(at)?;
            let item = if keyword {
                kw
            } else if kw.is_some() {
                None
            } else {
                self.lit_arg(at)?
                    .map(|(e, v)| (e, ((out.len() + 1).to_string(), v)))
            };
            let Some((e, kv)) = item else { break };
            out.push(kv);
            end = e;
            let c = self.ws(end);
            if self.peek(c) != Some(',') {
                break;
            }
            at = self.ws(c + 1);
        }
        Ok((!out.is_empty()).then_some((end, out)))
    }

    fn lit_kwarg(&mut self, pos: usize) -> Opt<(String, Val)> {
        let Ok((rest, name)) = lex_name(self.rest(pos)) else {
            return Ok(None);
        };
        let q = self.ws(self.pos_of(rest));
        if self.peek(q) != Some('=') {
            return Ok(None);
        }
        Ok(self
            .lit_arg(self.ws(q + 1))?
            .map(|(e, v)| (e, (name.to_owned(), v))))
    }

    /// `litarg`: number | string.
    fn lit_arg(&mut self, pos: usize) -> Opt<Val> {
        if let Some((e, Node::Lit(lit, _))) = self.number(pos)? {
            let v = match lit {
                Expr::Int(i) => Val::Int(i),
                Expr::Float(f) => Val::Float(f),
                _ => return Ok(None),
            };
            return Ok(Some((e, v)));
        }
        Ok(self.string(pos).map(|(e, s)| (e, Val::Str(s))))
    }
}

impl fmt::Display for Expr {
    /// Graphite syntax (`f(a.b,2,key="v")`), for messages and logs. Paths print as
    /// resolved (escapes are not re-added), so this is not a round-trip for every tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Path(p) => f.write_str(p),
            Expr::Int(i) => write!(f, "{i}"),
            Expr::Float(x) => f.write_str(&py_float(*x)),
            Expr::Str(s) => {
                if s.contains('"') {
                    write!(f, "'{s}'")
                } else {
                    write!(f, "\"{s}\"")
                }
            }
            Expr::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Expr::None => f.write_str("None"),
            Expr::SeriesByTag { raw, .. } => f.write_str(raw),
            Expr::Call(c) => {
                write!(f, "{}(", c.name)?;
                let mut first = true;
                for a in &c.args {
                    if !first {
                        f.write_str(",")?;
                    }
                    first = false;
                    write!(f, "{a}")?;
                }
                for (k, v) in &c.kwargs {
                    if !first {
                        f.write_str(",")?;
                    }
                    first = false;
                    write!(f, "{k}={v}")?;
                }
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oracle's canonical form (see `testdata/grammar_oracle.jsonl`).
    fn canon(e: &Expr) -> String {
        match e {
            Expr::Path(p) => format!("P({p})"),
            Expr::Int(i) => format!("I({i})"),
            Expr::Float(f) => format!("F({})", py_float(*f)),
            Expr::Str(s) => format!("S({s})"),
            Expr::Bool(b) => format!("B({b})"),
            Expr::None => "N".into(),
            Expr::SeriesByTag { exprs, .. } => {
                let args: Vec<String> = exprs.iter().map(|e| format!("S({e})")).collect();
                format!("seriesByTag({})", args.join(", "))
            }
            Expr::Call(c) => {
                let mut parts: Vec<String> = c.args.iter().map(canon).collect();
                parts.extend(c.kwargs.iter().map(|(k, v)| format!("{k}={}", canon(v))));
                format!("{}({})", c.name, parts.join(", "))
            }
        }
    }

    /// Every row was produced by graphite-web 1.1.10's own grammar module
    /// (`render/grammar_unsafe.py`, Apache-2.0) under pyparsing 3.0.9, with the evaluator's
    /// pipe and template rules applied: `ok` for a full parse, `err` when graphite-web's
    /// parse (`parseAll=True`) or template evaluation fails, `lenient` for what graphite-web
    /// evaluates when trailing text is ignored.
    #[test]
    fn matches_graphite_web_grammar() {
        let data = include_str!("testdata/grammar_oracle.jsonl");
        let mut checked = 0;
        for line in data.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let target = row["target"].as_str().unwrap();
            // Known deviations: UTF-8 paths are accepted (the oracle ran with UTF8_METRICS
            // off) and integers past i64 become floats.
            if !target.is_ascii() || target == "f(99999999999999999999)" {
                continue;
            }
            let vars: Vec<(String, String)> = row["vars"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| {
                    (
                        kv[0].as_str().unwrap().to_owned(),
                        kv[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let got = parse_with_vars(target, &vars);
            match row["ok"].as_str() {
                Some(want) => match &got {
                    Ok(e) => assert_eq!(canon(e), want, "target {target:?}"),
                    Err(e) => panic!("target {target:?} should parse as {want}, got:\n{e}"),
                },
                None => assert!(got.is_err(), "target {target:?} should fail, got {got:?}"),
            }
            if let Some(want) = row["lenient"].as_str() {
                if let Ok((e, _)) = parse_prefix(target, &vars) {
                    assert_eq!(canon(&e), want, "lenient {target:?}");
                } else if row["ok"].is_string() {
                    panic!("lenient {target:?} should parse");
                }
            }
            checked += 1;
        }
        assert!(checked > 400, "only {checked} oracle rows");
    }

    #[test]
    fn examples_from_the_issue() {
        let e = parse("a.b|scale(2)|alias(\"x\")").unwrap();
        assert_eq!(
            e,
            Expr::Call(Call {
                name: "alias".into(),
                args: vec![
                    Expr::Call(Call {
                        name: "scale".into(),
                        args: vec![Expr::Path("a.b".into()), Expr::Int(2)],
                        kwargs: vec![],
                    }),
                    Expr::Str("x".into()),
                ],
                kwargs: vec![],
            })
        );
        assert_eq!(parse("a\\(b").unwrap(), Expr::Path("a(b".into()));
        assert_eq!(
            parse("héllo.wörld").unwrap(),
            Expr::Path("héllo.wörld".into())
        );
    }

    #[test]
    fn errors_show_column_expectation_and_caret() {
        let e = parse("sumSeries(a.b").unwrap_err();
        assert_eq!(e.column(), 14);
        assert_eq!(
            e.to_string(),
            "invalid target: expected ',' or ')', found the end of the target at column 14\n  sumSeries(a.b\n               ^"
        );
        let e = parse("a.b)").unwrap_err();
        assert_eq!(e.column(), 4);
        assert!(
            e.message()
                .contains("expected the end of the target, found ')'"),
            "{e}"
        );
        let e = parse("f(x=1)").unwrap_err();
        assert_eq!(e.column(), 3);
        assert!(
            e.message().contains("positional argument before keyword"),
            "{e}"
        );
        let e = parse("f('abc").unwrap_err();
        assert!(e.message().contains("closing quote"), "{e}");
        let e = parse("").unwrap_err();
        assert!(
            e.message()
                .contains("expected a metric path or function call"),
            "{e}"
        );
        let e = parse("template(a.$x, x=foo.bar)").unwrap_err();
        assert!(e.message().contains("invalid template() syntax"), "{e}");
        assert_eq!(e.column(), 1);
        let e = parse("f(a, x=1, b)").unwrap_err();
        assert!(e.message().contains("keyword argument"), "{e}");
        // Columns count characters, not bytes.
        let e = parse("é(").unwrap_err();
        assert_eq!(e.column(), 2, "{e}");
    }

    #[test]
    fn long_targets_show_a_window() {
        let t = format!("{}){}", "a".repeat(300), "b".repeat(300));
        let e = parse(&t).unwrap_err();
        assert_eq!(e.column(), 301);
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[1].chars().count() < 140, "{shown}");
        let caret = lines[2].chars().count() - 1;
        assert_eq!(lines[1].chars().nth(caret), Some(')'));
    }

    #[test]
    fn limits_are_errors_not_hangs() {
        let deep = format!(
            "{}a{}",
            "f(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let e = parse(&deep).unwrap_err();
        assert!(e.message().contains("nested deeper"), "{e}");
        let ok = format!("{}a{}", "f(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let long = "a".repeat(MAX_TARGET_LEN + 1);
        assert!(parse(&long).unwrap_err().message().contains("longer than"));
        let braces = ["{a,b,c,d,e,f,g,h,i,j}"; 5].join(".");
        assert!(parse(&braces).unwrap_err().message().contains("expands"));
        assert!(parse(&["{a,b,c,d,e,f,g,h,i,j}"; 4].join(".")).is_ok());
        // PEG re-tries must stay linear: nested templates and keyword arguments.
        let t = format!("{}a{}", "template(".repeat(40), ")".repeat(40));
        assert!(parse(&t).is_err()); // nested template() calls are invalid in graphite-web
        let t = format!("{}a{}", "f(a, x=".repeat(60), ")".repeat(60));
        assert!(parse(&t).is_ok());
        let t = format!("{}a", "f(a, x=".repeat(60));
        assert!(parse(&t).is_err());
        assert_eq!(
            parse("f(99999999999999999999)").unwrap().to_string(),
            "f(1e+20)"
        );
    }

    #[test]
    fn pipes_count_toward_the_depth_limit() {
        let ok = format!("a{}", "|sum()".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        // thousands of pipes: an error, not a stack overflow
        let e = parse(&format!("constantLine(1){}", "|sum()".repeat(2500))).unwrap_err();
        assert!(e.message().contains("nested deeper"), "{e}");
        // pipes inside a call add to its depth
        let inner = format!("a{}", "|sum()".repeat(MAX_DEPTH));
        let e = parse(&format!("f({inner})")).unwrap_err();
        assert!(e.message().contains("pipes count"), "{e}");
        let e = parse(&format!("f(a|g()){}", "|h()".repeat(MAX_DEPTH - 1))).unwrap_err();
        assert!(e.message().contains("nested deeper"), "{e}");
    }

    #[test]
    fn the_length_limit_holds_after_template_substitution() {
        let big = "x".repeat(MAX_TARGET_LEN / 4);
        let t = "template(sumSeries(a.$v,b.$v,c.$v,d.$v,e.$v))";
        let e = parse_with_vars(t, &[("v", &big)]).unwrap_err();
        assert!(e.message().contains("after template substitution"), "{e}");
        // one variable repeated in one path is checked before it is replaced
        let t = format!("template(a.{})", "$v".repeat(4000));
        let e = parse_with_vars(&t, &[("v", &big)]).unwrap_err();
        assert!(e.message().contains("after template substitution"), "{e}");
        // strings substituted whole count too
        let t = "template(alias(a.b,$v),v='x')";
        let e = parse_with_vars(t, &[("v", &"y".repeat(MAX_TARGET_LEN + 1))]).unwrap_err();
        assert!(e.message().contains("after template substitution"), "{e}");
        assert!(parse_with_vars("template(a.$v)", &[("v", "short")]).is_ok());
    }

    #[test]
    fn py_float_repr_matches_python() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (1000.0, "1000.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e20, "1.5e+20"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (f64::INFINITY, "inf"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float(*f), *want);
        }
    }

    #[test]
    fn display_reparses() {
        for t in [
            "scale(divideSeries(a.b,c.d),100)",
            "f(a.{x,y}*,-1,1.5,\"s\",true,None,k=2)",
            "alias(a,'say \"hi\"')",
        ] {
            let e = parse(t).unwrap();
            assert_eq!(parse(&e.to_string()).unwrap(), e, "{t}");
        }
    }

    #[test]
    fn py_float_repr_fast_path_agrees_with_the_general_rule() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = match i % 3 {
                0 => f64::from_bits(x),
                1 => (x % 1_000_000) as f64 / 100.0,
                _ => (x as f64 / u64::MAX as f64) * 10f64.powi((i % 40) - 10),
            };
            if f.is_finite() {
                // Same shortest digits and notation; on an exact tie (e.g. 990389129227225.25)
                // ryu rounds half to even as Python does ("…225.2"), `{:e}` does not.
                let (fast, general) = (
                    crate::series::py_float(f),
                    crate::series::py_float_general(f),
                );
                assert_eq!(fast.parse::<f64>().unwrap(), f, "{fast}");
                assert_eq!(fast.len(), general.len(), "{fast} vs {general}");
                assert_eq!(
                    fast.contains('e'),
                    general.contains('e'),
                    "{fast} vs {general}"
                );
            }
        }
        for f in [0.0, -0.0, 1e-4, 9.999e14, 5.0, 0.1, 123.456, -7.25] {
            assert_eq!(
                crate::series::py_float(f),
                crate::series::py_float_general(f)
            );
        }
        // Python: repr(9.903891292272253e14) == '990389129227225.2'
        assert_eq!(
            crate::series::py_float(9.903891292272253e14),
            "990389129227225.2"
        );
    }
}
