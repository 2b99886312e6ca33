"""SQL over the attributes text (store/attributes.py): which attribute names the rows hold.

Used by every field list (query fieldstats, the Loki catalog and drilldown, explain) instead of
the old JSON column's ``distinctJSONPaths``: the text has no per-part path list, so the names
come from a bounded sample of the matching rows, each row's object walked a fixed number of
levels deep in the engine (no cast to the JSON type: a row whose keys that type cannot hold,
such as ``a.b`` beside ``a%2Eb``, would fail the whole list).
"""

from __future__ import annotations

__all__ = ["NAMES_DEPTH", "attribute_names_sql"]

#: how deep a name is followed into nested objects; an object deeper than this is listed by the
#: name of the object itself (a search can still name what is inside it)
NAMES_DEPTH = 6


def _level(previous: str) -> str:
    """The (name, raw JSON value) pairs one level below the objects among ``previous``'s."""
    return ("arrayFlatten(arrayMap(p -> arrayMap(kv -> (concat(p.1, '.', kv.1), kv.2), "
            f"JSONExtractKeysAndValuesRaw(p.2)), arrayFilter(p -> startsWith(p.2, '{{'), {previous})))")


def _names(level: str, last: bool) -> str:
    """The names of ``level``'s values that are not objects walked further, nor null."""
    keep = "p.2 != 'null'" if last else "p.2 != 'null' AND NOT startsWith(p.2, '{')"
    return f"arrayMap(p -> p.1, arrayFilter(p -> {keep}, {level}))"


def attribute_names_sql(table: str, where: str, *, sample: str = "{names_sample:UInt64}",
                        depth: int = NAMES_DEPTH) -> str:
    """One row with ``k``: the distinct attribute names (dotted paths, each key as written: a
    literal ``a.b`` key and ``{"a": {"b": …}}`` both give ``a.b``, the name a query uses for
    either) of at most ``sample`` rows of ``table`` matching ``where``.

    ``table`` is a quoted table expression and ``where`` a condition from a compiler (every user
    value a ``{…}`` parameter); ``sample`` is a parameter placeholder (or a number), bound by the
    caller. Like the JSON column's paths, a null value and an empty object name nothing, and an
    array is one name (its elements are not walked).
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    levels = ["JSONExtractKeysAndValuesRaw(`attributes`) AS __lh_l1"]
    levels += [f"{_level(f'__lh_l{i}')} AS __lh_l{i + 1}" for i in range(1, depth)]
    names = ", ".join(_names(f"__lh_l{i}", i == depth) for i in range(1, depth + 1))
    return (f"SELECT groupUniqArrayArray(arrayConcat({names})) AS k "  # noqa: S608 - quoted/compiled parts
            f"FROM (SELECT {', '.join(levels)} FROM {table} WHERE {where} LIMIT {sample})")
