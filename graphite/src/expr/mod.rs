//! Graphite's target-expression language: the syntax tree ([`ast`]); the `nom` parser and the
//! evaluator land next to it.

pub mod ast;
