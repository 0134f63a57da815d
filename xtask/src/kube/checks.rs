//! Checks of the rendered Kubernetes manifests that need no cluster.
