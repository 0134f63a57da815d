//! The Kubernetes objects generated from `libs/platform` by `cargo xtask codegen`.
