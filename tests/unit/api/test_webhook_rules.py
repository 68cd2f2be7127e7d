"""Webhook signing, URL and header checks, event catalogue (pure functions)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from api_server.common.errors import BadRequest
from api_server.webhooks.actions import ACTIONS, catalogue
from api_server.webhooks.schemas import WebhookCreate
from api_server.webhooks.signing import new_secret, sign, verify
from api_server.webhooks.validation import MAX_HEADERS, check_headers, check_url


def test_signature_is_hmac_sha256_of_the_exact_body():
    body = b'{"action":"TASKS_CREATED","delivery":{"id":1,"timestamp":1700000000}}'
    expected = hmac.new(b"k" * 20, body, hashlib.sha256).hexdigest()
    assert sign("k" * 20, body) == f"sha256={expected}"
    assert verify("k" * 20, body, f"sha256={expected}")
    assert not verify("k" * 20, body + b" ", f"sha256={expected}")  # one byte more
    assert not verify("other-secret", body, f"sha256={expected}")
    assert not verify("k" * 20, body, "")


def test_generated_secrets_are_long_and_distinct():
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20 and all(len(s) >= 40 for s in secrets)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/x?a=1", "http://10.0.0.5:8080/hook", "http://[::1]:9000/", "HTTPS://EXAMPLE.COM"],
)
def test_good_urls(url):
    assert check_url(f"  {url} ") == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("javascript:alert(1)", "scheme"),
        ("gopher://example.com", "scheme"),
        ("https://u:p@example.com", "credentials"),
        ("https://:p@example.com", "credentials"),
        ("https://", "host"),
        ("https://exa mple.com", "whitespace"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_name_the_problem(url, problem):
    with pytest.raises(BadRequest) as err:
        check_url(url)
    assert "url" in err.value.validation_errors
    assert problem in err.value.detail


def test_headers():
    assert check_headers({"Authorization": "Bearer x", "X-Env": "prod"}) == {
        "Authorization": "Bearer x",
        "X-Env": "prod",
    }
    for bad in (
        {"Content-Type": "text/plain"},
        {"X-Kubelabel-Signature": "forged"},
        {"Bad Header": "x"},
        {"X-Ok": "line\r\nInjected: yes"},
        {f"X-{i}": "v" for i in range(MAX_HEADERS + 1)},
    ):
        with pytest.raises(BadRequest) as err:
            check_headers(bad)
        assert "headers" in err.value.validation_errors, bad


def test_actions_are_checked_and_deduplicated():
    body = WebhookCreate(url="https://x", actions=["TASKS_CREATED", "TASKS_CREATED", "ANNOTATION_CREATED"])
    assert body.actions == ["TASKS_CREATED", "ANNOTATION_CREATED"]
    with pytest.raises(ValueError, match="TASK_CREATED"):
        WebhookCreate(url="https://x", actions=["TASK_CREATED"])


def test_catalogue_covers_label_studio_actions():
    label_studio = {
        "PROJECT_CREATED",
        "PROJECT_UPDATED",
        "PROJECT_DELETED",
        "TASKS_CREATED",
        "TASKS_DELETED",
        "ANNOTATION_CREATED",
        "ANNOTATIONS_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_DELETED",
        "LABEL_LINK_CREATED",
        "LABEL_LINK_UPDATED",
        "LABEL_LINK_DELETED",
    }
    assert label_studio <= set(ACTIONS)
    assert set(catalogue(organization_only=True)) == {"PROJECT_CREATED", "PROJECT_DELETED"}


def test_link_local_is_always_refused_private_only_on_request():
    import pytest

    from api_server.common.egress import EgressRefused, EgressSettings, Policy, check_url

    default = Policy.from_settings(EgressSettings(allow="webhook:private+loopback"))
    strict = Policy.from_settings(EgressSettings(allow="", KUBELABEL_WEBHOOK_ALLOW_PRIVATE=False))
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:8080/", "http://0.0.0.0/"):
        with pytest.raises(EgressRefused):
            check_url(url, "webhook", policy=default)
    check_url("http://127.0.0.1:9/hook", "webhook", policy=default)
    with pytest.raises(EgressRefused, match="loopback"):
        check_url("http://127.0.0.1:9/hook", "webhook", policy=strict)
    with pytest.raises(EgressRefused, match="private"):
        check_url("https://10.1.2.3/hook", "webhook", policy=strict)
    check_url("https://8.8.8.8/hook", "webhook", policy=strict)
    check_url("https://name.invalid/hook", "webhook", policy=strict, unresolved_ok=True)  # retried, not refused
    # The older switch still works: true allows private and loopback for webhooks only.
    legacy = Policy.from_settings(EgressSettings(allow="", KUBELABEL_WEBHOOK_ALLOW_PRIVATE=True))
    assert legacy.allowed("webhook") == {"private", "loopback"} and legacy.allowed("ml") == set()
