"""The ML backend client against a local server that misbehaves: every failure is typed and bounded."""

from __future__ import annotations

from typing import Any

import pytest

from api_server.ml.client import BackendAuth, MLBackendClient, RetryPolicy
from api_server.ml.errors import (
    MLBackendHTTPError,
    MLBackendInvalidResponse,
    MLBackendTimeout,
    MLBackendUnavailable,
)
from tests.support.net import free_port

CONFIG = '<View><Text name="t" value="$text"/><Choices name="c" toName="t"><Choice value="A"/></Choices></View>'
TASKS = [{"id": 1, "data": {"text": "x"}}, {"id": 2, "data": {"text": "y"}}]
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01)


def client_for(server: Any, observed: list[tuple[str, str]] | None = None, **kw: Any) -> MLBackendClient:
    def observer(endpoint: str, outcome: str, _seconds: float) -> None:
        if observed is not None:
            observed.append((endpoint, outcome))

    kw.setdefault("retry", FAST_RETRY)
    return MLBackendClient(server.url, observer=observer, **kw)


def predict(client: MLBackendClient) -> Any:
    return client.predict(TASKS, label_config=CONFIG, project="1")


def test_slow_backend_times_out_without_retry(misbehaving_server: Any) -> None:
    misbehaving_server.on("/predict", body={"results": []}, delay_until_released=True)
    observed: list[tuple[str, str]] = []
    with client_for(misbehaving_server, observed, timeout=0.3) as client, pytest.raises(MLBackendTimeout) as err:
        predict(client)
    assert "timed out after 0.3s" in err.value.message
    assert misbehaving_server.hits["/predict"] == 1  # a slow backend is not asked again
    assert observed == [("/predict", "timeout")]


def test_500_is_retried_then_reported(misbehaving_server: Any) -> None:
    misbehaving_server.on("/predict", status=500, raw=b"Traceback: model exploded")
    observed: list[tuple[str, str]] = []
    with client_for(misbehaving_server, observed) as client, pytest.raises(MLBackendHTTPError) as err:
        predict(client)
    assert err.value.status_code == 500
    # The status and the kind of failure, never the answer (the backend's URL is user-given).
    assert "HTTP 500" in err.value.message and "model exploded" not in err.value.message
    assert misbehaving_server.hits["/predict"] == 3
    assert observed == [("/predict", "http_error")]


def test_transient_503_recovers(misbehaving_server: Any) -> None:
    result = [{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["A"]}}]
    misbehaving_server.on("/predict", body={"results": [{"result": result, "score": 0.5}] * 2}, fail_first=2)
    with client_for(misbehaving_server) as client:
        predictions = predict(client)
    assert [p.score for p in predictions] == [0.5, 0.5]
    assert misbehaving_server.hits["/predict"] == 3


def test_4xx_is_not_retried(misbehaving_server: Any) -> None:
    misbehaving_server.on("/setup", status=422, body={"detail": "bad schema"})
    with client_for(misbehaving_server) as client, pytest.raises(MLBackendHTTPError) as err:
        client.setup(project="1", label_config=CONFIG)
    assert err.value.status_code == 422
    assert misbehaving_server.hits["/setup"] == 1


def test_invalid_json(misbehaving_server: Any) -> None:
    misbehaving_server.on("/predict", raw=b"<html>proxy error</html>")
    observed: list[tuple[str, str]] = []
    with client_for(misbehaving_server, observed) as client, pytest.raises(MLBackendInvalidResponse) as err:
        predict(client)
    assert "invalid JSON" in err.value.message and "proxy error" not in err.value.message
    assert observed == [("/predict", "invalid_response")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([1, 2], "expected an object"),
        ({"predictions": []}, "results"),
        ({"results": "nope"}, "results"),
        ({"results": [{"result": "A"}, {"result": []}]}, "results.0.result"),
        ({"results": [{"result": [1]}, {"result": []}]}, "results.0.result.0"),
        ({"results": [{"result": [], "score": "high"}, {"result": []}]}, "results.0.score"),
        ({"results": [{"result": []}]}, "returned 1 results for 2 tasks"),
    ],
)
def test_garbage_shapes(misbehaving_server: Any, body: Any, expected: str) -> None:
    misbehaving_server.on("/predict", body=body)
    with client_for(misbehaving_server) as client, pytest.raises(MLBackendInvalidResponse) as err:
        predict(client)
    assert expected in err.value.message


def test_health_that_is_not_up(misbehaving_server: Any) -> None:
    misbehaving_server.on("/health", body={"status": "DOWN"})
    with client_for(misbehaving_server) as client, pytest.raises(MLBackendInvalidResponse) as err:
        client.health()
    assert "does not report status UP" in err.value.message and "DOWN" not in err.value.message


def test_oversized_response_is_refused(misbehaving_server: Any) -> None:
    misbehaving_server.on("/predict", raw=b"[" + b"0," * 50_000 + b"0]")
    client = client_for(misbehaving_server, max_response_bytes=10_000)
    with client, pytest.raises(MLBackendInvalidResponse) as err:
        predict(client)
    assert "exceeds 10000 bytes" in err.value.message


def test_connection_dropped_without_answer(misbehaving_server: Any) -> None:
    misbehaving_server.on("/health", close_without_answer=True)
    with client_for(misbehaving_server) as client, pytest.raises(MLBackendUnavailable):
        client.health()
    assert misbehaving_server.hits["/health"] == 3


def test_nothing_listening() -> None:
    observed: list[tuple[str, str]] = []

    def observer(endpoint: str, outcome: str, _seconds: float) -> None:
        observed.append((endpoint, outcome))

    url = f"http://127.0.0.1:{free_port()}"
    client = MLBackendClient(url, retry=FAST_RETRY, observer=observer)
    with client, pytest.raises(MLBackendUnavailable) as err:
        client.health()
    assert "unreachable" in err.value.message
    assert observed == [("/health", "unavailable")]


def test_batches_and_alignment(misbehaving_server: Any) -> None:
    result = [{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["A"]}, "score": 0.25}]
    misbehaving_server.on("/predict", body={"results": [{"result": result}] * 2, "model_version": 7})
    tasks = [{"id": i, "data": {"text": str(i)}} for i in range(6)]
    with client_for(misbehaving_server, batch_size=2) as client:
        predictions = client.predict(tasks, label_config=CONFIG, project="3.17", params={"context": None})
    assert misbehaving_server.hits["/predict"] == 3
    assert [b["tasks"] for b in misbehaving_server.bodies] == [tasks[0:2], tasks[2:4], tasks[4:6]]
    assert {b["project"] for b in misbehaving_server.bodies} == {"3.17"}
    assert {b["label_config"] for b in misbehaving_server.bodies} == {CONFIG}
    # score taken from the result items when the prediction has none; numeric versions become strings
    assert [(p.effective_score(), p.model_version) for p in predictions] == [(0.25, "7")] * 6


def test_credentials_are_sent_and_never_echoed(misbehaving_server: Any) -> None:
    misbehaving_server.on("/setup", status=400, body={"detail": "no"})
    auth = BackendAuth(basic_user="u", basic_pass="topsecret", headers={"X-Extra": "1"})
    url = f"http://u2:othersecret@127.0.0.1:{misbehaving_server.port}"
    for client in (client_for(misbehaving_server, auth=auth), MLBackendClient(url, retry=FAST_RETRY)):
        with client, pytest.raises(MLBackendHTTPError) as err:
            client.setup(project="1", label_config=CONFIG)
        assert "secret" not in err.value.message
        assert "secret" not in repr(client.__dict__)
    assert misbehaving_server.headers[0]["Authorization"].startswith("Basic ")
    assert misbehaving_server.headers[0]["X-Extra"] == "1"
    assert misbehaving_server.headers[1]["Authorization"].startswith("Basic ")
