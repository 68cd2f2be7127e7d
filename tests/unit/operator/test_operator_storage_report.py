"""How a sync Job's status and its pod's termination message map to the storage lifecycle."""

from __future__ import annotations

import json

from kubelabel_operator.reconcilers.storage import job_report, termination_result


def pod(message: str, created: str = "2026-01-01T00:00:00Z") -> dict:
    return {
        "metadata": {"creationTimestamp": created},
        "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": message}}}]},
    }


def test_queued_then_running() -> None:
    assert job_report({"status": {}}, []).state == "queued"
    assert job_report({"status": {"active": 1}}, []).state == "in_progress"


def test_completed_with_count_and_duration() -> None:
    job = {
        "status": {
            "succeeded": 1,
            "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:01:30Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        }
    }
    result = {"status": "completed_with_errors", "count": 41, "errors": 2, "message": "2 objects unreadable"}
    report = job_report(job, [pod("log line\n" + json.dumps(result))])
    assert (report.state, report.count, report.errors, report.duration) == ("completed_with_errors", 41, 2, 90.0)
    assert report.message == "2 objects unreadable" and report.finished_at == "2026-01-01T00:01:30Z"


def test_failed_uses_the_termination_message() -> None:
    job = {
        "status": {
            "failed": 3,
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached"}
            ],
        }
    }
    msg = json.dumps({"status": "failed", "count": 0, "errors": 0, "message": "AccessDenied on bucket"})
    report = job_report(job, [pod(msg)])
    assert report.state == "failed" and report.message == "AccessDenied on bucket"
    assert job_report(job, []).message == "Job has reached"


def test_newest_pod_wins_and_plain_text_is_kept() -> None:
    older = pod(json.dumps({"status": "failed", "message": "old"}), "2026-01-01T00:00:00Z")
    newer = pod(json.dumps({"status": "completed", "count": 5, "message": "ok"}), "2026-01-01T00:05:00Z")
    assert termination_result([older, newer])["count"] == 5  # type: ignore[index]
    assert termination_result([pod("Traceback: boom")]) == {"message": "Traceback: boom"}
