"""One time zone setting for the times the CLI prints for people (``--tz``, ``LOGHARBOR_TZ``).

The server stores and answers UTC (``2026-11-01T12:00:00.123456789Z``); the web UI shows times
in the browser's zone or in UTC, as its setting says. The CLI follows the same choice: ``local``
(the default, the machine's zone, as the UI's default), ``utc``, or any IANA name
(``Europe/Paris``). Only human output changes (``query`` table and raw lines, ``tail``); json,
ndjson and csv are data and keep the server's UTC text. The fraction of a second is kept digit
for digit (nanoseconds are never rounded through a float).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

__all__ = ["TZ_OPTION", "WIRE_TIME", "Zone", "parse_zone"]

TZ_OPTION = typer.Option("local", "--tz", envvar="LOGHARBOR_TZ", metavar="ZONE",
                         help="time zone of the times shown: local, utc or a name such as Europe/Paris "
                              "(json, ndjson and csv stay UTC)")

#: a time as the server writes it: RFC 3339 in UTC with up to nanoseconds
WIRE_TIME = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d{1,9})?Z")


@dataclass(frozen=True)
class Zone:
    """Where wire times are shown; ``label`` is what a column header says (``UTC``, ``local``)."""

    tz: tzinfo | None  # None: the machine's local zone, looked up per time (daylight saving)
    label: str

    def convert(self, text: str, *, sep: str = "T", digits: int | None = None, offset: bool = True) -> str:
        """``text`` in this zone when it is a wire time, else unchanged.

        ``sep``: between date and time (``" "`` for tables); ``digits``: keep this many digits of
        the fraction (None: all of them); ``offset``: end with ``Z`` (UTC) or ``+hh:mm``, left
        out when a column header names the zone instead.
        """
        match = WIRE_TIME.fullmatch(text)
        if match is None:
            return text
        moment = datetime.fromisoformat(f"{match[1]}T{match[2]}+00:00")
        shown = moment.astimezone(self.tz) if self.tz is not None else moment.astimezone()
        fraction = match[3] or ""
        if digits is not None:
            fraction = ("." + (fraction[1:] + "0" * 9)[:digits]) if digits > 0 else ""
        suffix = ("Z" if self.tz is UTC else shown.isoformat()[-6:]) if offset else ""
        return f"{shown:%Y-%m-%d}{sep}{shown:%H:%M:%S}{fraction}{suffix}"


def parse_zone(name: str) -> Zone:
    """The zone a ``--tz`` value names; ValueError with a sentence for an unknown one."""
    key = name.strip()
    if key.lower() == "local":
        return Zone(None, "local")
    if key.lower() in ("utc", "z", "gmt"):
        return Zone(UTC, "UTC")
    try:
        return Zone(ZoneInfo(key), key)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--tz {name!r}: not a time zone (local, utc, or a name such as "
                         "Europe/Paris)") from None
