//! The syntax tree of a Graphite target, as graphite-web's grammar produces it.
//!
//! The pipe form `a.b|scale(2)` is desugared by the parser into `scale(a.b, 2)`, and
//! `template(...)` substitution happens before evaluation, so the evaluator sees only these
//! nodes.

/// One expression: a series-producing path or call, or a literal argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A metric path pattern, globs and all (`servers.*.cpu.{user,system}`), with backslash
    /// escapes already resolved. Its text is the series' `pathExpression`.
    Path(String),
    /// A function call.
    Call(Call),
    /// `seriesByTag('tag=value', ...)`: a tag query, fetched rather than called (as
    /// graphite-web's evaluator hands the call's text to `fetchData`). `raw` is the call's
    /// exact text (the series' `pathExpression`); `exprs` its string arguments, unquoted.
    SeriesByTag { raw: String, exprs: Vec<String> },
    /// An integer literal (`3`, `-1`).
    Int(i64),
    /// A float literal (`0.5`, `1e3`, `inf`, `-inf`).
    Float(f64),
    /// A quoted string (single or double quotes).
    Str(String),
    /// `true` / `false` (any case, as graphite-web).
    Bool(bool),
    /// `None`.
    None,
}

/// `name(args..., key=value...)`: positional arguments first, then keyword arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Expr>,
    pub kwargs: Vec<(String, Expr)>,
}
