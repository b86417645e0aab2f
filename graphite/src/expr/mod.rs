//! Graphite's target-expression language: the syntax tree ([`ast`]) and the `nom` parser
//! ([`parse()`]); the evaluator lands next to them.

pub mod ast;
pub mod parse;

pub use parse::{parse, parse_prefix, parse_with_vars, ParseError};
