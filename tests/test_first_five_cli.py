"""The command explains itself: bare it prints the help, ``--version``, every setting's
flag, variables and config key in ``serve --help``, ``schema`` prints the SDL; and a
config file with a typo is refused at start-up, naming the line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import agent_sessions
from agent_sessions import cli
from agent_sessions.schema import build_schema
from agent_sessions.settings import AgentConfig, Settings, load_settings, setting_sources

COMMAND = str(Path(sys.executable).with_name("agent-sessions"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AGENT_SESSIONS_") or name == "MONGODB_URI":
            monkeypatch.delenv(name)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exit:  # argparse's --help and --version
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_bare_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    assert out.startswith("usage: agent-sessions")
    for command in ("serve", "keys", "schema"):
        assert f"    {command}  " in out
    assert "``" not in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version")[:2] == (0, f"agent-sessions {agent_sessions.__version__}\n")


def test_keys_alone_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keys")
    assert code == 0 and out.startswith("usage: agent-sessions keys")
    assert "create" in out and "revoke" in out


def test_serve_help_names_every_setting_where_it_can_be_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "serve", "--help")
    assert code == 0
    assert "``" not in out
    text = " ".join(out.split())  # as one line: wrapping does not matter
    assert len(setting_sources()) == len(Settings.model_fields)
    for source in setting_sources():
        for variable in source.environment:
            assert variable in text, variable
        if source.config_key:
            assert f"config key {source.config_key}" in text
        assert " ".join(source.description.split()) in text, source.name
    assert "--port, AGENT_SESSIONS_PORT, config key port (default 8080)" in text
    assert "--mongodb-uri, MONGODB_URI, AGENT_SESSIONS_MONGODB_URI, config key mongodb_uri" in text
    # Settings without a flag are listed by variable and key alone.
    assert "  AGENT_SESSIONS_DATABASE, config key database (default agent_sessions)" in out
    assert "--database" not in out
    for name in AgentConfig.model_fields:
        if name != "api_key":
            assert f"{name}: " in text


def test_schema_prints_the_served_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert out == build_schema().as_str() + "\n"


@pytest.mark.slow
def test_schema_into_a_closed_pipe_is_quiet() -> None:
    result = subprocess.run(
        f"{COMMAND} schema | head -1", shell=True, capture_output=True, text=True, timeout=60
    )
    assert result.stderr == "" and result.stdout.strip()


# --- the config file, checked ----------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent-sessions.toml"
    path.write_text(text)
    return path


KNOWN_TOP = (
    "known: host, port, mongodb_uri, database, data_dir, secantusd, admin_key, "
    "insecure_no_auth, introspection, compiled_execution, log_level, log_format, workers, "
    "graceful_shutdown_s, cors_origins, metrics_public, run_flush_s, run_lease_s, run_drain_s, "
    "retention_days, retention_sweep_s, search_backend, agents"
)
KNOWN_AGENT = "known: backend, base_url, model, api_key_env, system_prompt, url, timeout_s"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[agent.finance_agent]\nbackend = "openai"\n',
         "line 1: unknown section [agent]; did you mean 'agents'? " + KNOWN_TOP),
        ('port = 9000\n\n[agents.finance_agent]\nbackend = "http"\n'
         'url = "http://127.0.0.1:9100/run"\nprot = 9001\n',
         "line 6: unknown key 'prot' in [agents.finance_agent]; " + KNOWN_AGENT),
        ('# settings\nhots = "0.0.0.0"\n',
         "line 2: unknown key 'hots'; did you mean 'host'? " + KNOWN_TOP),
        ('agents.a.backend = "http"\nagents.a.url = "http://x/run"\nagents.a.modle = "m"\n',
         "line 3: unknown key 'modle' in [agents.a]; did you mean 'model'? " + KNOWN_AGENT),
        ('[agents.a]\nbackend = "http"\nurl = "http://x/run"\napi_key = "sk-live"\n',
         "line 4: api_key may not be in the config file; keep the key in an environment "
         "variable and name it in api_key_env"),
        ('motd = """\nport = 1\n"""\n', "line 1: unknown key 'motd'; " + KNOWN_TOP),
        ("agents = 3\n", "line 1: agents must be [agents.<id>] sections"),
    ],
)  # fmt: skip
def test_an_unknown_key_or_section_is_refused_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, error: str
) -> None:
    path = write(tmp_path, text)
    code, out, err = run(capsys, "serve", "--config", str(path), "--data-dir", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == f"agent-sessions: {path}, {error}\n"
    assert "sk-live" not in err


def test_a_file_that_is_not_toml_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "port = \n")
    code, _, err = run(capsys, "keys", "list", "--config", str(path))
    assert code == 2
    assert err == f"agent-sessions: {path}: not valid TOML: Invalid value (at line 1, column 8)\n"


def test_a_good_file_still_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'port = 9000\nlog_level = "DEBUG"\n[agents.rag]\nbackend = "http"\n'
        'url = "http://127.0.0.1:9100/run"\n[agents.fin]\nbackend = "openai"\n'
        'base_url = "http://127.0.0.1:9000/v1"\nmodel = "m"\napi_key_env = "FIN_KEY"\n',
    )
    settings = load_settings(config=path)
    assert (settings.port, settings.log_level, sorted(settings.agents)) == (
        9000,
        "debug",
        ["fin", "rag"],
    )


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("AGENT_SESSIONS_PORT", "eighty", "port must be a whole number"),
        ("AGENT_SESSIONS_PORT", "70000", "port must be at most 65535"),
        ("AGENT_SESSIONS_LOG_LEVEL", "loud",
         "log_level must be one of 'critical', 'error', 'warning', 'info' or 'debug'"),
        ("AGENT_SESSIONS_INTROSPECTION", "maybe", "introspection must be true or false"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_said_in_words(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    variable: str,
    value: str,
    error: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, _, err = run(capsys, "serve", "--data-dir", str(tmp_path))
    assert (code, err) == (2, f"agent-sessions: invalid settings: {error}\n")


def test_a_bad_agent_is_said_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[agents.a]\nbackend = "grpc"\nurl = "ftp://x"\ntimeout_s = 0\n')
    code, _, err = run(capsys, "serve", "--config", str(path))
    assert code == 2
    assert err == (
        "agent-sessions: invalid settings: agents.a.backend must be one of 'openai' or "
        "'http'; agents.a.url must be a URL (http:// or https://); agents.a.timeout_s must "
        "be more than 0.0\n"
    )
