//! The `carbide` package: the all-in-one command (with the embedded store) and the end-to-end
//! tests in `tests/`. Test helpers shared by those tests live in `tests/common/`.
