"""Records whose attributes cover every shape an attribute storage could treat differently, and
queries reaching them through every place an attribute path appears in the language.

Used by ``test_attribute_semantics.py`` (and its ``--record`` mode). Each record has a distinct
timestamp (rNN at 2026-11-02T10:NN:00Z), a ``rid`` attribute and service ``attrsem``, so every
answer can be named and "newest first" is one order. Changing either list means recording again.
"""

from __future__ import annotations

from typing import Any

BASE = "2026-11-02T10:{minute:02d}:00Z"
LONG = "long-" + "x" * 5000 + "-end"

#: attributes of each record, in order (r01 first); top-level keys here are the record's own keys
_ATTRIBUTES: list[dict[str, Any]] = [
    # strings that look like something else; the promoted-to-be keys as plain strings
    {"s_date": "2018-07-02T22:22:48.364000Z", "s_num": "123", "s_bool": "true", "s_float": "13.0",
     "user_id": "u-1", "n": 13.0, "kind": "a", "mixed": "1", "logger": "app.db"},
    {"s_date": "2018-07-02", "s_num": "0123", "s_bool": "false", "s_float": "-0",
     "user_id": 7, "n": 13, "kind": "b", "mixed": 1, "logger": "app.http", "order_id": "o-1"},
    {"s_num": "1e3", "user_id": "7", "n": -0.0, "kind": "A", "mixed": 1.5, "neg": -5, "error_code": "E1"},
    {"n": 1e300, "big": 2**63 - 1, "kind": "B", "mixed": True, "error_code": 500, "order_id": 42},
    {"n": 0.1, "big": 2**64 - 1, "mixed": [1], "order_id": 12345678901234567890123, "user_id": 13.0},
    {"n": -7, "big": 2**64 + 1, "mixed": {"m": 1}, "kind": "a b", "user_id": {"id": "u-9"}},
    {"n": True, "big": -(2**63) - 1, "flag": True, "mixed": None, "kind": "é"},
    {"n": None, "flag": False, "nul": None, "kind": "a"},
    {"n": "13", "e": {}, "arr": [], "kind": "ab"},
    {"n": {"x": 1}, "arr": [1, "a", True, None, 1.5, {"k": "v"}, [2]], "e": {"inner": {}}},
    {"n": 1e-7, "arr": [1, 2, 3], "big": 2**53 + 1},
    {"n": "abc", "arr": ["x", "y"], "nested_arr": [{"k": 1}, {"k": 2}]},
    # the same dotted name, every spelling
    {"a": {"b": 1}, "a.b": 2},
    {"a": {"b": "x"}},
    {"a.b": "x"},
    {"a.b": {"c": 3}, "a": {"b.c": 4}},
    {"a": {"b": {"c": 5}}, "deep": {"x": {"y": {"z": "deep"}}}},
    # keys that need quoting or escaping
    {"pct%": "p", "%2E": "dot-escaped", "x%2Ey": 2, "x.y": 1, "sp ace": "s p", "back`tick": "bt",
     "müşteri": "ü", "用户": 1, "": "empty", "o": {"%": "inner%", "a.b": "inner-dot"}},
    # keys equal to column names (top-level `status`/`duration_ms` stay attributes; a `service`
    # object is folded to `service.a`); the nested ones are plain attribute paths
    {"status": "teapot", "duration_ms": 13.0, "path": 5, "o": {"service": "inner", "message": "inner msg"},
     "service": {"a": 1}},
    {"status": 404, "duration_ms": 7, "o": {"service": "other", "level": "x"}},
    {"long": LONG, "kind": "a", "n": 2.5},
    {"KIND": "a", "Kind": "b", "n": 1e20},
    # an empty string beside absence; text that JSON escapes; floats at the edges of a double
    {"empty_s": "", "s_esc": "line1\nline2\t\"q\" \\ é 😀", "s_nul": "a\u0000b",
     "f_prec": 0.30000000000000004, "f_max": 1.7976931348623157e308, "f_min": 5e-324},
]


def records() -> list[dict[str, Any]]:
    """The corpus as wire records (DESIGN §2)."""
    out = []
    for i, attributes in enumerate(_ATTRIBUTES):
        item: dict[str, Any] = {"service": "attrsem", "message": f"m{i + 1:02d}",
                                "timestamp": BASE.format(minute=i)}
        item.update(attributes)
        item["rid"] = f"r{i + 1:02d}"
        out.append(item)
    return out


#: queries whose answer is a set of records or rows (the language leaves the order open)
FILTERS = [
    # equality: strings, numbers, 13 vs 13.0, case, bools, null
    "n:13", "n:13.0", 'n:"13"', "n:0", "n:-0", "n:-0.0", "n:1e300", "n:0.1", "n:1e-7", "n:1e20",
    "n:100000000000000000000", "n:-7", "n:true", "n:TRUE", "n:false", "n:null", "n:abc", "n:ABC",
    "user_id:7", 'user_id:"7"', "user_id:7.0", "user_id:13", "user_id:u-1", "user_id:U-1",
    "user_id.id:u-9", "kind:a", "kind:A", "kind:B", 'kind:"a b"', "kind:é", "KIND:a", "Kind:b",
    's_date:"2018-07-02T22:22:48.364000Z"', "s_date:2018-07-02", "s_num:123", 's_num:"0123"',
    "s_num:1000", "s_bool:true", "s_bool:false", "s_float:13", 's_float:"13.0"', "s_float:0",
    "big:9223372036854775807", "big:18446744073709551615", "big:18446744073709551617",
    "big:-9223372036854775809", "big:9007199254740993", "big:9007199254740992",
    "order_id:12345678901234567890123", "order_id:42", "order_id:o-1", "flag:true", "flag:false",
    "error_code:500", "error_code:E1", "logger:app.db", "neg:-5",
    "mixed:1", 'mixed:"1"', "mixed:1.5", "mixed:true", "mixed:m",
    "arr:1", "arr:x", "arr:a", 'arr:"[]"', 'e:"{}"', "e:{}",
    # exists
    "_exists_:n", "_exists_:e", "_exists_:arr", "_exists_:nul", "_exists_:mixed", "_exists_:big",
    "nul:*", "e:*", "arr:*", "mixed:*", "n:*", "NOT _exists_:n", "NOT _exists_:nul", "_exists_:o",
    "_exists_:e.inner", "_exists_:nested_arr", "_exists_:nested_arr.k",
    # dotted names, every spelling
    "a.b:1", "a.b:2", "a.b:x", "`a.b`:2", "`a.b`:x", "`a`.`b`:1", "`a`.b:x", "attributes.a.b:2",
    "attributes.`a.b`:2", "a.b.c:3", "a.b.c:4", "a.b.c:5", "`a.b`.c:3", "a.`b.c`:4", "`a.b.c`:3",
    "_exists_:a", "_exists_:a.b", "_exists_:`a.b`", "_exists_:a.b.c", "deep.x.y.z:deep",
    "_exists_:deep.x", "deep.x:*", "NOT a.b:1",
    # keys that need quoting, keys named like columns
    "`pct%`:p", "`%2E`:dot-escaped", "`x%2Ey`:2", "x.y:1", "x.y:2", "`x.y`:1", "`sp ace`:\"s p\"",
    "`back\\`tick`:bt", "müşteri:ü", "用户:1", "``:empty", "o.`%`:inner%", "o.`a.b`:inner-dot",
    "o.a.b:inner-dot", "`status`:teapot", "`status`:404", "`status`:*", "status:*",
    "`duration_ms`:13", "`duration_ms`:13.0", "`duration_ms`:>10", "attributes.duration_ms:13",
    "attributes.status:404", "`path`:5", "o.service:inner", "o.message:\"inner msg\"", "o.level:x",
    "service.a:1", "`service.a`:1", "`service`.a:1", "long:long-*", f'long:"{LONG}"',
    # wildcards and regex
    "kind:a*", "kind:?", "user_id:u-*", "user_id:7*", "n:1*", "s_date:*22:48*", "s_date:2018*",
    "big:1844*", "mixed:1*", "kind:/^[ab]$/", "kind:/(?i)^a$/", "user_id:/^u-/", "n:/^13/",
    "n:/^-0/", "s_num:/^0/", "big:/^18446744073709551617$/", "mixed:/^\\[/", "arr:/x/",
    # ranges and comparisons (numbers as numbers, strings as strings)
    "n:>10", "n:>=13", "n:<0", "n:<=0", "n:[0 TO 13]", "n:{0 TO 13}", "n:[13 TO 13]", "n:>=1e299",
    "n:[* TO 1]", "n:>-1", "big:>1e19", "big:<0", "big:[9e18 TO *]", "kind:[a TO b]", "kind:>a",
    "kind:{a TO b}", "kind:[A TO Z]", "s_date:>2018-07-01", "s_date:[2018-07-02 TO 2018-07-03]",
    "user_id:[5 TO 10]", "user_id:>u-0", "mixed:[1 TO 2]", "mixed:>=1", "s_num:[100 TO 200]",
    "s_num:>=1000", "`duration_ms`:[7 TO 13]",
    # in (a set of values), negation
    "_exists_:empty_s", 'empty_s:""', "NOT _exists_:empty_s", "empty_s:*", "s_esc:*line2*",
    's_esc:"line1\\nline2"', "s_esc:/line1\nline2/", "s_nul:*", "s_nul:a*", "f_prec:0.30000000000000004",
    "f_prec:0.3", "f_max:>1e308", "f_min:>0", "f_min:5e-324",
    "kind:(a OR B)", "n:(13 OR 0.1)", "user_id:(7 OR u-1)", "mixed:(1 OR true)", "NOT kind:a",
    "-n:13", "NOT n:>0", "NOT user_id:7", "kind:(NOT a)", "NOT mixed:*",
]

#: table queries (stats, top, fields, sort, dedup); a trailing ``sort`` makes the row order part
#: of the answer, otherwise rows are compared as a set
TABLES = [
    "* | stats count() as c by kind",
    "* | stats count() as c by n",
    "* | stats count() as c by user_id",
    "* | stats count() as c by mixed",
    "* | stats count() as c by a.b",
    "* | stats count() as c by `a.b`",
    "* | stats count() as c by a.b.c",
    "* | stats count() as c by arr",
    "* | stats count() as c by e",
    "* | stats count() as c by big",
    "* | stats count() as c by `status`",
    "* | stats count() as c by `duration_ms`",
    "* | stats count() as c by o.service",
    "* | stats count() as c by ``",
    "* | stats count() as c by kind, flag",
    "* | stats count(n), count_uniq(n), sum(n), avg(n), min(n), max(n)",
    "n:[-100 TO 100] | stats sum(n), avg(n), min(n), max(n), p50(n)",
    "* | stats sum(big), min(big), max(big), count(big), count_uniq(big)",
    "* | stats count(kind), count_uniq(kind), min(kind), max(kind)",
    "* | stats count(mixed), count_uniq(mixed), sum(mixed), min(mixed), max(mixed)",
    "* | stats count(a.b), count_uniq(a.b), count(`a.b`), count(e), count(nul), count(arr)",
    "* | stats sum(`duration_ms`), max(`duration_ms`), count(`status`), sum(user_id)",
    "* | stats first(n), last(n), first(kind), last(kind)",
    "* | stats count() as c, sum(n) as s by kind",
    "* | top 30 kind",
    "* | top 30 n",
    "* | top 30 mixed",
    "* | top 30 a.b",
    "* | top 30 user_id",
    "* | rare 30 big",
    "_exists_:n | fields rid, n | sort by rid",
    "_exists_:big | fields rid, big | sort by rid",
    "* | fields rid, arr, e, nul | sort by rid",
    "_exists_:mixed | fields rid, mixed | sort by rid",
    "* | fields rid, a.b, `a.b`, a.b.c, `a.b`.c, a.`b.c` | sort by rid",
    "* | fields rid, `status`, `duration_ms`, o.service, o, `service.a` | sort by rid",
    "* | fields rid, s_date, s_num, s_bool, s_float | sort by rid",
    "rid:r18 | fields `pct%`, `%2E`, `x%2Ey`, x.y, `x.y`, `sp ace`, `back\\`tick`, ``, müşteri, 用户, o",
    "* | fields rid, user_id, order_id, error_code, logger | sort by rid",
    "rid:r21 | fields long",
    "rid:r23 | fields empty_s, s_esc, s_nul, f_prec, f_max, f_min",
    "* | stats count() as c by empty_s",
    "* | stats count() as c by s_esc",
    "_exists_:n | sort by n, rid | fields rid, n",
    "_exists_:n | sort by n desc, rid | fields rid, n",
    "_exists_:kind | sort by kind, rid | fields rid, kind",
    "_exists_:mixed | sort by mixed, rid | fields rid, mixed",
    "_exists_:big | sort by big desc, rid | fields rid, big",
    "_exists_:user_id | sort by user_id, rid | fields rid, user_id",
    "* | stats count() as c by kind | sort by kind",
    "* | stats max(n) as m by kind | sort by m desc, kind",
    "* | where n:>0 | stats count() as c by kind | where c:>1",
]

#: record listings whose order is the language's (newest first, or the sort / dedup asked for)
ORDERED_RECORDS = [
    "_exists_:n | sort by n, rid",
    "_exists_:n | sort by n desc, rid",
    "_exists_:kind | sort by kind, rid",
    "_exists_:mixed | sort by mixed desc, rid",
    "_exists_:kind | dedup kind",
    "* | dedup n",
    "_exists_:mixed | dedup mixed",
    "* | dedup a.b",
    "_exists_:user_id | dedup user_id",
    "_exists_:n | sort by n, rid | limit 5",
    "* | sort by a.b, rid",
    "* | sort by `status` desc, rid",
]
