"""Try a parser on real lines: ``python -m logharbor.formats nginx -o format=main < access.log``.

Reads lines from stdin (or ``--file``), parses each with the parser and options given (the same
names and values as the agent's config; a value is read as JSON when it is valid JSON, as text
otherwise), optionally joins multiline events first (``-m preset=java``), and prints one JSON
object per record: the raw record, or with ``--normalize`` the canonical record in its wire form.
It exits with status 1 when any line did not parse, so it also checks a format against a sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

import orjson

from logharbor.formats.base import FormatError, build_parser
from logharbor.formats.multiline import build_multiline
from logharbor.record import RecordError, normalize, to_wire
from logharbor.types import JsonObject, RawRecord


def _options(pairs: list[str], flag: str) -> JsonObject:
    out: JsonObject = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} takes key=value, got {pair!r}")
        try:
            out[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            out[key] = value
    return out


def run(argv: list[str], stdin: TextIO, stdout: TextIO) -> int:
    """Parse the lines of ``stdin`` as ``argv`` says; return the exit status."""
    ap = argparse.ArgumentParser(prog="python -m logharbor.formats", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parser", help="json, logfmt, nginx, alb, syslog or regex")
    ap.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                    help="a parser option, e.g. format=main (repeatable)")
    ap.add_argument("-m", "--multiline", action="append", default=[], metavar="KEY=VALUE",
                    help="join multiline events first, e.g. preset=java (repeatable)")
    ap.add_argument("--normalize", action="store_true", help="print canonical records (wire form)")
    ap.add_argument("--file", type=argparse.FileType("r", encoding="utf-8", errors="replace"),
                    help="read this file instead of stdin")
    args = ap.parse_args(argv)
    try:
        parser = build_parser(args.parser, **_options(args.option, "--option"))
        agg = build_multiline(**_options(args.multiline, "--multiline")) if args.multiline else None
    except FormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = args.file or stdin
    failed = 0

    def emit(line: str) -> None:
        nonlocal failed
        raw = parser.parse(line)
        if "parse_error" in raw:
            failed += 1
        out: RawRecord = raw
        if args.normalize:
            try:
                out = to_wire(normalize(raw))
            except RecordError as exc:  # a parser bug if it happens: say so, keep going
                failed += 1
                out = {"message": line, "normalize_error": str(exc)}
        stdout.write(orjson.dumps(out, default=str).decode() + "\n")

    for line in source:
        text = line.rstrip("\r\n")
        if agg is None:
            emit(text)
        else:
            for event in agg.feed(text, time.monotonic()):
                emit(event)
    if agg is not None:
        for event in agg.close():
            emit(event)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:], sys.stdin, sys.stdout))
