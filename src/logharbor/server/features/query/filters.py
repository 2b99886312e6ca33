"""Filter AST → a SQL boolean expression, every user value passed as a query parameter.

What a matcher means depends on the kind of the field (:class:`~.fields.FieldRef`):

- ``message`` (text): words and phrases match in any case (the text index holds the lowercased
  message, ``lowerUTF8``); a word is a token looked up in that index (``hasAllTokens``); a phrase
  or a word with separators (``u-123``) also needs the substring (``positionCaseInsensitiveUTF8``);
  wildcards scan (``(?i)``); a regex is matched as written (case-sensitive unless ``(?i)``).
- a bare word (no field) is free text, as Kibana reads it (:meth:`FilterCompiler.free_word`): the
  word in ``message``, or the whole value, in any case, of the short canonical fields
  (:data:`FREE_TEXT_COLUMNS`), or the ``level`` it names (``error``, ``warning``), or the trace or
  request id it is.
- string columns: exact value, ``LIKE`` for wildcards, ``match`` for regexes, string order for
  ranges; ``level`` values are normalized (``warning`` → ``WARN``), trace ids too.
- numbers: the value must be a number (else ``type_mismatch``); ranges compare numerically.
- times: values are times (RFC 3339, epoch, ``now-1h``); ``_time:15m`` means the last 15 minutes.
- attributes: compared as their text form (fields.py), and as numbers when the value is a number;
  a dotted name matches when any of its spellings does (``a.b``: nested or a literal ``"a.b"``
  key). An equality on an attribute that is not promoted first asks for a plain run of the value
  in the row's stored text (:func:`stored_needle`, one substring search), so only the rows that
  can match pay for the JSON parse.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

from logharbor.record import LEVELS, normalize_level, normalize_trace_id
from logharbor.server.engine.store.freetext import COMPLETE, FREE_TEXT_FIELDS
from logharbor.server.engine.store.sqlsafe import quote_identifier, quote_string

from . import ast, limits
from .errors import InvalidRegexError, QueryError, QueryTypeError
from .fields import FieldRef
from .regex_re2 import re2_error
from .timeparse import TimeParseError, parse_duration_ns, parse_time_ns

__all__ = ["FREE_TEXT_COLUMNS", "FilterCompiler", "Params", "Resolver", "key_needle", "stored_needle",
           "wildcard_needle"]

#: Turns a user field name (and where it was written) into a resolved field.
Resolver = Callable[[str, int | None], FieldRef]

# splitByNonAlpha: ASCII letters/digits and every byte >= 0x80 are token characters.
_NON_TOKEN = r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]"  # noqa: S105 -- a regex, not a secret
_TOKEN = r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]"  # noqa: S105 -- a regex, not a secret
_SPLIT = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
#: the fields whose whole value a bare word also matches (in any case), besides message
FREE_TEXT_COLUMNS = FREE_TEXT_FIELDS
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.:=/-]{15,}")
_SQL_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<="}
_PY_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


class Params:
    """Collects query parameters and hands out typed placeholders (``{p0:String}``); counts the
    terms of the query they belong to against the clause limit (:mod:`.limits`)."""

    def __init__(self, max_clauses: int | None = None) -> None:
        self.values: dict[str, object] = {}
        self.clauses = 0
        self.max_clauses = max_clauses if max_clauses is not None else limits.max_clauses()

    def count_clause(self, position: int | None) -> None:
        """One more term (a field match, a word); over the limit is a ``too_many_clauses`` 400."""
        self.clauses += 1
        if self.clauses > self.max_clauses:
            raise limits.too_many(self.max_clauses, position)

    def add(self, value: object, sql_type: str) -> str:
        """Register ``value`` and return the placeholder that stands for it in SQL text."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{sql_type}}}"


def tokens(text: str) -> list[str]:
    """The tokens the ``message`` text index holds for ``text`` (splitByNonAlpha)."""
    return [t for t in _SPLIT.split(text) if t]


#: a decimal number as a query writes it (ASCII digits; no ``1_000``, no ``١٢``, no ``inf``)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: an integer as a query writes it; beyond 2**53 a Float64 cannot hold it exactly
_BIG_INT = re.compile(r"[+-]?[0-9]+")
_INT_FLOAT = 2**53
_INT256 = 2**255
#: what float() also reads as a number that is not finite
_NON_FINITE = re.compile(r"(?i)[+-]?(?:inf|infinity|nan)")


def _number(value: str) -> float | int | None:
    """The number ``value`` writes, or None when it is text; a number that is not finite (it
    overflows a float, or is ``inf``/``nan``) is None too: callers that compare refuse it first
    (:func:`_refuse_non_finite`) so that it is never compared as text."""
    text = value.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    out = float(text)
    if not math.isfinite(out):
        return None
    if re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        return int(text)
    return out


def _refuse_non_finite(name: str, value: str) -> None:
    """A comparison with a number no float holds (``>1e400``, ``<-1e400``, ``>inf``, ``>=nan``)
    has no honest answer: as text it would match at random, so it is a 400 naming the term."""
    text = value.strip()
    if _NON_FINITE.fullmatch(text) or (_DECIMAL.fullmatch(text) and not math.isfinite(float(text))):
        raise QueryTypeError(
            f"'{name}' compares with {value!r}, which is not a finite number (it overflows a "
            f"64-bit float, or is inf/nan); use a finite value")


#: characters every JSON writer this store has used writes as themselves, in a string and in a
#: key: printable ASCII but ``"`` and ``\\`` (always escaped), ``/`` (the engine's JSON output
#: escapes it) and ``<>&'`` (some writers escape them as ``\\u00XX``)
_PLAIN_RUN = re.compile(r"[\x20\x21\x23-\x25\x28-\x2e\x30-\x3b\x3d\x3f-\x5b\x5d-\x7e]+")
#: a shorter run is in nearly every row's text: a guard on it costs a scan and saves no parse
_MIN_NEEDLE = 3
_ATTRIBUTES = quote_identifier("attributes")


def stored_needle(text: str) -> str | None:
    """A substring of a row's stored attributes text whenever one of its attributes has ``text``
    as its text form, or None when there is no such promise worth checking.

    The promise holds for a value that is not number-like and does not start with ``{``/``[``:
    then only a JSON string with that content (or the literal ``true``/``false``) has that text
    form, and a string's content is in the stored text with only its escaped characters changed,
    so a run of characters no writer escapes (:data:`_PLAIN_RUN`) is there as it is — the whole
    string in its quotes when every character is plain. A number-like value can match a number
    written another way (``13`` is the text form of ``13.0``, ``100000000000000000000`` of
    ``1e20``) and an object's or array's text form is the engine's re-serialisation (``1.0`` →
    ``1``, spaces dropped), so neither gets a guard.
    """
    bare = text.strip()
    if _DECIMAL.fullmatch(bare) or _NON_FINITE.fullmatch(bare) or text[:1] in ("{", "["):
        return None
    if text not in ("true", "false") and _PLAIN_RUN.fullmatch(text):
        return f'"{text}"'
    best = max(_PLAIN_RUN.findall(text), key=len, default="")
    return best if len(best) >= _MIN_NEEDLE else None


def _literal_runs(wildcard: str) -> list[str]:
    """The literal pieces of a ``Wildcard.pattern`` (``\\`` escapes undone), split at ``*``/``?``."""
    pieces, current, i = [], [], 0
    while i < len(wildcard):
        ch = wildcard[i]
        if ch == "\\" and i + 1 < len(wildcard):
            current.append(wildcard[i + 1])
            i += 2
            continue
        if ch in "*?":
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    pieces.append("".join(current))
    return pieces


def wildcard_needle(wildcard: str) -> str | None:
    """A substring of the stored text of every record whose attribute's text form matches the
    wildcard, or None. Only a string's (or ``true``/``false``'s) text form is in the stored text
    as it is, so the promise needs a pattern no other text form can match: one that starts with
    a literal other than ``{``/``[`` (an object's or array's text starts with one) and has a
    literal no number's text has (digits, ``.``, ``e``, ``+``, ``-``). Then the longest plain run
    of its literal pieces is in the string's content, hence in the stored text."""
    pieces = _literal_runs(wildcard)
    literal = "".join(pieces)
    if not pieces[0] or pieces[0][0] in "{[" or not set(literal) - set("0123456789.eE+-"):
        return None
    best = max((run for piece in pieces for run in _PLAIN_RUN.findall(piece)), key=len, default="")
    return best if len(best) >= _MIN_NEEDLE else None


def key_needle(key: str, *, tail: str = '"') -> str | None:
    """A substring of the stored text of every object that has a key ``key + tail + …``: the key
    in its quotes when it is plain (``"user_id"``, or ``"b.`` for keys going on from ``b`` with a
    dot), else its longest plain run, or None when that is too short to be worth a scan."""
    if _PLAIN_RUN.fullmatch(key):
        return f'"{key}{tail}'
    best = max(_PLAIN_RUN.findall(key + tail.strip('"')), key=len, default="")
    return best if len(best) >= _MIN_NEEDLE else None


def like_pattern(wildcard: str) -> str:
    """A ``Wildcard.pattern`` as a LIKE pattern: ``*`` → ``%``, ``?`` → ``_``, the rest literal."""
    out: list[str] = []
    i = 0
    while i < len(wildcard):
        ch = wildcard[i]
        if ch == "\\" and i + 1 < len(wildcard):
            ch = wildcard[i + 1]
            out.append("\\" + ch if ch in "%_\\" else ch)
            i += 2
            continue
        out.append("%" if ch == "*" else "_" if ch == "?" else "\\" + ch if ch in "%_\\" else ch)
        i += 1
    return "".join(out)


def _token_regex(wildcard: str) -> str:
    """A word-with-wildcards on message as an RE2 pattern bounded by token edges."""
    out: list[str] = []
    literal_first = last_token = False
    i = 0
    while i < len(wildcard):
        ch = wildcard[i]
        if ch == "\\" and i + 1 < len(wildcard):
            ch = wildcard[i + 1]
            out.append(re.escape(ch))
            is_token = not _SPLIT.fullmatch(ch)
            i += 2
        elif ch in "*?":
            out.append(_TOKEN + ("*" if ch == "*" else ""))
            is_token = True
            i += 1
        else:
            out.append(re.escape(ch))
            is_token = not _SPLIT.fullmatch(ch)
            i += 1
        if len(out) == 1:
            literal_first = is_token
        last_token = is_token
    head = f"(?:^|{_NON_TOKEN})" if literal_first else ""
    tail = f"(?:$|{_NON_TOKEN})" if last_token else ""
    return head + "".join(out) + tail


def check_regex(pattern: str) -> None:
    """Reject a regex RE2 will not compile, so the user gets a 400 and not an engine error.

    The check is RE2 itself (:mod:`.regex_re2`, the engine the store runs), so a pattern is
    accepted here exactly when the store accepts it: ``(?i)``, ``\\pL``, ``\\z`` and ``\\Q…\\E`` are;
    lookaround, backreferences, atomic groups and possessive repeats are not.
    """
    reason = re2_error(pattern)
    if reason is not None:
        raise InvalidRegexError(f"regex /{pattern}/ does not compile in RE2: {reason}")


class FilterCompiler:
    """Compiles filters over one source, resolving names with ``resolve``."""

    def __init__(self, params: Params, resolve: Resolver, now_ns: int) -> None:
        self.params = params
        self.resolve = resolve
        self.now_ns = now_ns
        #: an SQL template turning a pattern id value into its group's (``{v}``: the value), when
        #: the source's ``pattern_id`` is the group's (query/patterns.py): an alias finds its group
        self.pattern_value: str | None = None
        #: the quoted table of the values the free-text fields have held (store/freetext.py), when
        #: the records are the logs' and the store keeps one: a bare word's field terms ask it first
        self.free_text_table: str | None = None

    def compile(self, f: ast.Filter) -> str:
        """The SQL condition for ``f``."""
        if isinstance(f, ast.MatchAll):
            return "1"
        if isinstance(f, ast.And):
            return "(" + " AND ".join(self.compile(i) for i in f.items) + ")"
        if isinstance(f, ast.Or):
            return "(" + " OR ".join(self.compile(i) for i in f.items) + ")"
        if isinstance(f, ast.Not):
            # a NULL (absent number or attribute) under NOT must count as "does not match"
            return f"(NOT ifNull({self.compile(f.operand)}, 0))"
        self.params.count_clause(f.pos)
        try:
            if isinstance(f, ast.Exists):
                return self.exists(self.resolve(f.field, f.pos))
            ref = self.resolve(f.field or "message", f.pos)
            if f.field is None and isinstance(f.matcher, ast.Word) and ref.kind == "text":
                return self.free_word(ref, f.matcher.value)
            return self.match(ref, f.matcher)
        except QueryError as exc:
            if exc.position is None and f.pos is not None:
                exc.position = f.pos
                exc.message = f"{exc.message} (at {f.pos})"
            raise

    # ------------------------------------------------------------------------------------------

    def exists(self, ref: FieldRef) -> str:
        """The field is present: non-empty text, non-NULL number, an attribute path with a value."""
        if ref.kind == "time":
            return "1"
        if ref.kind == "dynamic" and ref.paths:
            return self.attribute_exists(ref)
        if ref.kind == "json":
            # the whole attributes: any key at all ('' is a row without attributes)
            return f"({ref.sql} NOT IN ('', '{{}}'))"
        if ref.kind == "dynamic" or ref.nullable:
            # a projected attribute (after a pipe) is a plain column: NULL when it was absent
            return f"isNotNull({ref.sql})"
        if ref.kind in ("int", "float"):
            return f"({ref.sql} != 0)"
        return f"({ref.sql} != '')"

    def attribute_exists(self, ref: FieldRef) -> str:
        """An attribute name is present when a spelling has a value (an object too), or when a
        key goes on from a spelling with a dot: ``a:*`` is true of ``{"a.x": 1}``, since ``a.x``
        is a field under ``a`` (the JSON column's paths gave that; the text keeps the keys).
        Each check read from the text first asks for its key's text (:func:`key_needle`)."""
        present = []
        for spelling in ref.spellings():
            keys = spelling.paths[0]
            cond = f"isNotNull({spelling.sql})"
            if spelling.promoted_column is None:
                cond = self._guarded(key_needle(keys[-1]), cond)
            present.append(cond)
        for keys in () if ref.quoted else ref.paths:  # backticks name exactly one key path
            parent = "".join(f", {quote_string(k)}" for k in keys[:-1])
            prefix = self.params.add(keys[-1] + ".", "String")
            cond = f"arrayExists(k -> startsWith(k, {prefix}), JSONExtractKeys({_ATTRIBUTES}{parent}))"
            present.append(self._guarded(key_needle(keys[-1], tail="."), cond))
        return "(" + " OR ".join(present) + ")"

    def _guarded(self, needle: str | None, cond: str) -> str:
        """``cond`` behind a substring search of the stored text, when there is a needle."""
        if needle is None:
            return cond
        return f"(position({_ATTRIBUTES}, {self.params.add(needle, 'String')}) > 0 AND {cond})"

    def match(self, ref: FieldRef, m: ast.Matcher) -> str:
        """One field against one matcher, by the field's kind."""
        if ref.kind == "json":
            raise QueryTypeError(f"'{ref.name}' is the whole attribute object; match one of its paths")
        if ref.kind == "dynamic" and ref.paths and isinstance(m, ast.Word | ast.Phrase):
            return self.attribute_equals(ref, m.value)
        if ref.kind == "dynamic" and ref.paths and isinstance(m, ast.Wildcard):
            pattern = self.params.add(like_pattern(m.pattern), "String")
            parts = [f"({s.sql} LIKE {pattern})" for s in ref.spellings()]
            cond = parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
            if all(s.promoted_column is not None for s in ref.spellings()):
                return cond
            return self._guarded(wildcard_needle(m.pattern), cond)
        spellings = ref.spellings()
        if len(spellings) > 1:
            return "(" + " OR ".join(self.match(s, m) for s in spellings) + ")"
        if ref.kind == "time":
            return self.time_match(ref, m)
        if isinstance(m, ast.Wildcard):
            if ref.kind == "text":
                return f"match({ref.sql}, {self.params.add('(?i)' + _token_regex(m.pattern), 'String')})"
            return f"({self._text_of(ref)} LIKE {self.params.add(like_pattern(m.pattern), 'String')})"
        if isinstance(m, ast.Regex):
            check_regex(m.pattern)
            return f"match({self._text_of(ref)}, {self.params.add(m.pattern, 'String')})"
        if isinstance(m, ast.Range | ast.Compare):
            return self.ordered(ref, m)
        value = m.value
        if ref.kind == "text":
            return self.text_search(ref, value)
        if ref.kind in ("int", "float"):
            number = self._require_number(ref, value)
            return f"({ref.sql} = {self._number_param(number)})"
        if ref.kind == "dynamic":
            return self.value_equals(ref, value)
        if ref.column == "level":
            value = normalize_level(value) or value
        elif ref.column == "trace_id":
            value = normalize_trace_id(value) or value
        elif ref.column == "pattern_id" and self.pattern_value is not None:
            return f"({ref.sql} = {self.pattern_value.replace('{v}', self.params.add(value, 'String'))})"
        return f"({ref.sql} = {self.params.add(value, 'String')})"

    def value_equals(self, ref: FieldRef, value: str) -> str:
        """A text value equals the value as written, or, when that is a number, as a number (an
        absent attribute equals nothing, ``x:""`` included). An integer from 2**53 on compares
        exactly, as an integer (a Float64 cannot tell 2**64-1 from 2**64+1)."""
        text = f"({ref.sql} = {self.params.add(value, 'String')})"
        if _BIG_INT.fullmatch(value.strip()) and _INT_FLOAT <= abs(int(value)) < _INT256:
            return f"({text} OR toInt256OrNull({ref.sql}) = {self.params.add(int(value), 'Int256')})"
        number = _number(value)
        if number is None:
            return text
        return f"({text} OR {ref.number_sql} = {self._number_param(number, ref)})"

    def attribute_equals(self, ref: FieldRef, value: str) -> str:
        """``name:value`` on the records' attributes: any spelling equal (:meth:`value_equals`);
        the spellings read from the text share one guard (:func:`stored_needle`), and a promoted
        spelling reads its column (its bloom filter applies)."""
        spellings = ref.spellings()
        promoted = [s for s in spellings if s.promoted_column is not None]
        parsed = [s for s in spellings if s.promoted_column is None]
        parts = [self.value_equals(s, value) for s in promoted]
        if parsed:
            cond = "(" + " OR ".join(self.value_equals(s, value) for s in parsed) + ")"
            parts.append(self._guarded(stored_needle(value), cond))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def text_search(self, ref: FieldRef, value: str) -> str:
        """A word or phrase on message, in any case: token lookup through the index of the
        lowercased message, and the substring when the value is more than one whole token."""
        found = tokens(value)
        needle = self.params.add(value, "String")
        # the engine lowercases and splits the needle as the index does, so both sides agree; the
        # expression is the index's own (lowerUTF8(message)), so it means the same without it
        indexed = f"hasAllTokens(lowerUTF8({ref.sql}), lowerUTF8({needle}))"
        if len(found) == 1 and found[0] == value:
            return indexed
        substring = f"(positionCaseInsensitiveUTF8({ref.sql}, {needle}) > 0)"
        return f"({indexed} AND {substring})" if found else substring

    def free_word(self, message: FieldRef, value: str) -> str:
        """A bare word: in ``message`` in any case, or the whole value of a short canonical field
        (any case), or the level it names, or the trace/request id it is (what Kibana users type:
        ``error``, ``checkout``, a pasted trace id)."""
        parts = [self.text_search(message, value)]
        level = normalize_level(value) if value.isalpha() and len(value) >= 3 else None
        if level is not None:
            parts.append(f"({self.resolve('level', None).sql} = {self.params.add(level, 'String')})")
        needle = self.params.add(value, "String")
        fields = [f"(lowerUTF8({self.resolve(name, None).sql}) = lowerUTF8({needle}))"
                  for name in FREE_TEXT_COLUMNS]
        if self.free_text_table is None:
            parts.extend(fields)
        else:
            # whether any field has held the word, or the values are not all in yet (no marker,
            # store/freetext.py): a scalar subquery the engine runs before it reads the logs, so
            # when no field can equal the word the terms are a constant false and the text index
            # prunes granules as it does for message:word
            held = (f"(SELECT countIf(field = '{COMPLETE}') = 0 OR countIf(field != '{COMPLETE}') > 0 "  # noqa: S608 -- quoted name
                    f"FROM {self.free_text_table} WHERE field = '{COMPLETE}' OR value = lowerUTF8({needle}))")
            parts.append(f"({held} AND ({' OR '.join(fields)}))")
        if _ID.fullmatch(value):
            trace = normalize_trace_id(value)
            if trace is not None and len(trace) == 32:
                parts.append(f"({self.resolve('trace_id', None).sql} = {self.params.add(trace, 'String')})")
            parts.append(f"({self.resolve('request_id', None).sql} = {needle})")
        return "(" + " OR ".join(parts) + ")"

    def ordered(self, ref: FieldRef, m: ast.Range | ast.Compare) -> str:
        """Ranges and comparisons: numeric for numbers (and numeric attribute values), else text."""
        if isinstance(m, ast.Compare):
            bounds = [(m.op, m.value)]
        else:
            bounds = []
            if m.lo is not None:
                bounds.append((">=" if m.lo_inclusive else ">", m.lo))
            if m.hi is not None:
                bounds.append(("<=" if m.hi_inclusive else "<", m.hi))
        if not bounds:
            return self.exists(ref)
        if ref.column == "level":
            return self.level_range(ref, bounds)
        for _, value in bounds:
            _refuse_non_finite(ref.name, value)
        numeric = ref.kind in ("int", "float") or (
            ref.kind == "dynamic" and all(_number(v) is not None for _, v in bounds)
        )
        parts = []
        for op, value in bounds:
            if numeric:
                number = self._require_number(ref, value)
                parts.append(f"{ref.number_sql} {_SQL_OPS[op]} {self._number_param(number, ref)}")
            else:
                parts.append(f"{self._text_of(ref)} {_SQL_OPS[op]} {self.params.add(value, 'String')}")
        return "(" + " AND ".join(parts) + ")"

    def level_range(self, ref: FieldRef, bounds: list[tuple[str, str]]) -> str:
        """``level:>=WARN`` means WARN, ERROR and FATAL: levels compare by severity, not spelling."""
        allowed = set(LEVELS)
        for op, value in bounds:
            level = normalize_level(value)
            if level is None:
                raise QueryTypeError(
                    f"'{ref.name}' compares levels; {value!r} is not one of {' '.join(LEVELS)}")
            rank = LEVELS.index(level)
            allowed &= {name for i, name in enumerate(LEVELS) if _PY_OPS[op](i, rank)}
        if not allowed:
            return "0"
        ors = [f"{ref.sql} = {self.params.add(name, 'String')}" for name in LEVELS if name in allowed]
        return "(" + " OR ".join(ors) + ")"

    def time_match(self, ref: FieldRef, m: ast.Matcher) -> str:
        """``_time:15m`` (the last 15 minutes), ``_time:>now-1h``, ``_time:[a TO b]``."""
        if isinstance(m, ast.Wildcard | ast.Regex):
            raise QueryTypeError(f"'{ref.name}' is a time; use a range or a duration such as {ref.name}:15m")
        if isinstance(m, ast.Word | ast.Phrase):
            value = m.value.strip()
            try:
                since = self.now_ns - parse_duration_ns(value)
            except TimeParseError:
                since = self._time(ref, value)
            return f"({ref.sql} >= {self._time_param(since)})"
        bounds: list[tuple[str, str]] = []
        if isinstance(m, ast.Compare):
            bounds.append((m.op, m.value))
        else:
            if m.lo is not None:
                bounds.append((">=" if m.lo_inclusive else ">", m.lo))
            if m.hi is not None:
                bounds.append(("<=" if m.hi_inclusive else "<", m.hi))
        if not bounds:
            return "1"
        parts = [f"{ref.sql} {_SQL_OPS[op]} {self._time_param(self._time(ref, v))}" for op, v in bounds]
        return "(" + " AND ".join(parts) + ")"

    # ------------------------------------------------------------------------------------------

    def _time(self, ref: FieldRef, value: str) -> int:
        try:
            return parse_time_ns(value, now_ns=self.now_ns)
        except TimeParseError as exc:
            raise QueryTypeError(f"'{ref.name}' needs a time: {exc}") from None

    def _time_param(self, ns: int) -> str:
        return f"fromUnixTimestamp64Nano({self.params.add(ns, 'Int64')}, 'UTC')"

    def _text_of(self, ref: FieldRef) -> str:
        if ref.kind == "dynamic":  # the text form: an absent attribute (NULL) matches no pattern or range
            return ref.sql
        return ref.sql if ref.kind in ("text", "string") else f"toString({ref.sql})"

    def _number_param(self, number: float | int, ref: FieldRef | None = None) -> str:
        exact = isinstance(number, float) or abs(number) < _INT_FLOAT
        if ref is not None and ref.kind == "dynamic" and exact:
            # an attribute's number form is a Float64: a Float64 constant of the same value lets
            # the min/max index of a promoted column prune parts (an Int64 one does not)
            return self.params.add(float(number), "Float64")
        return self.params.add(number, "Int64" if isinstance(number, int) else "Float64")

    def _require_number(self, ref: FieldRef, value: str) -> float | int:
        _refuse_non_finite(ref.name, value)
        number = _number(value)
        if number is None:
            raise QueryTypeError(f"'{ref.name}' is a number; {value!r} is not one")
        return number
