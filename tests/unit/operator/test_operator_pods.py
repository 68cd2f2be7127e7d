"""reconcilers.pods: the most telling failure among a Deployment's pods, bounded and without secrets."""

from __future__ import annotations

import pytest
from kubelabel_operator.reconcilers.conditions import Verdict
from kubelabel_operator.reconcilers.pods import MESSAGE_LIMIT, PodFailure, pod_failure, redact

from tests.support.pod_states import (
    DSN_PASSWORD,
    STATES,
    PodState,
    crash_loop,
    healthy,
    migrate_failed,
    pod,
    terminated,
    unschedulable,
    waiting,
)


@pytest.mark.parametrize("state", STATES, ids=[s.name for s in STATES])
def test_each_failure_is_named_with_its_cause(state: PodState) -> None:
    failure = pod_failure([state.make("kl-api-1")])
    assert failure is not None and failure.reason == state.reason
    assert failure.message.startswith("pod kl-api-1: ")
    for fragment in state.message_fragments:
        assert fragment in failure.message
    assert DSN_PASSWORD not in failure.message


def test_nothing_wrong_yet() -> None:
    starting = pod("kl-api-1", containers=[waiting("api", "ContainerCreating")])
    recovered = pod(
        "kl-api-2",
        containers=[{**waiting("api", "x", last=terminated(1)), "state": {"running": {}}, "ready": True}],
    )
    assert pod_failure([]) is None
    assert pod_failure([healthy("kl-api-0"), starting, recovered]) is None


def test_a_crash_loop_between_two_back_offs_keeps_its_reason() -> None:
    """Restarted and running, not ready yet: still the crash loop (the condition does not flap)."""
    between = pod(
        "x", containers=[{**waiting("api", "x", last=terminated(1, "Error", "boom")), "state": {"running": {}}}]
    )
    assert pod_failure([between]) == PodFailure(
        "CrashLoopBackOff", "pod x: container api exited with code 1 (Error): boom"
    )


def test_both_states_of_image_pull_retries_are_one_reason() -> None:
    pull = [pod("x", containers=[waiting("api", r, "m")]) for r in ("ErrImagePull", "ImagePullBackOff")]
    assert [pod_failure([p]) for p in pull] == [
        PodFailure("ImagePullBackOff", "pod x: container api: ErrImagePull: m"),
        PodFailure("ImagePullBackOff", "pod x: container api: ImagePullBackOff: m"),
    ]


RANKED = [
    ("migration over unschedulable", [unschedulable("a"), migrate_failed("b")], "MigrationFailed", "pod b"),
    ("crash loop over unschedulable", [unschedulable("a"), crash_loop("b")], "CrashLoopBackOff", "pod b"),
    ("newest of a kind", [crash_loop("old"), {**crash_loop("new")}], "CrashLoopBackOff", "pod new"),
]


@pytest.mark.parametrize(("case", "pods", "reason", "where"), RANKED, ids=[r[0] for r in RANKED])
def test_the_most_telling_failure_wins(case: str, pods: list[dict], reason: str, where: str) -> None:
    if case == "newest of a kind":
        pods[1]["metadata"]["creationTimestamp"] = "2026-12-06T04:00:00Z"
    failure = pod_failure(pods)
    assert failure is not None and failure.reason == reason and failure.message.startswith(where)


def test_terminating_pods_are_left_out() -> None:
    old = crash_loop("old")
    old["metadata"]["deletionTimestamp"] = "2026-12-06T03:10:00Z"
    assert pod_failure([old, healthy("new")]) is None


def test_pods_of_an_older_template_are_left_out() -> None:
    template = {
        "metadata": {"labels": {"app": "a"}, "annotations": {"kubelabel.io/config-hash": "new"}},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "kl:2"}],
            "containers": [{"name": "api", "image": "kl:2"}],
        },
    }
    current = crash_loop("current", template)
    older_config = crash_loop("older-config", template)
    older_config["metadata"]["annotations"]["kubelabel.io/config-hash"] = "old"
    older_image = crash_loop("older-image", template)
    older_image["spec"]["containers"][0]["image"] = "kl:1"
    assert pod_failure([older_config, older_image], template) is None
    assert pod_failure([older_config, older_image]) is not None  # without a template, every pod counts
    failure = pod_failure([older_config, current, older_image], template)
    assert failure is not None and failure.message.startswith("pod current: ")


def test_init_container_other_than_migrate() -> None:
    p = pod("x", init=[waiting("fetch", "CrashLoopBackOff", last=terminated(2, "Error", "no model"))])
    assert pod_failure([p]) == PodFailure(
        "InitContainerFailed", "pod x: init container fetch exited with code 2 (Error): no model"
    )


def test_oom_killed_crash_loop_and_plain_back_off() -> None:
    oom = pod("x", containers=[waiting("api", "CrashLoopBackOff", last=terminated(137, "OOMKilled"))])
    assert pod_failure([oom]) == PodFailure("CrashLoopBackOff", "pod x: container api exited with code 137 (OOMKilled)")
    clean_exit = pod(
        "y", containers=[waiting("api", "CrashLoopBackOff", "back-off 10s", last=terminated(0, "Completed"))]
    )
    assert pod_failure([clean_exit]) == PodFailure("CrashLoopBackOff", "pod y: container api back-off 10s")


def test_config_error_names_the_missing_key() -> None:
    p = pod(
        "x", containers=[waiting("api", "CreateContainerConfigError", "couldn't find key dsn in Secret default/db")]
    )
    assert pod_failure([p]) == PodFailure(
        "CreateContainerConfigError", "pod x: container api: couldn't find key dsn in Secret default/db"
    )


def test_message_is_bounded_and_keeps_the_end_of_the_log() -> None:
    log = "\n".join(f"line {i}" for i in range(2000)) + "\nFATAL: the telling last line"
    p = pod("x", containers=[waiting("api", "CrashLoopBackOff", last=terminated(1, "Error", log))])
    failure = pod_failure([p])
    assert failure is not None and len(failure.message) <= MESSAGE_LIMIT
    assert failure.message.endswith("FATAL: the telling last line") and "line 0 " not in failure.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://kl:pw@db:5432/kl", "postgresql://kl:***@db:5432/kl"),
        ("redis://:pw@redis:6379/0", "redis://:***@redis:6379/0"),
        ("password=hunter2 host=db", "password=*** host=db"),
        ("DB_PASSWORD=hunter2 KUBELABEL_ADMIN_TOKEN: abc", "DB_PASSWORD=*** KUBELABEL_ADMIN_TOKEN: ***"),
        ('token: "abc def" next', "token: *** next"),
        ("http://example.com/path@v1 stays", "http://example.com/path@v1 stays"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_failure_makes_a_degraded_verdict_with_ready_false() -> None:
    failure = pod_failure([crash_loop("x")])
    assert failure is not None
    statuses = Verdict.degraded(failure.reason, failure.message).statuses()
    assert statuses == {"Ready": "False", "Progressing": "False", "Degraded": "True"}
