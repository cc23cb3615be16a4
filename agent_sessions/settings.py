"""Every setting of the service, in one pydantic-settings class.

Precedence: command-line flags (passed as keyword arguments) over ``AGENT_SESSIONS_*`` and
``MONGODB_URI`` environment variables over the TOML config file (``--config`` /
``AGENT_SESSIONS_CONFIG``). Nothing else in the project reads the environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
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

    backend: Literal["openai", "http"]
    base_url: HttpUrl | None = None  # openai: ".../v1"; /chat/completions is appended
    model: str | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True)  # read from api_key_env at load
    system_prompt: str | None = None
    url: HttpUrl | None = None  # http: the agent service's run endpoint
    timeout_s: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _backend_fields(self) -> AgentConfig:
        if self.backend == "openai" and (self.base_url is None or not self.model):
            raise ValueError("an openai agent needs base_url and model")
        if self.backend == "http" and self.url is None:
            raise ValueError("an http agent needs url")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENT_SESSIONS_",
        populate_by_name=True,
        extra="ignore",
    )

    config: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    mongodb_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("mongodb_uri", "MONGODB_URI", "AGENT_SESSIONS_MONGODB_URI"),
    )
    database: str = "agent_sessions"
    data_dir: Path = Field(default_factory=default_data_dir)
    secantusd: str | None = (
        None  # path of the secantusd-py executable; found next to Python if unset
    )
    admin_key: SecretStr | None = None
    insecure_no_auth: bool = False
    introspection: bool = True
    compiled_execution: bool = True  # off: every query through normal Strawberry execution
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: text on a terminal, else JSON
    workers: int = Field(default=1, ge=1, le=64)  # uvicorn worker processes, one database
    # Seconds in-flight requests get to finish after SIGTERM/SIGINT/SIGHUP.
    graceful_shutdown_s: float = Field(default=5.0, ge=0, le=300)
    # Browser origins allowed to call the API (CORS); none by default. In the environment:
    # a comma-separated list or a JSON array.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    metrics_public: bool = False  # key mode: /metrics without a key
    # Live runs (README "Live runs"): how often a streaming run stores its progress, how
    # long a run's lease lasts unrenewed before another server may end it, and how long
    # in-flight runs get to finish when the server shuts down.
    run_flush_s: float = Field(default=0.5, gt=0, le=60)
    run_lease_s: float = Field(default=15.0, ge=1, le=3600)
    run_drain_s: float = Field(default=5.0, ge=0, le=3600)
    agents: dict[str, AgentConfig] = Field(default_factory=dict)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

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
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
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
