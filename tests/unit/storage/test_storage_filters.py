from __future__ import annotations

import pytest

from api_server.storages.providers import KeyFilter, StorageError


def test_no_filter_matches_everything():
    assert KeyFilter().matches("anything/at/all.bin")


def test_regex_is_anchored_at_start_like_label_studio():
    f = KeyFilter(regex=r".*\.jpe?g$")
    assert f.matches("a/b/cat.jpg") and f.matches("dog.jpeg")
    assert not f.matches("cat.png")
    assert not KeyFilter(regex="cat").matches("a/cat.jpg")


def test_glob_crosses_slashes_and_is_relative_to_prefix():
    f = KeyFilter(glob="*.json", prefix="tasks/")
    assert f.matches("tasks/a/b.json")
    assert not f.matches("tasks/a/b.jsonl")
    nested = KeyFilter(glob="batch-?/*.jsonl", prefix="tasks/")
    assert nested.matches("tasks/batch-1/x.jsonl")
    assert not nested.matches("tasks/batch-10/x.jsonl")


def test_glob_and_regex_both_apply():
    f = KeyFilter(glob="*.jpg", regex="train/")
    assert f.matches("train/1.jpg")
    assert not f.matches("test/1.jpg")
    assert not f.matches("train/1.png")


def test_invalid_regex_is_a_clear_error():
    with pytest.raises(StorageError, match="invalid regex filter"):
        KeyFilter(regex="([")
