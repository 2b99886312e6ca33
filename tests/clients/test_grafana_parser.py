"""Grafana's own LogQL grammar (``@grafana/lezer-logql``, the parser of the Loki data source's
query editor, pinned in package.json) reads every query logharbor documents or tests as valid:
the conformance corpus, the examples of docs/grafana.md and the Logs Drilldown queries. Where
Grafana's editor and Loki disagree, the case is named here (the editor would underline a query
both Loki and logharbor run)."""

from __future__ import annotations

import json
import subprocess

from tests.loki_read.test_conformance import VALID
from tests.loki_read.test_docs import block
from tests.loki_read.test_grafana_corpus import AVG_PANEL, BREAKDOWNS, LOGS_TAB

from .conftest import HERE, needs

#: valid LogQL (Loki's lexer reads keywords in any case) that Grafana's editor grammar flags:
#: its keywords are lower case only
EDITOR_ONLY_REFUSES = {'SUM BY (service) (COUNT_OVER_TIME({service="checkout"}[5m]))'}


def grafana_errors(queries: list[str]) -> dict[str, list[int]]:
    """The offsets where Grafana's grammar finds an error, per query."""
    needs(HERE / "node_modules" / "@grafana" / "lezer-logql", "@grafana/lezer-logql (npm ci in tests/clients)")
    out = subprocess.run(["node", str(HERE / "logql_grafana.cjs")], input=json.dumps(queries), capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return {item["query"]: item["errors"] for item in json.loads(out)}


def test_every_valid_query_parses_in_grafana() -> None:
    queries = [q if kind is not None else f"sum_over_time({q.replace(' [5m]', '')} [5m])" for _, q, kind in VALID]
    queries += block("logql") + [q for q, _ in LOGS_TAB] + [q for q, _, _ in BREAKDOWNS] + [AVG_PANEL]
    assert len(queries) > 90
    errors = grafana_errors(queries)
    flagged = {q for q, at in errors.items() if at}
    assert flagged == EDITOR_ONLY_REFUSES, {q: errors[q] for q in flagged ^ EDITOR_ONLY_REFUSES}


def test_the_grammar_is_really_checked() -> None:
    """A broken query is flagged where it breaks (so an empty answer above means something)."""
    errors = grafana_errors(['{service="a" |= "x"', 'sum by (service) (rate({service="a"}[5m])'])
    assert all(errors.values()), errors
