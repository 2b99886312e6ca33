"""What each Elasticsearch bulk parameter does here: honoured, refused as Elasticsearch refuses
it, or ignored with a documented reason and counted (never silently).

Elasticsearch 8's bulk parser reads the *first* key of an action line as the action and its
object as the metadata; keys after that object on the same line are ignored (with a deprecation
warning). Inside the object, a parameter it does not know fails the whole request
(``Action/metadata line [n] contains an unknown parameter [x]``), since the pairing of the lines
that follow cannot be trusted. This module does the same, and decides per parameter; the table
in docs/protocols.md ("Bulk parameters") is the reference, ``tests/ingest/test_es_params.py``
checks each row. Pure functions on plain data: the decoding runs in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from logharbor.types import JsonObject

__all__ = [
    "ACTIONS", "BulkOptions", "BulkSyntaxError", "ItemRefusal", "Meta", "bulk_options", "parse_action",
]

ACTIONS = ("index", "create", "update", "delete")

#: parameters ignored on purpose, with the reason given in the docs and the Warning header
IGNORED: dict[str, str] = {
    "pipeline": "ingest pipelines are not run: the document is stored as sent",
    "routing": "logharbor has no shards to route to",
    "dynamic_templates": "logharbor has one schema: attributes keep their JSON types",
    "list_executed_pipelines": "no ingest pipelines are run",
    "require_data_stream": "every target takes documents the same way (index or data stream)",
    "_type": "mapping types are gone since Elasticsearch 8 (accepted as 7.x did)",
    "timeout": "the answer waits for the write-ahead log only, never for shards",
    "wait_for_active_shards": "the one shard is always active",
    "_source": "applies to update, which is refused",
    "_source_includes": "applies to update, which is refused",
    "_source_excludes": "applies to update, which is refused",
    "retry_on_conflict": "applies to update, which is refused",
    "include_source_on_error": "errors never include the source",
    "pretty": "answers are compact JSON",
    "human": "no sizes or times to format in a bulk answer",
    "error_trace": "errors carry no stack traces",
}
#: action-object parameters Elasticsearch 8 knows (any other is an unknown parameter)
_ACTION_KNOWN = frozenset((
    "_index", "_id", "op_type", "routing", "version", "version_type", "if_seq_no", "if_primary_term",
    "pipeline", "require_alias", "require_data_stream", "dynamic_templates", "list_executed_pipelines",
    "retry_on_conflict", "_source", "_type",
))
#: action-object parameters whose value is an object (the others are simple values)
_OBJECT_VALUED = frozenset(("dynamic_templates", "_source"))
#: URL parameters of ``_bulk`` (and of the single-document calls)
_URL_KNOWN = frozenset((
    "pipeline", "refresh", "routing", "timeout", "wait_for_active_shards", "require_alias",
    "require_data_stream", "list_executed_pipelines", "_source", "_source_includes",
    "_source_excludes", "include_source_on_error", "filter_path", "pretty", "human", "error_trace",
    # single-document calls (``/{index}/_doc``) also take these
    "op_type", "version", "version_type", "if_seq_no", "if_primary_term",
))
_VERSION_TYPES = frozenset(("internal", "external", "external_gt", "external_gte", "force"))
_JSON_TOKEN = {dict: "START_OBJECT", list: "START_ARRAY"}


class BulkSyntaxError(ValueError):
    """The body is not a bulk request at all (an action line is broken): the whole request fails."""


#: an item refused on its own: (status, Elasticsearch error type, reason)
ItemRefusal = tuple[int, str, str]


@dataclass(frozen=True)
class BulkOptions:
    """The URL parameters that apply to every item (an action's own value wins)."""

    pipeline: str | None = None
    routing: str | None = None
    require_alias: bool = False
    refresh: bool = False
    #: URL parameters ignored (counted once per request)
    ignored: tuple[str, ...] = ()


@dataclass
class Meta:
    """One action line as this server reads it."""

    action: str  # as answered: ``index`` with ``op_type: create`` is ``create``
    index: str | None
    doc_id: str | None
    refusal: ItemRefusal | None = None
    #: parameters ignored for this item (counted, named in the Warning header)
    ignored: list[str] = field(default_factory=list)
    #: keys after the action object on its line (ignored, as Elasticsearch 8 does)
    trailing: list[str] = field(default_factory=list)


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", ""))


def bulk_options(params: dict[str, str]) -> BulkOptions:
    """The request's URL parameters; an unknown or invalid one is a :class:`BulkSyntaxError`
    (Elasticsearch answers 400 ``illegal_argument_exception`` for the whole request)."""
    unknown = sorted(set(params) - _URL_KNOWN)
    if unknown:
        raise BulkSyntaxError(f"request contains unrecognized parameter: [{unknown[0]}]")
    refresh = params.get("refresh")
    if refresh is not None and refresh not in ("", "true", "false", "wait_for"):
        raise BulkSyntaxError(f"Unknown value for refresh: [{refresh}].")
    ignored = tuple(sorted(p for p in params if p in IGNORED and p != "pipeline"))
    pipeline = params.get("pipeline") or None
    return BulkOptions(pipeline=None if pipeline == "_none" else pipeline,
                       routing=params.get("routing") or None,
                       require_alias=_flag(params.get("require_alias", "false")),
                       refresh=refresh is not None and refresh != "false",
                       ignored=ignored)


def parse_action(line: bytes, number: int, options: BulkOptions) -> Meta:
    """Read one action line (``number`` counts from 1) the way Elasticsearch 8 does."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BulkSyntaxError(f"Malformed action/metadata line [{number}]: {exc}") from None
    if not isinstance(obj, dict):
        raise BulkSyntaxError(f"Malformed action/metadata line [{number}], expected START_OBJECT")
    if not obj:
        raise BulkSyntaxError(f"Malformed action/metadata line [{number}], expected FIELD_NAME but "
                              "found [END_OBJECT]")
    keys = iter(obj)
    action = next(keys)
    trailing = list(keys)
    params = obj[action]
    if action not in ACTIONS:
        raise BulkSyntaxError(f"Malformed action/metadata line [{number}], expected field [create], "
                              f"[delete], [index] or [update] but found [{action}]")
    if not isinstance(params, dict):
        raise BulkSyntaxError(f"Malformed action/metadata line [{number}], expected START_OBJECT "
                              f"but found [{_JSON_TOKEN.get(type(params), 'VALUE')}]")
    for key, value in params.items():
        if key not in _ACTION_KNOWN:
            raise BulkSyntaxError(f"Action/metadata line [{number}] contains an unknown parameter [{key}]")
        if isinstance(value, dict | list) and key not in _OBJECT_VALUED:
            raise BulkSyntaxError(f"Malformed action/metadata line [{number}], expected a simple value "
                                  f"for field [{key}] but found [{_JSON_TOKEN[type(value)]}]")
    meta = Meta(action, _text(params.get("_index")), _text(params.get("_id")), trailing=trailing)
    op_type = params.get("op_type")
    if op_type is not None and action == "index":
        if op_type not in ("index", "create"):
            raise BulkSyntaxError(f"opType must be 'create' or 'index', found: [{op_type}]")
        meta.action = op_type
    version_type = params.get("version_type")
    if version_type is not None and version_type not in _VERSION_TYPES:
        raise BulkSyntaxError(f"No version type match [{version_type}]")
    meta.refusal = _refusal(params, meta, options)
    for key in params:
        if key in IGNORED and not (key == "pipeline" and params[key] in (None, "_none")):
            meta.ignored.append(key)
    if "pipeline" not in params and options.pipeline:
        meta.ignored.append("pipeline")
    if "routing" not in params and options.routing:
        meta.ignored.append("routing")
    return meta


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _refusal(params: JsonObject, meta: Meta, options: BulkOptions) -> ItemRefusal | None:
    """Parameters that logharbor cannot honour refuse the item (not the request), with a reason."""
    if meta.action in ("update", "delete"):
        return (400, "action_request_validation_exception",
                f"logharbor is append-only: the {meta.action} action is not supported")
    if params.get("if_seq_no") is not None or params.get("if_primary_term") is not None:
        return (400, "action_request_validation_exception",
                "compare and write (if_seq_no, if_primary_term) is not supported: logharbor is "
                "append-only and keeps no sequence numbers")
    if params.get("version") is not None or params.get("version_type") not in (None, "internal"):
        return (400, "action_request_validation_exception",
                "versioned writes (version, version_type) are not supported: logharbor is "
                "append-only and keeps no document versions")
    require_alias = params.get("require_alias")
    if _flag(require_alias) if require_alias is not None else options.require_alias:
        name = meta.index or ""
        return (404, "index_not_found_exception",
                f"no such index [{name}] and [require_alias] request flag is [true] and [{name}] "
                "is not an alias")
    return None
