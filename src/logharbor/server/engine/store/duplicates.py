"""Copies left by the tier mover of the release before text attributes, found and removed safely.

That mover removed a moved row from its source only when the row's identity hashed the same in
the copy. For a cold copy it hashed the JSON column's text in the table against the Parquet
file's text cast back to JSON, which differ for some values (``-0.0`` printed ``-0`` and read
back as ``0``; ``1e20`` printed as its digits and read back as a string): such a row stayed in
its table, and every later tick copied it into another cold file. After the upgrade every copy
holds the same exact text, so each such record is several rows **equal in every stored column**
(times to the nanosecond, receive time, batch id, attributes text), each in another place: the
hot table, a warm move, a cold file.

Identifying them exactly: rows are grouped by a 128-bit hash of every stored column and counted
per place. A record really sent twice in one request is two equal rows too, but always in the
**same** place, and a move takes both: so a mover's copy shows as the same group in several
places, each holding the same number of rows. A group in several places with the **same** count
in each is a mover's copy: all places but one are removed, which keeps the record as many times
as it was sent. A group whose places hold different counts (no path of the old mover makes that)
is only listed, never removed. Records sent twice in different requests differ in batch id and
receive time, so they are never grouped.

``logharbor store duplicates DATA_DIR [--remove]`` runs this on a stopped server's store.
"""

from __future__ import annotations

# SQL here is built from the tiers' own quoted names and expressions; values are parameters.
# ruff: noqa: S608
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.engine.store.tiers import Tiers

__all__ = ["DuplicateGroup", "describe", "find_duplicates", "remove_duplicates"]

#: ids per statement (a ClickHouse server caps one parameter at 128 KiB: 32-char ids, well under)
_IDS_PER_STATEMENT = 2000


@dataclass
class DuplicateGroup:
    """Equal rows found in more than one place: ``places`` maps ``hot`` / ``warm:<move id>`` /
    ``cold:<key>`` to the rows there."""

    id: str
    timestamp: str
    service: str
    message: str
    places: dict[str, int] = field(default_factory=dict)

    @property
    def removable(self) -> bool:
        """The old mover's copies: the same number of rows in every place."""
        return len(self.places) > 1 and len(set(self.places.values())) == 1

    @property
    def keep(self) -> str:
        """The place kept: the hot table, else the first warm move, else the first cold file."""
        return min(self.places, key=lambda p: ({"hot": 0, "warm": 1}.get(p.split(":")[0], 2), p))

    @property
    def extra_rows(self) -> int:
        """Rows beyond the record's own copies (what a removal takes away)."""
        return sum(self.places.values()) - self.places[self.keep] if self.removable else 0


def _identity(tiers: Tiers) -> str:
    """A 128-bit hash of every stored column, as hex (the same expression reads every tier); a
    nullable column as whether it is null and its value (a NULL argument makes the hash NULL)."""
    parts = []
    for name, sql_type in tiers.columns:
        quoted = quote_identifier(name)
        parts.append(f"isNull({quoted}), assumeNotNull({quoted})" if sql_type.startswith("Nullable(")
                     else quoted)
    return f"hex(sipHash128({', '.join(parts)}))"


def _places(tiers: Tiers) -> Iterator[tuple[str, str]]:
    """(place expression, table expression) of every tier that exists."""
    yield "'hot'", tiers.hot
    yield "concat('warm:', move_id)", tiers.warm
    if tiers.cold is not None and tiers.cold.keys():
        yield "concat('cold:', _cold_path)", f"({tiers.cold_select(with_path=True)})"


def find_duplicates(tiers: Tiers) -> list[DuplicateGroup]:
    """Every group of equal rows found in more than one place (see the module docstring), one
    day at a time (copies share their time, so a group never spans two days; the engine's
    grouping then holds one day's rows at most)."""
    places = list(_places(tiers))
    days = tiers.store.query(
        "SELECT DISTINCT toString(toDate(timestamp)) AS d FROM ("
        + " UNION ALL ".join(f"SELECT timestamp FROM {source}" for _, source in places) + ") ORDER BY d", {})
    ident = _identity(tiers)
    parts = " UNION ALL ".join(f"SELECT {ident} AS id, {place} AS place, timestamp, service, message "
                               f"FROM {source} WHERE toDate(timestamp) = toDate({{dup_day:String}})"
                               for place, source in places)
    rows = []
    for day in days:
        rows += tiers.store.query(
            "SELECT id, place, count() AS n, toString(any(timestamp)) AS ts, any(service) AS service, "
            f"any(message) AS message FROM ({parts}) GROUP BY id, place HAVING id IN (SELECT id FROM "
            f"(SELECT id, uniqExact(place) AS k FROM ({parts}) GROUP BY id) WHERE k > 1) ORDER BY id, place",
            {"dup_day": str(day["d"])})
    keys = tiers.cold.keys() if tiers.cold is not None else []
    groups: dict[str, DuplicateGroup] = {}
    for row in rows:
        place = str(row["place"])
        if place.startswith("cold:"):  # the engine's path of the file → the cold store's key
            place = "cold:" + next((k for k in keys if place.endswith("/" + k)), place[5:])
        group = groups.setdefault(str(row["id"]), DuplicateGroup(str(row["id"]), str(row["ts"]),
                                                                  str(row["service"]), str(row["message"])))
        group.places[place] = int(row["n"])
    return list(groups.values())


def remove_duplicates(tiers: Tiers, groups: list[DuplicateGroup]) -> int:
    """Remove the extra places of the removable groups; the rows removed. Runs with nothing else
    writing (a stopped server): each place is rewritten once, with every id it loses."""
    by_place: dict[str, list[str]] = defaultdict(list)
    for group in groups:
        if group.removable:
            for place in group.places:
                if place != group.keep:
                    by_place[place].append(group.id)
    ident = _identity(tiers)
    removed = 0
    for place, ids in sorted(by_place.items()):
        kind, _, name = place.partition(":")
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = ids[start:start + _IDS_PER_STATEMENT]
            cond = f"{ident} IN {{dup_ids:Array(String)}}"
            if kind == "cold":
                removed += tiers.delete_in_cold_file(name, cond, {"dup_ids": chunk})
                continue
            table = tiers.hot if kind == "hot" else tiers.warm
            where = cond + (" AND move_id = {dup_move:String}" if kind == "warm" else "")
            params = {"dup_ids": chunk, **({"dup_move": name} if kind == "warm" else {})}
            n = int(tiers.store.query(f"SELECT count() AS n FROM {table} WHERE {where}", params)[0]["n"])
            if n:
                tiers.store.execute(f"DELETE FROM {table} WHERE {where}", params)
            removed += n
    if removed:
        tiers.refresh_view()
    return removed


def describe(group: DuplicateGroup) -> str:
    """One line for the operator."""
    places = ", ".join(f"{p} ×{n}" for p, n in group.places.items())
    verdict = (f"mover copies: keep {group.keep}, remove {group.extra_rows}" if group.removable
               else "counts differ between places: listed only, never removed")
    return f"{group.timestamp} {group.service} {group.message[:80]!r}: {places} ({verdict})"

