"""PII masking shared by the sdk (in the app) and the agent (on every collected line).

Secrets and personal data should be masked as close to their source as possible, and the same
way wherever they are masked, so one module holds the rules. A :class:`Redactor` is built once
from rule names and custom :class:`Rule` objects, then applied to text (:meth:`Redactor.redact_text`)
or to a whole record (:meth:`Redactor.redact_record`), where it also masks the values of
sensitive *field names* (``password``, ``authorization``, ``api_key`` …) whatever they hold.

Speed matters (the agent runs this on every line), so each rule carries a cheap *trigger*: a few
substrings of which one must be present before its regular expression runs at all. A clean line
costs a handful of ``in`` tests and one or two scans.

Built-in rules (:data:`RULES`); the first six are the default set (:data:`DEFAULT_RULES`):

============== ===========================================================================
name           masks
============== ===========================================================================
url_credentials the ``user:password@`` part of a URL
email          e-mail addresses
card           payment card numbers (13-19 digits, grouped or not) that pass the Luhn check
bearer         ``Bearer …``, ``Basic …`` and ``Token …`` credentials (Authorization headers)
jwt            JSON Web Tokens (``eyJ….eyJ….sig``)
aws_access_key AWS access key ids (``AKIA…``, ``ASIA…``)
aws_secret_key AWS secret access keys written next to their name
secret_kv      ``password=…``, ``token: …``, ``api_key=…`` pairs inside free text
ipv4, ipv6     IP addresses (opt-in: they are often needed for debugging)
============== ===========================================================================
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from logharbor.types import RawRecord

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_RULES",
    "RULES",
    "Redactor",
    "Rule",
    "luhn_valid",
]

MASK = "[REDACTED]"
_MISS = object()
_CACHE_TEXT_MAX = 256  # texts up to this length are remembered …
_CACHE_ENTRIES = 4096  # … this many of them (then the cache starts over)


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn checksum used by every payment card."""
    total = 0
    parity = len(digits) % 2
    for i, ch in enumerate(digits):
        d = ord(ch) - 48
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class Rule:
    """One masking rule: where to look (``pattern``), what to write, and when to bother.

    ``replacement`` is a ``re.sub`` template (``\\1`` keeps a group) or a function of the match.
    ``triggers``: substrings of which one must occur in the text for the pattern to run (empty:
    always run); with ``ignore_case`` they are looked for in the lower-cased text. ``gate`` is
    the same idea as a regular expression. Both exist because a regex that starts with a literal
    or a character class is scanned many times faster than one that starts with a lookbehind.
    ``validate``: a check on the match (Luhn for cards) — a match failing it is left as it was.
    """

    name: str
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str] = MASK
    triggers: tuple[str, ...] = ()
    ignore_case: bool = False
    validate: Callable[[re.Match[str]], bool] | None = field(default=None, compare=False)
    #: a fast regex (literal or charset first) that must match before ``pattern`` runs; built
    #: from ``triggers`` when not given
    gate: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        if self.gate is None and self.triggers:
            object.__setattr__(self, "gate", re.compile("|".join(map(re.escape, self.triggers))))

    @classmethod
    def custom(cls, name: str, pattern: str, replacement: str = MASK,
               triggers: Iterable[str] = ()) -> Rule:
        """A user rule from a regular expression (checked now, so a bad pattern fails at start)."""
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"redaction rule {name!r}: bad pattern {pattern!r}: {exc}") from None
        return cls(name=name, pattern=compiled, replacement=replacement, triggers=tuple(triggers))

    def sub(self, text: str) -> str:
        """Apply this rule to ``text`` (without looking at the triggers)."""
        if self.validate is None:
            return self.pattern.sub(self.replacement, text)
        check = self.validate
        repl = self.replacement

        def _one(m: re.Match[str]) -> str:
            if not check(m):
                return m.group(0)
            return repl(m) if callable(repl) else m.expand(repl)

        out = self.pattern.sub(_one, text)
        return text if out == text else out  # every match failed validation: keep the object


def _card_ok(m: re.Match[str]) -> bool:
    digits = re.sub(r"[ -]", "", m.group(0))
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _ipv6_ok(m: re.Match[str]) -> bool:
    text = m.group(0)
    if not any(c.isalnum() for c in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_SECRET_NAMES = (
    r"password|passwd|secret|token|api[_-]?key|apikey|private[_-]?key|session[_-]?id"  # noqa: S105 - names, not a secret
)

RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("url_credentials",
             re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"),
             r"\1" + MASK + "@", triggers=("://",)),
        Rule("email",
             re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                        r"\.[A-Za-z]{2,}\b"),
             "[EMAIL]", triggers=("@",)),
        Rule("card",
             re.compile(r"(?:[2-6](?<![\w-].)(?:\d{12,18}|\d{3}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?)"
                        r"|3(?<![\w-]3)[47]\d{2}[ -]\d{6}[ -]\d{5})(?!\w|-\d)"),
             "[CARD]", validate=_card_ok),
        Rule("bearer",
             # a credential has a digit or is long: "token validation failed" is English
             re.compile(r"\b(bearer|basic|token)(\s+)(?:(?=[A-Za-z\-._~+/]*\d)[A-Za-z0-9\-._~+/]{8,}"
                        r"|[A-Za-z0-9\-._~+/]{20,})=*", re.IGNORECASE),
             r"\1\2" + MASK, triggers=("bearer ", "basic ", "token "), ignore_case=True),
        Rule("jwt",
             re.compile(r"eyJ(?<![\w-]eyJ)[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
             "[JWT]", triggers=("eyJ",)),
        Rule("aws_access_key",
             re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)"
                        r"[A-Z0-9]{16}(?![A-Z0-9])"),
             "[AWS_KEY]", triggers=("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA",
                                    "ABIA", "ACCA")),
        Rule("aws_secret_key",
             re.compile(r"(aws_?secret_?(?:access_?)?key|secret_?access_?key)([\"']?\s*[:=]\s*[\"']?)"
                        r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])", re.IGNORECASE),
             r"\1\2" + MASK, triggers=("secret",), ignore_case=True),
        Rule("secret_kv",
             re.compile(r"(?<![\w-])((?:[A-Za-z0-9]+[_-])*(?:" + _SECRET_NAMES + r"))([\"']?\s*[:=]\s*[\"']?)"
                        r"(?!\[REDACTED\])[^\s\"'&,;}]+", re.IGNORECASE),
             r"\1\2" + MASK, ignore_case=True,
             gate=re.compile(r"(?:" + _SECRET_NAMES + r")[\"']?\s*[:=]")),
        Rule("ipv6",
             re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?"
                        r"(?![\w:.]|\.\d)"),
             "[IPV6]", validate=_ipv6_ok, gate=re.compile(r":[0-9A-Fa-f]{0,4}:")),
        Rule("ipv4",
             re.compile(r"(?<![\w.])" + _OCTET + r"(?:\." + _OCTET + r"){3}(?![\w]|\.\d)"),
             "[IPV4]", gate=re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")),
    )
}
#: Rules on by default: secrets and personal data that are never needed to debug a request.
DEFAULT_RULES = ("url_credentials", "email", "card", "bearer", "jwt", "aws_access_key",
                 "aws_secret_key", "secret_kv")

#: Field names whose values are masked whole. A key matches when, lower-cased with ``_ - .``
#: removed, it equals one of these or ends with one of :data:`_SENSITIVE_SUFFIXES`.
DEFAULT_FIELDS = frozenset({
    "password", "passwd", "pwd", "pass", "secret", "token", "authorization", "auth", "cookie",
    "setcookie", "apikey", "xapikey", "sessionid", "privatekey", "credentials", "proxyauthorization",
})
_SENSITIVE_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "privatekey",
                       "secretkey", "accesskey", "authorization", "credentials")
#: Canonical fields that never hold personal data; skipped for speed.
_SKIP_FIELDS = frozenset({
    "timestamp", "observed_timestamp", "level", "severity_number", "trace_id", "span_id",
    "service", "source", "env", "version", "tenant",
})


class Redactor:
    """Masks secrets and personal data in text and records, with one set of rules.

    ``rules``: names from :data:`RULES` and/or :class:`Rule` objects, applied in order
    (``None`` = :data:`DEFAULT_RULES`). ``fields``: sensitive field names (``None`` =
    :data:`DEFAULT_FIELDS`; pass an empty set to mask by content only). ``mask`` replaces the
    value of a sensitive field. ``skip_fields``: top-level fields never examined, besides the
    canonical ones that cannot hold personal data (timestamp, level, ids, service …).
    Instances are immutable and safe to share between threads.
    """

    def __init__(self, rules: Iterable[str | Rule] | None = None, *,
                 fields: Iterable[str] | None = None, mask: str = MASK,
                 skip_fields: Iterable[str] = ()) -> None:
        chosen: list[Rule] = []
        for item in DEFAULT_RULES if rules is None else rules:
            if isinstance(item, Rule):
                chosen.append(item)
            elif item in RULES:
                chosen.append(RULES[item])
            else:
                raise ValueError(f"unknown redaction rule {item!r}; known: {', '.join(RULES)}")
        self.rules: tuple[Rule, ...] = tuple(chosen)
        self._has_custom = any(RULES.get(r.name) is not r for r in chosen)
        self._plain = tuple((r, r.gate) for r in chosen if not r.ignore_case)
        self._folded = tuple((r, r.gate) for r in chosen if r.ignore_case)
        self._skip = _SKIP_FIELDS | frozenset(skip_fields)
        names = DEFAULT_FIELDS if fields is None else fields
        self.fields = frozenset(_fold_key(f) for f in names)
        self._suffixes = _SENSITIVE_SUFFIXES if fields is None else ()
        self.mask = mask
        self._key_cache: dict[str, bool] = {}
        self._text_cache: dict[str, str | None] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Redactor:
        """Build from a plain mapping (agent YAML, sdk options).

        Keys: ``rules`` (names, default the default set), ``ip: true`` (adds ipv4 and ipv6),
        ``fields`` (extra sensitive field names, added to the defaults), ``patterns``: a list of
        ``{name, pattern, replacement}``; ``skip_fields``, ``mask`` as in the constructor.
        """
        names: list[str | Rule] = list(config.get("rules") or DEFAULT_RULES)
        if config.get("ip"):
            names += [n for n in ("ipv6", "ipv4") if n not in names]
        for i, spec in enumerate(config.get("patterns") or ()):
            if "pattern" not in spec:
                raise ValueError(f"redaction patterns[{i}]: 'pattern' is required")
            names.append(Rule.custom(spec.get("name", f"custom{i}"), spec["pattern"],
                                     spec.get("replacement", MASK), spec.get("triggers", ())))
        fields = set(DEFAULT_FIELDS) | set(config.get("fields") or ())
        redactor = cls(names, fields=fields, mask=config.get("mask", MASK),
                       skip_fields=config.get("skip_fields") or ())
        redactor._suffixes = _SENSITIVE_SUFFIXES
        return redactor

    # -- text ---------------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """``text`` with every match of every rule masked (the same object when nothing matched).

        Short texts are remembered (messages and ids repeat a lot in logs), so a repeated clean
        value costs one dictionary lookup.
        """
        if len(text) < 6 and not self._has_custom:
            return text  # shorter than the shortest thing any built-in rule masks (a@b.io)
        cached = self._text_cache.get(text, _MISS)
        if cached is not _MISS:
            return text if cached is None else cached
        out = self._redact_text(text)
        if len(text) <= _CACHE_TEXT_MAX:
            cache = self._text_cache
            if len(cache) >= _CACHE_ENTRIES:
                cache.clear()
            cache[text] = None if out is text else out
        return out

    def _redact_text(self, text: str) -> str:
        for rule, gate in self._plain:
            if gate is None or gate.search(text):
                text = rule.sub(text)
        if self._folded:
            lowered = text.lower()
            for rule, gate in self._folded:
                if gate is None or gate.search(lowered):
                    new = rule.sub(text)
                    if new is not text:
                        text = new
                        lowered = text.lower()
        return text

    # -- records ------------------------------------------------------------------------------

    def is_sensitive(self, key: str) -> bool:
        """Whether a field of this name has its whole value masked (cached per name)."""
        hit = self._key_cache.get(key)
        if hit is None:
            folded = _fold_key(key)
            hit = folded in self.fields or folded.endswith(self._suffixes)
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = hit
        return hit

    def redact_value(self, value: Any) -> Any:
        """Mask strings (by content) and containers (by content and field names), recursively."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return self._redact_dict(value, ())
        if isinstance(value, list | tuple):
            out = [self.redact_value(v) for v in value]
            return value if all(a is b for a, b in zip(out, value, strict=True)) else out
        return value

    def redact_record(self, record: Mapping[str, Any]) -> RawRecord:
        """A record with sensitive fields and values masked; the input is never modified.

        Works on the flat wire form and on :func:`logharbor.record.normalize` output alike
        (``attributes`` and ``http`` are walked like any nested object). Returns the same object
        when nothing needed masking, so the common clean record costs no copy.
        """
        return self._redact_dict(record, self._skip)

    def _redact_dict(self, obj: Mapping[str, Any], skip: frozenset[str] | tuple[()]) -> Any:
        # the agent and the sdk run this on every record: locals, and the caches consulted inline
        out: RawRecord | None = None
        key_cache = self._key_cache
        text_cache = self._text_cache
        for key, value in obj.items():
            if value is None or key in skip:
                continue
            kind = type(value)
            if kind is bool:
                continue
            sensitive = key_cache.get(key)
            if sensitive is None:
                sensitive = isinstance(key, str) and self.is_sensitive(key)
            if sensitive:
                new: Any = self.mask if value != "" else value
            elif kind is str:
                cached = text_cache.get(value, _MISS)
                if cached is None:
                    continue  # known clean
                new = self.redact_text(value) if cached is _MISS else cached
            elif isinstance(value, dict | list | tuple):
                new = self.redact_value(value)
            else:
                continue
            if new is not value:
                if out is None:
                    out = dict(obj)
                out[key] = new
        return obj if out is None else out


def _fold_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "").replace(".", "")
