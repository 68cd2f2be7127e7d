"""Pure builders: spec models in, Kubernetes object dicts out (no I/O; golden-tested)."""
