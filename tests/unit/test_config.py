from pathlib import Path

import pytest

from aift.config import load_settings
from aift.errors import ConfigError


def test_defaults_are_the_embedded_local_setup(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8050
    assert settings.workspace == (tmp_path / "workspace").resolve()
    assert settings.effective_database_url == f"sqlite:///{settings.workspace}/metadata/aift.db"
    assert settings.effective_qdrant_path == settings.workspace / "vector_index"
    assert settings.redis_url is None and settings.api_key is None
    assert "http://localhost:8050" in settings.cors_origins


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIFT_PORT", "9123")
    monkeypatch.setenv("AIFT_CORS_ORIGINS", "http://a.test, http://b.test")
    monkeypatch.setenv("AIFT_API_KEY", "s3cret")
    settings = load_settings()
    assert settings.port == 9123
    assert settings.cors_origins == ["http://a.test", "http://b.test"]
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "s3cret"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AIFT_MAX_UPLOAD_MB=7\n")
    assert load_settings().max_upload_mb == 7


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AIFT_PORT", "not-a-port"),
        ("AIFT_PORT", "70000"),
        ("AIFT_DATABASE_URL", "just-a-path.db"),
        ("AIFT_LOG_LEVEL", "LOUD"),
        ("AIFT_REDIS_URL", "localhost"),
    ],
)
def test_invalid_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert variable in err.value.message


def test_public_view_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIFT_API_KEY", "s3cret")
    monkeypatch.setenv("AIFT_DATABASE_URL", "postgresql://aift:pw123@db:5432/aift")
    view = load_settings().public_view()
    text = str(view)
    assert "s3cret" not in text and "pw123" not in text
    assert view["api_key"] == "set"
    assert view["database_url"] == "postgresql://aift:***@db:5432/aift"


@pytest.mark.parametrize(
    ("host", "key", "safe"),
    [
        ("127.0.0.1", None, True),
        ("localhost", None, True),
        ("::1", None, True),
        ("0.0.0.0", None, False),
        ("192.168.1.10", None, False),
        ("0.0.0.0", "k" * 16, True),
        ("0.0.0.0", "", False),
        ("0.0.0.0", "   ", False),
        ("0.0.0.0", "short-key", False),
        ("127.0.0.1", "short-key", True),
    ],
)
def test_non_loopback_bind_needs_a_key(host: str, key: str | None, safe: bool) -> None:
    settings = load_settings(host=host, api_key=key)
    if safe:
        settings.check_bind_is_safe()
    else:
        with pytest.raises(ConfigError, match="AIFT_API_KEY"):
            settings.check_bind_is_safe()


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_api_key_is_no_key(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv("AIFT_API_KEY", blank)
    settings = load_settings()
    assert settings.api_key is None
    assert settings.public_view()["api_key"] is None


def test_a_blank_key_line_in_dotenv_is_no_key(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("AIFT_API_KEY=\nAIFT_HOST=0.0.0.0\n")
    settings = load_settings()
    assert settings.api_key is None
    with pytest.raises(ConfigError, match="needs accounts or an API key"):
        settings.check_bind_is_safe()


def test_a_short_key_on_a_public_bind_says_how_to_make_one() -> None:
    with pytest.raises(ConfigError, match="shorter than 16") as err:
        load_settings(host="0.0.0.0", api_key="hunter2").check_bind_is_safe()
    assert "secrets.token_urlsafe" in err.value.message


def test_surrounding_spaces_are_not_part_of_the_key() -> None:
    key = load_settings(api_key="  a-long-enough-secret-key \n").api_key
    assert key is not None and key.get_secret_value() == "a-long-enough-secret-key"
