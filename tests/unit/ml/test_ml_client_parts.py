"""Pure parts of the ML backend client: URL redaction, retry delays, auth headers, protocol shapes."""

from __future__ import annotations

import base64

import pytest

from api_server.common.secrets import without_credentials
from api_server.ml.client import BackendAuth, MLBackendClient, RetryPolicy
from api_server.ml.protocol import ModelPrediction, SetupResponse


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("http://ml:9090", "http://ml:9090"),
        ("http://user:pass@ml:9090/base", "http://ml:9090/base"),
        ("https://token@ml.example.com", "https://ml.example.com"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert without_credentials(url) == redacted


def test_retry_delays_double_up_to_a_cap() -> None:
    assert list(RetryPolicy(attempts=5, backoff=0.5, max_backoff=1.5).delays()) == [0.5, 1.0, 1.5, 1.5]
    assert list(RetryPolicy(attempts=1).delays()) == []


def test_basic_auth_header() -> None:
    headers = BackendAuth(basic_user="u", basic_pass="p:w", headers={"X-A": "1"}).as_headers()
    assert headers["X-A"] == "1"
    assert base64.b64decode(headers["Authorization"].split()[1]) == b"u:p:w"
    assert "p:w" not in repr(BackendAuth(basic_user="u", basic_pass="p:w"))


def test_client_refuses_non_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        MLBackendClient("ftp://host")


def test_prediction_score_and_version_coercion() -> None:
    items = [{"score": 0.2}, {"score": 0.4}, {"no": "score"}]
    assert ModelPrediction(result=items).effective_score() == pytest.approx(0.3)
    assert ModelPrediction(result=items, score=0.9).effective_score() == 0.9
    assert ModelPrediction(result=[]).effective_score() is None
    assert ModelPrediction(result=[], model_version=3).model_version == "3"
    assert SetupResponse(model_version=1700000000).model_version == "1700000000"
