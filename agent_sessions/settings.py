"""Every setting of the service, in one pydantic-settings class.

Precedence: command-line flags (passed as keyword arguments) over ``AGENT_SESSIONS_*`` and
``MONGODB_URI`` environment variables over the TOML config file (``--config`` /
``AGENT_SESSIONS_CONFIG``). Nothing else in the project reads the environment. Each
field's description is its help text (``agent-sessions serve --help`` lists them all), and
the config file may hold only keys these classes know.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    Field,
    HttpUrl,
    SecretStr,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def default_data_dir() -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/agent-sessions``, else ``~/.local/share``."""
    return _XdgDirs().xdg_data_home / "agent-sessions"


class _XdgDirs(BaseSettings):
    xdg_data_home: Path = Field(default_factory=lambda: Path.home() / ".local" / "share")


class AgentConfig(BaseModel):
    """One agent declared under ``[agents.<id>]`` in the config file."""

    backend: Literal["openai", "http"] = Field(
        description="openai: any OpenAI-compatible /chat/completions server; http: your own service"
    )
    base_url: HttpUrl | None = Field(
        default=None, description="openai: the API's base URL (.../v1); /chat/completions is added"
    )
    model: str | None = Field(default=None, description="openai: the model to ask")
    api_key_env: str | None = Field(
        default=None, description="the environment variable that holds the backend's API key"
    )
    # Never from the file: keys stay in the environment (api_key_env names the variable).
    api_key: SecretStr | None = Field(default=None, exclude=True)
    system_prompt: str | None = Field(
        default=None, description="sent first, before the session's history"
    )
    url: HttpUrl | None = Field(default=None, description="http: the agent service's run endpoint")
    timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="seconds to wait for the backend's answer"
    )

    @model_validator(mode="after")
    def _backend_fields(self) -> AgentConfig:
        if self.backend == "openai" and (self.base_url is None or not self.model):
            raise ValueError("an openai agent needs base_url and model")
        if self.backend == "http" and self.url is None:
            raise ValueError("an http agent needs url")
        return self


LogLevel = Annotated[
    Literal["critical", "error", "warning", "info", "debug"],
    BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENT_SESSIONS_",
        populate_by_name=True,
        extra="ignore",
    )

    config: Path | None = Field(
        default=None, description="the TOML config file: settings and [agents.<id>] sections"
    )
    host: str = Field(
        default="127.0.0.1",
        description="the address to bind; anything but loopback needs an admin key "
        "(or --insecure-no-auth)",
    )
    port: int = Field(default=8080, ge=0, le=65535, description="the port to bind")
    mongodb_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("mongodb_uri", "MONGODB_URI", "AGENT_SESSIONS_MONGODB_URI"),
        description="the MongoDB to use (mongodb:// or mongodb+srv://); "
        "none: the embedded database in the data directory",
    )
    database: str = Field(
        default="agent_sessions", description="the database name on that MongoDB server"
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="where the embedded database keeps its files "
        "(default: $XDG_DATA_HOME/agent-sessions, else ~/.local/share/agent-sessions)",
    )
    secantusd: str | None = Field(
        default=None,
        description="the embedded database's program (secantusd-py); "
        "default: the one next to Python, else on PATH",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="the bootstrap administrator key; set, it turns authentication on "
        "(key mode), unset is open mode",
    )
    insecure_no_auth: bool = Field(
        default=False,
        description="allow binding a non-loopback address without an admin key",
    )
    introspection: bool = Field(default=True, description="answer GraphQL introspection")
    compiled_execution: bool = Field(
        default=True,
        description="answer the queries it can through compiled plans "
        "(false: every query through normal Strawberry execution, for diagnosis)",
    )
    log_level: LogLevel = Field(
        default="info", description="critical, error, warning, info or debug"
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="log lines as JSON or text; auto: text on a terminal, else JSON"
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="uvicorn worker processes, on one database"
    )
    graceful_shutdown_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="seconds requests in flight get to finish after SIGTERM, SIGINT or SIGHUP",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="browser origins allowed to call the API (CORS); none by default; in the "
        "environment a comma-separated list or a JSON array",
    )
    metrics_public: bool = Field(
        default=False, description="key mode: serve /metrics without a key"
    )
    run_flush_s: float = Field(
        default=0.5, gt=0, le=60, description="how often a streaming run stores its progress"
    )
    run_lease_s: float = Field(
        default=15.0,
        ge=1,
        le=3600,
        description="how long a run's lease lasts unrenewed before another server may end it",
    )
    run_drain_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="seconds runs in progress get to finish when the server shuts down",
    )
    retention_days: float | None = Field(
        default=None,
        gt=0,
        description="keep new sessions this many days (their expiresAt); default: until deleted",
    )
    retention_sweep_s: float = Field(
        default=60.0, gt=0, le=86400, description="how often expired sessions are deleted"
    )
    search_backend: Literal["auto", "mongo", "sqlite"] = Field(
        default="auto",
        description="the search index: the database's text index (mongo), an SQLite file "
        "in the data directory (sqlite), or the first where the database has none (auto)",
    )
    agents: dict[str, AgentConfig] = Field(
        default_factory=dict,
        description="the agents runAgent and POST /api/agents/{agentId}/runs can run; "
        "one [agents.<id>] section each",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(
                    f"{origin!r} is not an origin (scheme://host[:port], no path), or *"
                )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = init_settings.init_kwargs.get("config") or env_settings().get("config")
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"config file not found: {path}")
            sources += (CheckedTomlSource(settings_cls, toml_file=path),)
        return sources

    @model_validator(mode="after")
    def _lease_outlasts_flushes(self) -> Settings:
        # A run renews its lease at its flushes; a lease shorter than a few of them would
        # let another server take a live run for an abandoned one.
        if self.run_lease_s < 3 * self.run_flush_s:
            raise ValueError("run_lease_s must be at least 3 times run_flush_s")
        return self

    @property
    def auth_enabled(self) -> bool:
        return self.admin_key is not None and bool(self.admin_key.get_secret_value())


def load_settings(**flags: Any) -> Settings:
    """Build the settings from flags (``None`` means "not given"), environment and config file."""
    settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    needed = {a.api_key_env for a in settings.agents.values() if a.api_key_env}
    if needed:
        # The variables agents name in api_key_env, read like every other setting.
        secrets_model = create_model(
            "AgentSecrets", __base__=BaseSettings, **{name: (str | None, None) for name in needed}
        )
        secrets = secrets_model()
        for agent in settings.agents.values():
            if agent.api_key_env and (value := getattr(secrets, agent.api_key_env)):
                agent.api_key = SecretStr(value)
    return settings


# --- what each setting is called where ----------------------------------------------------


@dataclass(frozen=True)
class SettingSource:
    """Where one setting can be given, for help texts: generated, never a second list."""

    name: str
    environment: tuple[str, ...]
    config_key: str | None  # None: not read from the config file
    default: str | None  # None: computed (the description says how)
    description: str


def setting_sources() -> list[SettingSource]:
    """Every field of ``Settings``: its environment variables, config key, default, help."""
    prefix = Settings.model_config.get("env_prefix", "")
    sources = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):  # the upper-case choices are the variables
            environment = tuple(str(c) for c in alias.choices if str(c).isupper())
        else:
            environment = (f"{prefix}{name}".upper(),)
        if field.default_factory is not None:
            default = None
        elif field.default is None:
            default = "none"
        else:
            default = (
                str(field.default).lower()
                if isinstance(field.default, bool)
                else str(field.default)
            )
        sources.append(
            SettingSource(
                name=name,
                environment=environment,
                config_key=None if name == "config" else name,
                default=default,
                description=field.description or "",
            )
        )
    return sources


# --- the config file, checked -------------------------------------------------------------


class ConfigFileError(ValueError):
    """A config file that is not TOML, or holds a key or section the settings do not know."""


def check_config(data: dict[str, Any], text: str, file: Path) -> None:
    """Refuse keys and sections the settings do not know, naming the line: a typo such as
    ``[agent.x]`` or ``prot = 9001`` must not start a server that quietly ignores it."""
    top = [name for name in Settings.model_fields if name != "config"]
    _check_table(data, (), top, text, file)
    agents = data.get("agents", {})
    if not isinstance(agents, dict):
        raise ConfigFileError(
            f"{_at(text, file, ('agents',))}: agents must be [agents.<id>] sections"
        )
    per_agent = [name for name in AgentConfig.model_fields if name != "api_key"]
    for agent_id, agent in agents.items():
        where = ("agents", agent_id)
        if not isinstance(agent, dict):
            raise ConfigFileError(f"{_at(text, file, where)}: agents.{agent_id} must be a section")
        if "api_key" in agent:
            raise ConfigFileError(
                f"{_at(text, file, (*where, 'api_key'))}: api_key may not be in the config "
                "file; keep the key in an environment variable and name it in api_key_env"
            )
        _check_table(agent, where, per_agent, text, file)


def _check_table(
    table: dict[str, Any], path: tuple[str, ...], known: list[str], text: str, file: Path
) -> None:
    for key, value in table.items():
        if key in known:
            continue
        full = (*path, key)
        kind, shown = (
            ("section", f"[{'.'.join(full)}]") if isinstance(value, dict) else ("key", repr(key))
        )
        inside = f" in [{'.'.join(path)}]" if path else ""
        guess = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {guess[0]!r}? " if guess else ""
        raise ConfigFileError(
            f"{_at(text, file, full)}: unknown {kind} {shown}{inside}; "
            f"{hint}known: {', '.join(known)}"
        )


def _at(text: str, file: Path, path: tuple[str, ...]) -> str:
    line = _line_of(text, path)
    return f"{file}, line {line}" if line else str(file)


_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_HEADER = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in re.findall(r""""[^"]*"|'[^']*'|[^.\s]+""", text))


def _line_of(text: str, target: tuple[str, ...]) -> int | None:
    """The first line that defines ``target`` (a key or a table), by a plain reading of the
    TOML: tomllib keeps no positions."""
    table: tuple[str, ...] = ()
    in_string = False
    for number, line in enumerate(text.splitlines(), 1):
        quotes = line.count('"""') + line.count("'''")
        if in_string:
            in_string = quotes % 2 == 0
            continue
        in_string = quotes % 2 == 1
        if header := _HEADER.match(line):
            table = _dotted(header.group(1))
            if table[: len(target)] == target:
                return number
        elif (key := _KEY.match(line)) and (*table, *_dotted(key.group(1)))[
            : len(target)
        ] == target:
            return number
    return None


class CheckedTomlSource(TomlConfigSettingsSource):
    """The TOML config file, refused when it holds a key the settings do not know."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        text = Path(file_path).read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigFileError(f"{file_path}: not valid TOML: {exc}") from None
        check_config(data, text, Path(file_path))
        return data
