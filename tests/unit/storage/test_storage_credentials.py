from __future__ import annotations

from api_server.storages.providers.credentials import Credentials, load_credentials


def test_files_win_over_env(tmp_path):
    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("from-file\n")
    env = {"AWS_ACCESS_KEY_ID": "from-env", "AWS_SECRET_ACCESS_KEY": "env-secret"}
    creds = load_credentials(tmp_path, env)
    assert creds.aws_access_key_id == "from-file"  # trailing newline of a Secret file stripped
    assert creds.aws_secret_access_key == "env-secret"
    assert creds.azure_storage_account_key is None


def test_directory_from_env_and_missing_directory(tmp_path):
    (tmp_path / "AZURE_STORAGE_SAS_TOKEN").write_text("sv=1&sig=abc")
    creds = load_credentials(environ={"KUBELABEL_STORAGE_CREDENTIALS_DIR": str(tmp_path)})
    assert creds.azure_storage_sas_token == "sv=1&sig=abc"
    empty = load_credentials(tmp_path / "missing", {})
    assert empty.present() == []


def test_service_account_json_kept_verbatim(tmp_path):
    text = '{\n  "type": "service_account"\n}\n'
    (tmp_path / "GOOGLE_APPLICATION_CREDENTIALS_JSON").write_text(text)
    assert load_credentials(tmp_path, {}).google_application_credentials_json == text


def test_repr_never_shows_values():
    creds = Credentials(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="topsecret")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "topsecret" not in text and "AKIAEXAMPLE" not in text
    assert "aws_secret_access_key" in repr(creds)


def test_from_mapping_and_merge():
    base = Credentials.from_mapping({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    override = Credentials.from_mapping({"aws_secret_access_key": "c", "aws_session_token": ""})
    merged = base.merged(override)
    assert (merged.aws_access_key_id, merged.aws_secret_access_key, merged.aws_session_token) == ("a", "c", None)
