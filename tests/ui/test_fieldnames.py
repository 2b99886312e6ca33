"""The UI names a record's fields as the server does (ui/src/fieldnames.ts): its copy of the
table's columns and the http shorthands must be the server's, or a click on an attribute named
like a new column would filter on the column."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT

from logharbor.record import HTTP_FIELDS
from logharbor.server.features.query.fields import table_columns

SOURCE = (ROOT / "ui" / "src" / "fieldnames.ts").read_text(encoding="utf-8")


def _const(name: str) -> list[str]:
    m = re.search(rf"export const {name} = (\[[^\]]*\]);", SOURCE)
    assert m, f"fieldnames.ts has no {name}"
    return json.loads(re.sub(r",\s*\]", "]", m.group(1)))


def test_the_ui_knows_every_column_and_shorthand() -> None:
    # attributes_exact is read as an attribute's name by the server; attr_<key> columns (promoted
    # attributes) are quoted by the UI whatever they are
    columns = [c for c, _, _ in table_columns() if c != "attributes_exact" and not c.startswith("attr_")]
    assert sorted(_const("COLUMNS")) == sorted(columns)
    assert _const("HTTP_FIELDS") == list(HTTP_FIELDS)
