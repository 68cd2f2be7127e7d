"""Conditions move only on real transitions; Events follow transitions; status verdicts."""

from __future__ import annotations

from kubelabel_operator.reconcilers.conditions import Verdict, is_subset, set_conditions, transition_events
from kubelabel_operator.reconcilers.outcome import finish
from kubelabel_operator.reconcilers.project import deployment_verdict


def by_type(conditions: list[dict]) -> dict[str, dict]:
    return {c["type"]: c for c in conditions}


def test_transition_time_moves_only_when_status_flips() -> None:
    first = set_conditions(None, Verdict.progressing("Starting", "0/1"), 1, "2026-01-01T00:00:00Z")
    again = set_conditions(first, Verdict.progressing("RollingOut", "0/1"), 2, "2026-01-01T00:05:00Z")
    assert by_type(again)["Progressing"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert by_type(again)["Progressing"]["reason"] == "RollingOut"
    assert by_type(again)["Progressing"]["observedGeneration"] == 2
    ready = set_conditions(again, Verdict.ready("Available", "1/1"), 2, "2026-01-01T00:10:00Z")
    c = by_type(ready)
    assert c["Ready"]["status"] == "True" and c["Ready"]["lastTransitionTime"] == "2026-01-01T00:10:00Z"
    assert c["Progressing"]["status"] == "False" and c["Progressing"]["lastTransitionTime"] == "2026-01-01T00:10:00Z"
    assert c["Degraded"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # never flipped


def test_events_only_for_transitions() -> None:
    first = set_conditions(None, Verdict.progressing("Starting", "0/1"), 1, "t0")
    assert [(e.type, e.reason) for e in transition_events(None, first)] == [("Normal", "Starting")]
    same = set_conditions(first, Verdict.progressing("Starting", "0/1"), 1, "t1")
    assert transition_events(first, same) == []
    broken = set_conditions(same, Verdict.degraded("SecretMissing", "Secret 'db' not found"), 1, "t2")
    assert [(e.type, e.reason, e.message) for e in transition_events(same, broken)] == [
        ("Warning", "SecretMissing", "Secret 'db' not found")
    ]


def test_finish_reports_no_change_on_an_identical_status() -> None:
    body = {"metadata": {"generation": 3}, "status": {}}
    outcome = finish(body, Verdict.ready("Available"), {"endpoint": "http://x"}, "t0")
    assert outcome.changed and outcome.status["observedGeneration"] == 3
    body["status"] = outcome.status
    again = finish(body, Verdict.ready("Available"), {"endpoint": "http://x"}, "t1")
    assert not again.changed and again.events == []


def test_deployment_verdicts() -> None:
    assert deployment_verdict(0, None).state == "idle"
    assert deployment_verdict(1, None).reason == "Creating"
    stale = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1},
    }
    assert deployment_verdict(1, stale).state == "progressing"
    current = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2},
    }
    assert deployment_verdict(2, current) == Verdict.ready("Available", "2/2 API server replicas ready")
    stuck = {
        "metadata": {"generation": 2},
        "status": {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]},
    }
    assert deployment_verdict(1, stuck).reason == "RolloutStuck"


def test_is_subset_compares_lists_by_position() -> None:
    assert is_subset({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}], "b": 3})
    assert not is_subset({"a": [{"x": 1}]}, {"a": [{"x": 1}, {"x": 2}]})
    assert not is_subset({"a": 1}, {})
