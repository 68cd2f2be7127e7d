"""`kubelabel operator` -> the `kopf run` arguments."""

from __future__ import annotations

from kubelabel_operator.runner import kopf_args
from kubelabel_operator.settings import OperatorSettings


def test_namespaced_standalone_with_liveness() -> None:
    settings = OperatorSettings(standalone=True, liveness_endpoint="http://0.0.0.0:8080/healthz", log_format="json")
    args = kopf_args(["a", "b"], False, settings, ["--", "--verbose"])
    assert args[:3] == ["run", "-m", "kubelabel_operator.handlers"]
    assert "--log-format=json" in args and "--standalone" in args
    assert args[args.index("--liveness") + 1] == "http://0.0.0.0:8080/healthz"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["a", "b"]
    assert "--all-namespaces" not in args and args[-1] == "--verbose" and "--" not in args


def test_cluster_wide_with_peering_priority() -> None:
    args = kopf_args(None, True, OperatorSettings(standalone=False, priority=100, liveness_endpoint=""))
    assert "--all-namespaces" in args and "--standalone" not in args
    assert args[args.index("--priority") + 1] == "100" and "--liveness" not in args
