"""Settings: flags over environment over the TOML config file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent_sessions.settings import default_data_dir, load_settings


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent-sessions.toml"
    path.write_text(
        'host = "127.0.0.2"\nport = 9000\nmongodb_uri = "mongodb://from-file:27017"\n'
        'database = "from_file"\n\n[agents.rag_agent]\nbackend = "http"\nurl = "http://127.0.0.1:9100/run"\n'
    )
    return path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGENT_SESSIONS_PORT", "AGENT_SESSIONS_HOST", "MONGODB_URI", "AGENT_SESSIONS_CONFIG",
                 "AGENT_SESSIONS_DATABASE", "AGENT_SESSIONS_MONGODB_URI", "XDG_DATA_HOME"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_config_file_alone(config: Path) -> None:
    s = load_settings(config=config)
    assert (s.host, s.port, s.mongodb_uri, s.database) == (
        "127.0.0.2",
        9000,
        "mongodb://from-file:27017",
        "from_file",
    )
    assert s.agents["rag_agent"].backend == "http"


def test_environment_over_file_and_flags_over_both(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_SESSIONS_PORT", "9100")
    monkeypatch.setenv("MONGODB_URI", "mongodb://from-env:27017")
    s = load_settings(config=config)
    assert (s.port, s.mongodb_uri, s.host) == (9100, "mongodb://from-env:27017", "127.0.0.2")
    s = load_settings(config=config, port=9200, mongodb_uri="mongodb://from-flag:27017")
    assert (s.port, s.mongodb_uri) == (9200, "mongodb://from-flag:27017")


def test_config_file_from_the_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_SESSIONS_CONFIG", str(config))
    assert load_settings().port == 9000


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_settings(config=tmp_path / "nope.toml")


def test_an_incomplete_agent_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[agents.a]\nbackend = "openai"\nmodel = "m"\n')
    with pytest.raises(ValidationError, match="base_url"):
        load_settings(config=path)


def test_default_data_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_data_dir() == Path.home() / ".local" / "share" / "agent-sessions"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "agent-sessions"
