"""One settings object for the whole stack.

Sources, strongest first: keyword arguments, `TETHER_*` environment variables, the
`[tether]` table (or top level) of the nearest `tether.toml` found by walking up from the
working directory, as git finds `.git`. With neither, data lives in `./.tether/` and the
shipped example workflows are registered, so a new user configures nothing.

Every interface reads `TETHER_<IFACE>_DATABASE_URL` and falls back to `TETHER_DATABASE_URL`,
so any one interface can be pointed at its own database by changing one string.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from tether.errors import ConfigurationError

CONFIG_FILE = "tether.toml"
DEFAULT_WORKFLOWS = ["workflows.research_report", "workflows.support_triage"]


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest tether.toml at or above `start` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the nearest tether.toml; its `[tether]` table if present, else the top level."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is used instead

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = tomllib.loads(self.path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigurationError(f"cannot read {self.path}: {e}") from e
        table = data.get("tether", data)
        return {k.replace("-", "_"): v for k, v in table.items()}


def explain(error: ValidationError, table: str | None = None) -> str:
    """pydantic's report as one line: each bad setting by its name (its TETHER_ variable and
    tether.toml key, or its key in the tether.toml `table`), what it should be, what it was."""
    parts = []
    for e in error.errors(include_url=False):
        loc = [str(p) for p in e.get("loc", ())]
        key = ".".join(loc) or "?"
        if table is None:
            where = f"TETHER_{loc[0].upper() if loc else '?'} (tether.toml: {key})"
        else:
            where = f"[{table}] {key}"
        got = e.get("input")
        shown = f"; got {got!r}" if isinstance(got, str | int | float) else ""
        parts.append(f"{where}: {e.get('msg', 'invalid')}{shown}")
    return ("invalid setting " if table is None else "bad ") + "; ".join(parts)


# I1's persistence classes by their names in tether.toml (tools/contract.py's PersistenceClass)
LaneClass = Literal["ephemeral", "persistent_session", "persistent_workspace"]


class ToolLanes(BaseModel):
    """Which lane backend (`tether.tools` entry point) runs which tools: `default` unless the
    tool's persistence class is in `lanes`, unless the tool itself is in `overrides`. One
    string (`tools = "bubblewrap"`, `TETHER_TOOLS=bubblewrap`) is the default alone. As
    variables: `TETHER_TOOLS__LANES__EPHEMERAL=e2b`, `TETHER_TOOLS__OVERRIDES__RENDER_CHART=
    bubblewrap` (the double underscore keeps them apart from `TETHER_TOOLS_DATABASE_URL`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str = "local"
    lanes: dict[LaneClass, str] = Field(default_factory=dict)
    overrides: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_name(cls, value: Any) -> Any:
        """A backend's name, or the whole table as JSON (`TETHER_TOOLS='{"lanes": ...}'`)."""
        if not isinstance(value, str):
            return value
        if value.strip().startswith("{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(f"not a JSON table of lanes ({e})") from None
        return {"default": value}


class Settings(BaseSettings):
    """What tether needs to know about its environment; every field has a working default."""

    model_config = SettingsConfigDict(
        env_prefix="TETHER_", extra="allow", env_nested_delimiter="__"
    )

    data_dir: Path | None = None
    database_url: str | None = None
    # TETHER_WORKFLOWS: a JSON list, or modules separated by commas
    workflows: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_WORKFLOWS)
    )

    # Backends by entry-point name (group `tether.<interface>`). The checkpointer, unless
    # named, is the one the checkpoint database URL's scheme names, as for every interface that
    # stores rows (tether.foundation.loader.backend_for_url).
    checkpoint: str | None = None
    # I3: which engine executes runs (`local`: tether's runtime; `temporal`).
    engine: str = "local"
    # the temporal engine: its frontend, namespace, and the prefix of its task queues
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_queue_prefix: str = "tether"
    # a run's Temporal execution continues as new past this many history events (Temporal
    # terminates a run whose history passes 51,200 events or 50 MB)
    temporal_history_events: int = 10_000
    trace: str = "jsonl"
    tools: Annotated[ToolLanes, NoDecode] = Field(default_factory=ToolLanes)
    blobs: str = "files"
    # the `s3` blob store (every host reaches the same blobs): objects under `blobs_s3_url`
    # (s3://bucket/prefix); an endpoint URL reaches R2 or another S3-compatible store
    blobs_s3_url: str | None = None
    blobs_s3_endpoint_url: str | None = None

    # Leases and polling: seconds. Sub-second values are fine (tests use them).
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    # Values over this many bytes go to the blob store and are referred to by hash.
    blob_threshold: int = 256 * 1024
    event_retention_seconds: float = 7 * 24 * 3600.0
    # `synchronous=FULL` is the durable default; benchmarks of CPU cost set OFF.
    sqlite_synchronous: str = "FULL"

    # --- I12 model routing (validated by tether.foundation.models.config) ---
    # model_backends: instance name -> {type, restricted_ok, ...constructor options}
    # model_routes: task class (or "task:sensitivity") -> ordered [{backend, model, family}]
    model_backends: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # I6's approval transports beyond the local one: name (slack) -> its options
    hitl_transports: dict[str, dict[str, Any]] = Field(default_factory=dict)
    model_routes: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    # --- end I12 ---

    # --- I4 trace export (`trace = "jsonl,phoenix"` fans out to several sinks) ---
    # otlp: where unset, the standard OTEL_EXPORTER_OTLP_* variables apply.
    otlp_endpoint: str | None = None  # the collector's base URL; /v1/traces is added
    otlp_protocol: str | None = None  # "http/protobuf" (default) or "grpc"
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    # phoenix: OTLP/HTTP to `{phoenix_endpoint}/v1/traces`, spans in project `phoenix_project`
    phoenix_endpoint: str = Field(
        "http://127.0.0.1:6006",
        validation_alias=AliasChoices(
            "tether_phoenix_endpoint", "phoenix_endpoint", "phoenix_collector_endpoint"
        ),
    )
    phoenix_project: str = "tether"
    # langfuse: OTLP/HTTP to `{langfuse_host}/api/public/otel`, basic auth with the project's
    # keys; Langfuse's own LANGFUSE_HOST / _PUBLIC_KEY / _SECRET_KEY variables are read too
    langfuse_host: str = Field(
        "https://cloud.langfuse.com",
        validation_alias=AliasChoices("tether_langfuse_host", "langfuse_host"),
    )
    langfuse_public_key: str | None = Field(
        None, validation_alias=AliasChoices("tether_langfuse_public_key", "langfuse_public_key")
    )
    langfuse_secret_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("tether_langfuse_secret_key", "langfuse_secret_key")
    )
    # s3: the JSONL dump as objects under `trace_s3_url` (s3://bucket/prefix); an endpoint
    # URL reaches R2 or another S3-compatible store; credentials are the usual AWS ones
    trace_s3_url: str | None = None
    trace_s3_endpoint_url: str | None = None
    # --- end I4 ---

    config_file: Path | None = None

    def __init__(self, **values: Any) -> None:
        """Every bad value (a variable, a tether.toml key) is one ConfigurationError naming it
        and what is expected, never pydantic's report."""
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise ConfigurationError(explain(e)) from None
        except SettingsError as e:  # a variable of a list or table field that is not JSON
            field = re.search(r'field "(\w+)"', str(e))
            name = f"TETHER_{field[1].upper()}" if field else "a TETHER_ variable"
            raise ConfigurationError(
                f"invalid setting {name}: expected JSON ({e.__cause__ or 'unreadable value'})"
            ) from None

    @field_validator("workflows", mode="before")
    @classmethod
    def _module_list(cls, value: Any) -> Any:
        """`["a.b", "c"]` (JSON, as tether.toml gives it) or `a.b, c` (a plain variable)."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"not a JSON list of module names ({e})") from None
        return [m.strip() for m in text.split(",") if m.strip()]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        explicit = os.environ.get("TETHER_CONFIG_FILE")
        path = Path(explicit) if explicit else find_config_file()
        return (init_settings, env_settings, _TomlSource(settings_cls, path))

    def model_post_init(self, __context: Any) -> None:
        if self.config_file is None:
            explicit = os.environ.get("TETHER_CONFIG_FILE")
            self.config_file = Path(explicit) if explicit else find_config_file()
        if self.data_dir is None:
            base = self.config_file.parent if self.config_file else Path.cwd()
            self.data_dir = base / ".tether"

    @property
    def data_path(self) -> Path:
        assert self.data_dir is not None  # set in model_post_init
        return self.data_dir

    def database_url_for(self, interface: str) -> str:
        """`TETHER_<IFACE>_DATABASE_URL`, else `TETHER_DATABASE_URL`, else SQLite in the data
        dir."""
        specific = os.environ.get(f"TETHER_{interface.upper()}_DATABASE_URL")
        if specific is None and self.model_extra:
            specific = self.model_extra.get(f"{interface}_database_url")
        if specific:
            return str(specific)
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_path / 'tether.db'}"

    def ensure_data_dir(self) -> Path:
        """Create the data directory, or say plainly why it can't be used."""
        path = self.data_path
        try:
            path.mkdir(parents=True, exist_ok=True)
            # a nameless probe: workers starting together once raced on one named probe file,
            # and the loser's unlink failed a run with "not writable (No such file...)"
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as e:
            raise ConfigurationError(
                f"data directory {path} is not writable ({e.strerror}); "
                "set TETHER_DATA_DIR to a writable directory"
            ) from e
        return path


def redact_dsn(url: str) -> str:
    """The DSN with any password replaced, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
