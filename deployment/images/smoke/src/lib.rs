//! Nothing here: the package exists for its test target, `tests/smoke.rs`, the smoke
//! tests of every container image (see that file).
