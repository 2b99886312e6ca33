"""``logharbor explain``: what sets a query's records in a window apart from a baseline.

Calls ``POST /api/v1/explain`` (docs/explain.md) and prints the ranked values: a table on a
terminal, one line per value anywhere else (the summary lines then go to stderr, so ``| grep``
and ``| wc -l`` see values only), or the server's JSON answer with ``-o json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from logharbor import exactjson
from logharbor.cli.client import CA_OPTION, KEY_OPTION, SERVER_OPTION, api_error_text, server_client
from logharbor.cli.terminal import visible
from logharbor.types import JsonObject, Row

__all__ = ["register", "value_line"]

_OUTPUTS = ("table", "raw", "json")


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _lift(x: float | None, new: bool) -> str:
    return "new" if new else "-" if x is None else f"{x:.2f}x"


def _pair(row: Row) -> str:
    return visible(f"{row['field']}={exactjson.text(row['value'])}", newlines=False)


def value_line(row: Row) -> str:
    """One ranked value as one line (raw output)."""
    return (f"{_pair(row)} focus={row['focus']['count']} ({_share(row['focus']['share'])}) "
            f"baseline={row['baseline']['count']} ({_share(row['baseline']['share'])}) "
            f"lift={_lift(row['lift'], row['new'])} g={row['g']} p={row['p']:.3g} "
            f"{'significant' if row['significant'] else 'not-significant'}")


def _summary(answer: JsonObject) -> list[str]:
    focus, base, stat = answer["focus"], answer["baseline"], answer["statistic"]
    lines = [f"focus {focus['count']} records {focus['from']} .. {focus['to']}; baseline ({base['mode']}) "
             f"{base['count']} records {base['from']} .. {base['to']}",
             f"significant: p < {stat['threshold_p']:.3g} (alpha {stat['alpha']}, Bonferroni over "
             f"{stat['tests']} tests)"]
    counted, sampled = answer.get("counted") or {}, answer.get("sampled") or {}
    if counted and not counted.get("exact", True):  # a large set: its columns counted on time slices
        lines.append(f"counted on time slices: {counted['focus']} of {focus['count']} focus records, "
                     f"{counted['baseline']} of {base['count']} baseline records; attributes on a sample of "
                     f"{sampled.get('focus', 0)} and {sampled.get('baseline', 0)}")
    together = answer.get("together")
    if together:
        lines.append(f"together: {visible(together['filter'], newlines=False)} in "
                     f"{_share(together['focus']['share'])} of the focus, "
                     f"{_share(together['baseline']['share'])} of the baseline")
    for n in answer.get("numbers") or []:
        mark = " (significant)" if n["significant"] else ""
        lines.append(f"{n['field']}: p50 {n['focus']['p50']} vs {n['baseline']['p50']}, "
                     f"p95 {n['focus']['p95']} vs {n['baseline']['p95']}{mark}")
    for p in answer.get("patterns") or []:
        lines.append(f"pattern {p['status']}: {visible(p['template'], newlines=False)} "
                     f"({p['focus']['count']} vs {p['baseline']['count']}) — {p['filter']}")
    left = ", ".join(x["field"] for x in answer.get("left_out") or [])
    if left:
        lines.append(f"left out: {visible(left, newlines=False)} (-o json says why)")
    return lines


def _table(console: Console, answer: JsonObject) -> None:
    table = Table(title=None, show_lines=False)
    for name, justify in (("#", "right"), ("value", "left"), ("focus", "right"), ("share", "right"),
                          ("baseline", "right"), ("share ", "right"), ("lift", "right"), ("G", "right"),
                          ("signif.", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, row in enumerate(answer["values"], 1):
        table.add_row(str(i), _pair(row), str(row["focus"]["count"]), _share(row["focus"]["share"]),
                      str(row["baseline"]["count"]), _share(row["baseline"]["share"]),
                      _lift(row["lift"], row["new"]), f"{row['g']:.1f}",
                      "yes" if row["significant"] else "no")
    console.print(table)
    for line in _summary(answer):
        console.print(line, markup=False, highlight=False)


def run_explain(text: str, *, server: str, api_key: str | None, ca: Path | None, output: str | None,
                body: JsonObject) -> int:
    """Ask the server and print; the exit code (1 refused, 2 unreachable or bad options)."""
    if output is not None and output not in _OUTPUTS:
        typer.echo(f"logharbor explain: --output must be one of {', '.join(_OUTPUTS)}", err=True)
        return 2
    mode = output or ("table" if sys.stdout.isatty() else "raw")
    try:
        with server_client(server, api_key, ca, timeout=120) as client:
            response = client.post("/api/v1/explain", json={"q": text, **body})
    except httpx.HTTPError as exc:
        typer.echo(f"logharbor explain: cannot reach {server}: {exc}", err=True)
        return 2
    if response.status_code >= 400:
        typer.echo(f"logharbor explain: {visible(api_error_text(response, api_key))}", err=True)
        return 1
    answer = response.json()
    if mode == "json":
        sys.stdout.write(exactjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif mode == "raw":
        for row in answer["values"]:
            sys.stdout.write(value_line(row) + "\n")
        for line in _summary(answer):
            sys.stderr.write(line + "\n")
    else:
        _table(Console(), answer)
    return 0


def register(app: typer.Typer) -> None:
    """Add ``logharbor explain`` to the main command."""

    @app.command("explain")
    def explain(
        text: str = typer.Argument(..., metavar="QUERY", help="the records to explain, e.g. 'level:ERROR'"),
        since: str | None = typer.Option(None, "--since", metavar="DURATION",
                                         help="the focus: the last 15m, 1h, …"),
        start: str | None = typer.Option(None, "--from", metavar="TIME", help="focus start"),
        end: str | None = typer.Option(None, "--to", metavar="TIME", help="focus end (default now)"),
        baseline: str = typer.Option("previous", "--baseline", metavar="MODE",
                                     help="previous (the window before, same length), window "
                                          "(--baseline-from/--baseline-to) or complement (the rest of "
                                          "the focus window)"),
        baseline_from: str | None = typer.Option(None, "--baseline-from", metavar="TIME"),
        baseline_to: str | None = typer.Option(None, "--baseline-to", metavar="TIME"),
        alpha: float | None = typer.Option(None, "--alpha", help="family-wise error rate (default 0.01)"),
        limit: int | None = typer.Option(None, "--limit", "-n", metavar="N", help="values listed (1-100)"),
        output: str | None = typer.Option(None, "--output", "-o", metavar="FORMAT",
                                          help="table, raw (one line per value) or json (default: table on "
                                               "a terminal, raw otherwise)"),
        server: str = SERVER_OPTION,
        api_key: str | None = KEY_OPTION,
        ca: Path | None = CA_OPTION,
    ) -> None:
        """What sets a query's records apart from a baseline: the field values whose share changed most."""
        if since is None and start is None:
            typer.echo("logharbor explain: give the focus window: --since 1h, or --from (and --to)", err=True)
            raise typer.Exit(2)
        body: JsonObject = {"baseline": baseline}
        for key, value in (("from", start), ("since", since), ("to", end), ("baseline_from", baseline_from),
                           ("baseline_to", baseline_to), ("alpha", alpha), ("limit", limit)):
            if value is not None:
                body[key] = value
        raise typer.Exit(run_explain(text, server=server, api_key=api_key, ca=ca, output=output, body=body))
