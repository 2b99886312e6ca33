"""``logharbor server``: run the server in the foreground.

Its options are generated from :class:`~logharbor.server.config.ServerConfig`, one per field:
the name (``--field-name`` unless the field's :class:`~logharbor.server.config.Flag` keeps an
older one), the help (the field's description), the default and the unit (``--wal-max-mb`` is MiB
of ``wal_max_bytes``) all come from the model, so a new field gets its flag, its help line and its
row in docs/server.md's table (a test holds that) without anyone remembering to. Only the flags
given on the command line are passed on: ``ServerConfig.load`` then fills the rest from
``LOGHARBOR_*`` variables, the ``--config`` file and the defaults, in that order.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from logharbor.cli.errors import CliError
from logharbor.server.config import ENV_PREFIX, SECRET_FIELDS, Flag, Kind, ServerConfig, format_seconds
from logharbor.types import JsonObject

__all__ = ["FLAGS", "OptionSpec", "register", "run_server"]

#: the help page's panels: a panel starts at its field and runs until the next one starts (on/off
#: switches go to one panel of their own: their --no-x column would squeeze long names at 80 columns)
PANELS = {
    "data_dir": "Server",
    "wal_segment_bytes": "WAL and store writes",
    "patterns": "Patterns",
    "ingest_workers": "Ingest",
    "auth": "Access, keys and records",
    "encryption_key_file": "Encryption and TLS",
    "syslog_udp": "Syslog and forward listeners",
    "channel_allow_hosts": "Alert channels",
    "query_default_limit": "Queries",
    "max_request_bytes": "HTTP limits",
    "tail_max_clients": "Live tail",
    "cold_storage": "Retention and disk",
    "log_level": "Server",
}


def run_server(config: ServerConfig) -> None:
    """Serve until SIGINT/SIGTERM; the lifespan drains the WAL into the store on the way out."""
    import uvicorn

    from logharbor.server.app import create_app
    from logharbor.server.connections import ConnectionCap
    from logharbor.server.http_protocol import HttpLimits, limited_protocol

    app = create_app(config)

    def count_refused(listener: str) -> None:
        runtime = getattr(app.state, "runtime", None)
        if runtime is not None:
            runtime.metrics.count_refused(listener)
    # header size and count limits and read timeouts on the listener (http_protocol.py)
    http = limited_protocol(
        HttpLimits(
            max_header_bytes=config.max_header_bytes,
            max_headers=config.max_headers,
            header_timeout_s=config.header_timeout_s,
            body_timeout_s=config.body_timeout_s,
            cap=ConnectionCap("http", config.http_max_connections, "http_max_connections", count_refused),
        )
    )
    tls: dict[str, str] = {}
    if config.tls_cert and config.tls_key:
        tls = {"ssl_certfile": str(config.tls_cert), "ssl_keyfile": str(config.tls_key)}
    if not config.auth:
        print(
            "logharbor server: WARNING: authentication is OFF (--no-auth); anyone who can reach "
            f"{config.host}:{config.port} can read and write every log",
            flush=True,
        )

    class Server(uvicorn.Server):
        """uvicorn's server; on SIGTERM/SIGINT the batcher starts flushing at once, while the
        open requests finish (the lifespan shutdown that closes the runtime comes after them)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            runtime = getattr(app.state, "runtime", None)
            if runtime is not None:
                runtime.batcher.begin_flush()
            super().handle_exit(sig, frame)

    async def quiet_start_failure(scope: Any, receive: Any, send: Any) -> None:
        """``app``, except that a start failure the lifespan already reported in one line
        (``app.state.start_error``) does not reach the log a second time as a traceback."""
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def send_quiet(message: Any) -> None:
            if message["type"] == "lifespan.startup.failed" and getattr(app.state, "start_error", None):
                message = {**message, "message": ""}
            await send(message)

        return await app(scope, receive, send_quiet)

    Server(
        uvicorn.Config(
            quiet_start_failure,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            loop="uvloop",
            http=http,
            access_log=False,
            **tls,
            timeout_graceful_shutdown=max(1, min(10, int(config.shutdown_timeout_s))),
            ws_max_size=config.max_request_bytes,
        )
    ).run()  # a WebSocket message is a request too


class OptionSpec:
    """One field's command-line option: its names, what it reads, how that becomes the field."""

    def __init__(self, name: str, info: FieldInfo) -> None:
        self.field = name
        marks = [*info.metadata, *_metadata(info.annotation)]
        flag = next((m for m in marks if isinstance(m, Flag)), Flag())
        kinds = {m for m in marks if isinstance(m, str)}
        self.unit = flag.unit
        base = _base_type(info.annotation)
        self.switch = base is bool
        if self.switch:
            spelled = flag.name or f"--{_dashed(name)}/--no-{_dashed(name)}"
        else:
            spelled = flag.name or f"--{_dashed(name)}"
        self.decls = (spelled, *flag.aliases)
        self.names = [n for part in self.decls for n in part.split("/")]
        self.type: Any = (
            bool
            if self.switch
            else str
            if kinds & {Kind.DURATION, Kind.LIST} or (Kind.SIZE in kinds and flag.unit == 1)
            else base
        )
        if Kind.SIZE in kinds:
            self.metavar = {1: "SIZE", 1024: "KIB", 1024 * 1024: "MIB"}[flag.unit]
        elif Kind.DURATION in kinds:
            self.metavar = "DURATION"
        elif Kind.LIST in kinds:
            self.metavar = "LIST"
        else:
            self.metavar = None
        self.kinds = kinds
        self.help = info.description or ""
        self.default = self._default(info)

    def _default(self, info: FieldInfo) -> Any:
        """The field's default as the flag spells it (shown by --help; never passed on)."""
        value = None if info.default_factory is not None else info.default
        if value is None or self.switch:
            return value
        if Kind.DURATION in self.kinds:
            return format_seconds(float(value))
        if Kind.LIST in self.kinds:
            return ",".join(value) or None
        if Kind.SIZE in self.kinds:
            return value // self.unit if self.unit > 1 else _size_text(value)
        return value

    def option(self, panel: str) -> Any:
        return typer.Option(
            self.default,
            *self.decls,
            help=self.help,
            metavar=self.metavar,
            show_default=self.default is not None,
            rich_help_panel=panel,
        )

    def value(self, given: Any) -> Any:
        """What the field gets from the flag's value (a MiB flag's number → bytes)."""
        if self.unit > 1 and isinstance(given, int):
            return given * self.unit
        return given


def _metadata(annotation: Any) -> list[Any]:
    """Every Annotated marker in a field's type, through ``X | None``."""
    found: list[Any] = []
    for arg in typing.get_args(annotation):
        if isinstance(arg, FieldInfo):
            continue
        found.extend(_metadata(arg))
    found.extend(getattr(annotation, "__metadata__", ()))
    return found


def _base_type(annotation: Any) -> Any:
    """``Annotated[int | None, …]`` → ``int``."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])
    if typing.get_origin(annotation) is typing.Literal:
        return str
    return annotation


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def _size_text(value: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


def _specs() -> list[tuple[OptionSpec, str]]:
    panel = "Server"
    out = []
    for name, info in ServerConfig.model_fields.items():
        panel = PANELS.get(name, panel)
        spec = OptionSpec(name, info)
        out.append(
            (spec, "Switches" if spec.switch else panel)
        )  # --x/--no-x pairs: a narrow table of their own
    return out


#: every field's option, in the model's order
FLAGS: dict[str, OptionSpec] = {spec.field: spec for spec, _ in _specs()}


def _given(ctx: typer.Context, values: JsonObject) -> JsonObject:
    """The fields set on the command line; an option left at its default is not passed on, so
    the environment and the config file can set it."""
    return {
        name: FLAGS[name].value(value)
        for name, value in values.items()
        if name in FLAGS and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }


def config_error(exc: ValidationError) -> str:
    """pydantic's errors as one line each, naming the field, its flag and its variable."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        spec = FLAGS.get(field)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            lines.append(f"{field}: no such setting (the fields are listed in docs/server.md)")
        elif spec is None:
            lines.append(message)
        else:
            quiet = error["type"] == "value_error" or field in SECRET_FIELDS
            got = "" if quiet else f" (got {error['input']!r})"
            lines.append(f"{field} ({spec.names[0]}, {ENV_PREFIX}{field.upper()}): {message}{got}")
    return "invalid configuration: " + "; ".join(lines)


def register(app: typer.Typer) -> None:
    def server(ctx: typer.Context, config: Path | None = None, **values: Any) -> None:
        """Run the logharbor server: ingest, WAL, embedded store and the HTTP API."""
        try:
            settings = ServerConfig.load(_given(ctx, values), config)
        except ValidationError as exc:
            raise CliError(config_error(exc), 2) from None
        except ValueError as exc:
            raise CliError(str(exc), 2) from None
        run_server(settings)

    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Path | None,
            default=typer.Option(
                None,
                "--config",
                "-c",
                envvar="LOGHARBOR_CONFIG",
                metavar="FILE",
                rich_help_panel="Server",
                help="YAML file of settings (field names as keys); flags and "
                "LOGHARBOR_* variables win over it",
            ),
        ),
    ]
    for spec, panel in _specs():
        params.append(
            inspect.Parameter(
                spec.field,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=spec.type if spec.switch else spec.type | None,
                default=spec.option(panel),
            )
        )
    server.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    server.__annotations__ = {}
    app.command(
        "server",
        epilog="Precedence: flags > LOGHARBOR_<FIELD> variables > --config file > "
        "defaults. SIZE: bytes or 64MiB, 1GiB; DURATION: seconds or 500ms, 90s, 24h; LIST: "
        "comma-separated. Every setting: docs/server.md.",
    )(server)
