"""Every provider operation against its real emulator."""

from __future__ import annotations

import httpx
import pytest

from api_server.storages.providers import BucketNotFoundError, ObjectNotFoundError, StorageError


def test_write_list_read_delete(storage_env):
    provider = storage_env.provider(storage_env.new_bucket())
    provider.validate()
    etags = {}
    for i in range(5):
        etags[f"data/{i}.txt"] = provider.write(f"data/{i}.txt", f"hello {i}".encode(), "text/plain")
    provider.write("other/x.txt", b"x", "text/plain")

    listed = list(provider.iter_objects("data/", page_size=2))
    assert [o.key for o in listed] == [f"data/{i}.txt" for i in range(5)]
    assert all(o.size == len(b"hello 0") for o in listed)
    assert all(o.etag for o in listed)
    assert {o.key: o.etag for o in listed} == etags
    assert len(list(provider.iter_objects())) == 6

    assert provider.read("data/3.txt") == b"hello 3"
    with provider.open("data/4.txt") as stream:
        assert stream.read() == b"hello 4"

    provider.delete("data/3.txt")
    provider.delete("data/3.txt")  # deleting a missing object is not an error
    assert [o.key for o in provider.iter_objects("data/")] == [f"data/{i}.txt" for i in (0, 1, 2, 4)]
    with pytest.raises(ObjectNotFoundError):
        provider.read("data/3.txt")


def test_rewrite_changes_etag(storage_env):
    provider = storage_env.provider(storage_env.new_bucket())
    first = provider.write("a.json", b"{}")
    second = provider.write("a.json", b'{"changed": true}')
    assert first != second
    [info] = list(provider.iter_objects())
    assert info.etag == second


def test_non_recursive_listing(storage_env):
    provider = storage_env.provider(storage_env.new_bucket())
    for key in ("top.txt", "dir/nested.txt", "dir/deeper/x.txt"):
        provider.write(key, b"1", "text/plain")
    assert [o.key for o in provider.iter_objects("", recursive=False)] == ["top.txt"]
    assert [o.key for o in provider.iter_objects("dir/", recursive=False)] == ["dir/nested.txt"]


def test_missing_bucket_is_a_clear_error(storage_env):
    provider = storage_env.provider("kl-does-not-exist")
    with pytest.raises(BucketNotFoundError, match="does not exist"):
        provider.validate()
    with pytest.raises(StorageError):
        list(provider.iter_objects())


# GCS presigning needs a service-account key: covered in test_storage_auth.test_gcs_signed_url.
@pytest.mark.parametrize("storage_env", ["s3", "azure"], indirect=True)
def test_presigned_url_reads_the_object(storage_env):
    provider = storage_env.provider(storage_env.new_bucket())
    provider.write("img/cat.png", b"\x89PNG fake", "image/png")
    url = provider.presign("img/cat.png", 60)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"\x89PNG fake"


def test_keys_with_special_characters_round_trip(storage_env):
    provider = storage_env.provider(storage_env.new_bucket())
    keys = ["odd/a b+c.txt", "odd/ümlaut & co.txt", "odd/100%.txt", "odd/q?x=1#frag.txt"]
    for key in keys:
        provider.write(key, key.encode(), "text/plain")
    listed = [o.key for o in provider.iter_objects("odd/")]
    assert sorted(listed) == sorted(keys)
    assert all(provider.read(key) == key.encode() for key in listed)
