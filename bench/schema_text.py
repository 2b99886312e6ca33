"""The attributes-as-text variants of bench/schema.py (/work/wt/ATTRTEXT.md, issue #24 item 1).

Every variant stores the attributes' JSON text in ``attributes String`` and differs in one thing:

- ``text``: nothing promoted (the baseline: what promotion costs, and the long tail's parse);
- ``text_cols`` / ``text_cols_lc``: the default promoted set as one ``MATERIALIZED JSONExtract``
  column each (``attr_<key> Nullable(String)``), error_code and logger plain or LowCardinality;
- ``text_tuple`` / ``text_tuple_lc``: the same keys as ONE ``MATERIALIZED JSONExtract(attributes,
  'Tuple(…)')`` column (the text parsed once per row), read through its subcolumns ``attr.<key>``;
- ``text_z1``: ``text`` with ``CODEC(ZSTD(1))`` on the attributes (bytes and insert CPU of the level);
- ``text_tokenbf`` / ``text_ngrambf`` / ``text_textidx``: ``text`` plus a skip index on the
  attributes text (what it costs at insert, which granules it skips for a rare non-promoted value).

Indexes on promoted columns as in the plan: bloom filters on the ids, minmax on the number form.
"""

# ruff: noqa: S608 - the SQL here pastes only this module's constants; values go in as parameters
from __future__ import annotations

import orjson

PROMOTED = ("user_id", "order_id", "error_code", "logger", "duration_ms")
_LOW_CARD = ("error_code", "logger")
_ATTRS = "    attributes String CODEC(ZSTD({level})),\n"
_IDX = ("    INDEX idx_attr_user_id {user} TYPE bloom_filter(0.01) GRANULARITY 1,\n"
        "    INDEX idx_attr_order_id {order} TYPE bloom_filter(0.01) GRANULARITY 1,\n"
        "    INDEX idx_attr_duration_ms toFloat64OrNull({duration}) TYPE minmax GRANULARITY 1,\n")
_TEXT_INDEXES = {
    "text_tokenbf": "tokenbf_v1(32768, 3, 0) GRANULARITY 1",
    "text_ngrambf": "ngrambf_v1(4, 65536, 3, 0) GRANULARITY 1",
    "text_textidx": "text(tokenizer = splitByNonAlpha)",
}


def _type(key: str, low_card: bool) -> str:
    return "LowCardinality(Nullable(String))" if low_card and key in _LOW_CARD else "Nullable(String)"


def _columns(low_card: bool) -> str:
    cols = "".join(f"    attr_{k} {_type(k, low_card)} MATERIALIZED "
                   f"JSONExtract(attributes, '{k}', 'Nullable(String)'),\n" for k in PROMOTED)
    return cols + _IDX.format(user="attr_user_id", order="attr_order_id", duration="attr_duration_ms")


def _tuple(low_card: bool) -> str:
    fields = ", ".join(f"{k} {_type(k, low_card)}" for k in PROMOTED)
    return (f"    attr Tuple({fields}) MATERIALIZED JSONExtract(attributes, 'Tuple({fields})'),\n"
            + _IDX.format(user="attr.user_id", order="attr.order_id", duration="attr.duration_ms"))


def text_variants() -> dict[str, str]:
    """Variant name → the DDL lines that replace the shipped ``attributes JSON`` line."""
    out = {"text": _ATTRS.format(level=3),
           "text_cols": _ATTRS.format(level=3) + _columns(False),
           "text_cols_lc": _ATTRS.format(level=3) + _columns(True),
           "text_tuple": _ATTRS.format(level=3) + _tuple(False),
           "text_tuple_lc": _ATTRS.format(level=3) + _tuple(True),
           "text_z1": _ATTRS.format(level=1)}
    for name, index in _TEXT_INDEXES.items():
        out[name] = _ATTRS.format(level=3) + f"    INDEX idx_attr_text attributes TYPE {index},\n"
    return out


def _promoted(variant: str, key: str) -> str:
    if variant.startswith("text_cols"):
        return f"attr_{key}"
    if variant.startswith("text_tuple"):
        return f"attr.{key}"
    return f"JSONExtract(attributes, '{key}', 'Nullable(String)')"


# a non-promoted attribute: conn_trace_id (one ALB row per value: rare) and url (18 values, the
# commonest in ~9 % of rows); the guard looks for the value's JSON text before parsing the row
_RARE = "JSONExtract(attributes, 'conn_trace_id', 'Nullable(String)') = {rare:String}"
_COMMON = "JSONExtract(attributes, 'url', 'Nullable(String)') = {common:String}"
_FORCE = " SETTINGS short_circuit_function_evaluation = 'force_enable'"
_NOPRE = " SETTINGS optimize_move_to_prewhere = 0"


def _guarded(which: str, eq: str) -> dict[str, str]:
    needle = f"position(attributes, {{{which}_needle:String}}) > 0"
    base = "SELECT count() AS n FROM {t} "
    return {f"{which}_eq": f"{base}WHERE {eq}",
            f"{which}_guard": f"{base}WHERE {needle} AND {eq}",
            f"{which}_guard_force": f"{base}WHERE {needle} AND {eq}{_FORCE}",
            f"{which}_guard_noprewhere": f"{base}WHERE {needle} AND {eq}{_NOPRE}",
            f"{which}_prewhere": f"{base}PREWHERE {needle} WHERE {eq}",
            f"{which}_like": f"{base}WHERE attributes LIKE {{{which}_like:String}} AND {eq}"}


TEXT_QUERIES = {  # which variants run which group (the non-promoted queries read the same column)
    "promoted": ("text", "text_cols", "text_cols_lc", "text_tuple", "text_tuple_lc"),
    "long_tail": ("text",),
    "index": ("text", "text_tokenbf", "text_ngrambf", "text_textidx"),
}


def text_queries(variant: str) -> dict[str, str]:
    """The queries a text variant runs (``{t}`` is the table), by the groups above."""
    out: dict[str, str] = {}
    if variant in TEXT_QUERIES["promoted"]:
        p = lambda k: _promoted(variant, k)  # noqa: E731
        out |= {
            "by_error_code": f"SELECT {p('error_code')} AS e, count() AS n FROM {{t}} GROUP BY e",
            "by_logger": f"SELECT {p('logger')} AS g, count() AS n FROM {{t}} GROUP BY g",
            "user_id": f"SELECT * FROM {{t}} WHERE {p('user_id')} = {{user:String}} "
                       "ORDER BY timestamp DESC LIMIT 100",
            "duration_gt_1000": "SELECT count() AS n FROM {t} "
                                f"WHERE toFloat64OrNull({p('duration_ms')}) > 1000",
        }
    if variant in TEXT_QUERIES["long_tail"]:
        out |= {
            "by_url_extract": "SELECT JSONExtract(attributes, 'url', 'Nullable(String)') AS u, count() AS n "
                              "FROM {t} GROUP BY u",
            "by_url_string": "SELECT JSONExtractString(attributes, 'url') AS u, count() AS n "
                             "FROM {t} GROUP BY u",
            "by_url_raw": "SELECT JSONExtractRaw(attributes, 'url') AS u, count() AS n FROM {t} GROUP BY u",
            **_guarded("rare", _RARE), **_guarded("common", _COMMON),
            "rare_guard_rows": "SELECT * FROM {t} WHERE position(attributes, {rare_needle:String}) > 0 AND "
                               f"{_RARE} ORDER BY timestamp DESC LIMIT 100",
            "rare_eq_rows": f"SELECT * FROM {{t}} WHERE {_RARE} ORDER BY timestamp DESC LIMIT 100",
        }
    if variant in TEXT_QUERIES["index"]:
        out |= {
            "rare_like_idx": "SELECT count() AS n FROM {t} WHERE attributes LIKE {rare_like:String} "
                             f"AND {_RARE}",
            "rare_token_idx": "SELECT count() AS n FROM {t} WHERE hasToken(attributes, {rare_token:String}) "
                              f"AND {_RARE}",
            "rare_like_rows": f"SELECT * FROM {{t}} WHERE attributes LIKE {{rare_like:String}} AND {_RARE} "
                              "ORDER BY timestamp DESC LIMIT 100",
        }
    return out


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (``\\``, ``%`` and ``_`` escaped)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def long_tail_params(rows: list[bytes]) -> dict[str, str]:
    """A rare (one row) and a common value of two non-promoted attributes, and their needles."""
    n = len(rows)
    rare = next(orjson.loads(r)["attributes"]["conn_trace_id"]
                for r in rows[n // 2:] if b'"conn_trace_id"' in r)
    common = "https://shop.example.com:443/products"
    out = {"rare": rare, "common": common, "rare_token": rare.rsplit("_", 1)[-1]}
    for which, value in (("rare", rare), ("common", common)):
        text = orjson.dumps(value).decode()  # the value's JSON text, as the encoder wrote it
        out[f"{which}_needle"] = text
        out[f"{which}_like"] = like_pattern(text)
    return out


def _ignore(*exprs: str) -> str:
    return "SELECT count() AS n FROM {t} WHERE NOT ignore(" + ", ".join(exprs) + ")"


def _each(low_card: bool) -> list[str]:
    out = []
    for k in PROMOTED:
        e = f"JSONExtract(attributes, '{k}', 'Nullable(String)')"
        out.append(f"toLowCardinality({e})" if low_card and k in _LOW_CARD else e)
    return out


_FIELDS = ", ".join(f"{k} {_type(k, False)}" for k in PROMOTED)
_FIELDS_LC = ", ".join(f"{k} {_type(k, True)}" for k in PROMOTED)
#: what each way of promoting costs to compute, isolated from the rest of an insert: the
#: expressions evaluated over the stored text (minus ``read``, which only reads the column)
EXPRESSIONS = {
    "read": _ignore("attributes"),
    "one_column": _ignore(_each(False)[0]),
    "columns_5": _ignore(*_each(False)),
    "columns_5_lc": _ignore(*_each(True)),
    "tuple_5": _ignore(f"JSONExtract(attributes, 'Tuple({_FIELDS})')"),
    "tuple_5_lc": _ignore(f"JSONExtract(attributes, 'Tuple({_FIELDS_LC})')"),
}
