"""A Loki stream label (or structured metadata) named as a field the entry itself sets is kept.

Loki keeps labels apart from the line and its timestamp; logharbor's record has one namespace, so
a label ``message`` or ``timestamp`` (or ``observed_timestamp``, ``attributes``) was overwritten
by the line, the entry's time or the line's fields without a word. It is kept as ``<name>_label``
and counted (``logharbor_ingest_ignored_total{protocol="loki",what="label"}``), as the OTLP
decoder keeps ``<name>_attribute``; labels that are meant to fold (``level``, ``service``, ``host``,
``env``) still do.
"""

from __future__ import annotations

import orjson

from logharbor.server.ingest.base import RecordLimits
from logharbor.server.ingest.loki import PushRequest, decode_push

RECEIVED = 1_800_000_000_000_000_000
STAMP = 1_799_999_999_000_000_000
SHADOWED = {"message": "from the label", "timestamp": "label time", "observed_timestamp": "label seen",
            "attributes": "label attrs"}


def _json_push(labels: dict[str, str], line: str, meta: dict[str, str] | None = None) -> bytes:
    value = [str(STAMP), line] + ([meta] if meta else [])
    return orjson.dumps({"streams": [{"stream": labels, "values": [value]}]})


def _proto_push(labels: dict[str, str], line: str, meta: dict[str, str] | None = None) -> bytes:
    request = PushRequest()
    stream = request.streams.add()
    stream.labels = "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    entry = stream.entries.add()
    entry.timestamp.seconds, entry.timestamp.nanos = divmod(STAMP, 10**9)
    entry.line = line
    for k, v in (meta or {}).items():
        entry.structuredMetadata.add(name=k, value=v)
    return request.SerializeToString()


def _stored(body: bytes, is_protobuf: bool) -> tuple[dict, int]:  # type: ignore[type-arg]
    rows, accepted, errors, renamed, _ = decode_push(body, is_protobuf, RECEIVED, RecordLimits(), None)
    assert accepted == 1 and not errors, errors
    return orjson.loads(rows), renamed


def test_labels_named_as_entry_fields_are_kept_on_both_encodings() -> None:
    labels = {"service": "checkout", "level": "error", **SHADOWED}
    for encode, is_protobuf in ((_json_push, False), (_proto_push, True)):
        for line in ("payment declined", '{"msg": "payment declined", "user_id": "u-1"}'):
            row, renamed = _stored(encode(labels, line, {"message": "from metadata"}), is_protobuf)
            text = orjson.dumps(row).decode()
            assert row["message"] == line and row["service"] == "checkout" and row["level"] == "ERROR"
            assert row["timestamp"].startswith("1799999999.")
            for name, value in SHADOWED.items():
                assert f'"{name}_label":"{value}"' in text, (name, text)
            assert '"message_metadata":"from metadata"' in text, text
            assert renamed == len(SHADOWED) + 1
            if line.startswith("{"):
                assert '"user_id":"u-1"' in text  # the line's own fields are still kept


def test_a_label_equal_to_the_field_is_not_doubled_and_ordinary_labels_stay() -> None:
    row, renamed = _stored(_json_push({"job": "api", "message": "same"}, "same"), False)
    text = orjson.dumps(row).decode()
    assert renamed == 0 and "message_label" not in text and '"job":"api"' in text


def test_metadata_named_as_a_label_does_not_replace_it() -> None:
    row, renamed = _stored(_json_push({"job": "api", "level": "info"}, "x",
                                      {"job": "worker", "level": "error", "pod": "p-1"}), False)
    text = orjson.dumps(row).decode()
    assert '"job":"api"' in text and '"job_metadata":"worker"' in text and '"pod":"p-1"' in text
    assert row["level"] == "ERROR"  # metadata of a folded field is the entry's own value
    assert renamed == 1


def test_a_kept_name_already_taken_loses_no_value() -> None:
    """``message`` and ``message_label`` both as labels, metadata named ``job_metadata`` beside
    a label ``job_metadata`` and metadata ``job``, metadata named as a kept name: every value sent
    is in the row (under some name), none replaced another."""
    cases = [({"message": "L1", "message_label": "L2"}, None),
             ({"job": "api", "job_metadata": "L3"}, {"job": "M1"}),
             ({"message": "L4"}, {"message_label": "M2"}),
             ({"job": "api"}, {"job": "M3", "job_metadata": "M4"}),
             ({"timestamp": "L5", "timestamp_label": "L6"}, {"timestamp": "M5", "timestamp_metadata": "M6"})]
    for labels, meta in cases:
        for encode, is_protobuf in ((_json_push, False), (_proto_push, True)):
            row, _ = _stored(encode(labels, "line", meta), is_protobuf)
            text = orjson.dumps(row).decode()
            for value in [*labels.values(), *(meta or {}).values()]:
                assert f'"{value}"' in text, (labels, meta, value, text)


def _decoded(body: bytes, is_protobuf: bool) -> tuple[dict, int]:  # type: ignore[type-arg]
    rows, accepted, errors, _, extracted = decode_push(body, is_protobuf, RECEIVED, RecordLimits(), None)
    assert accepted == 1 and not errors, errors
    return orjson.loads(rows), extracted


def test_line_keys_named_as_labels_or_metadata_are_kept_as_extracted() -> None:
    """A JSON or logfmt line's key named as a label, metadata or a field the stream folded
    (``level``, ``service``) keeps its value as ``<name>_extracted``; the stream keeps the name."""
    labels = {"job": "api", "level": "error", "service_name": "checkout"}
    lines = ('{"job": "worker", "level": "debug", "service": "svc", "pod": "p-line", "user": "u-1", '
             '"job_extracted": "taken", "message": "m"}',
             'job=worker level=debug service=svc pod=p-line user=u-1 job_extracted=taken message=m')
    for line in lines:
        for encode, is_protobuf in ((_json_push, False), (_proto_push, True)):
            row, extracted = _decoded(encode(labels, line, {"pod": "p-meta"}), is_protobuf)
            assert (row["level"], row["service"], row["message"]) == ("ERROR", "checkout", line)
            attrs = row["attributes"]
            assert attrs["job"] == "api" and attrs["pod"] == "p-meta" and attrs["user"] == "u-1"
            assert attrs["job_extracted"] == "taken" and attrs["job_extracted2"] == "worker"
            assert attrs["level_extracted"] == "debug" and attrs["service_extracted"] == "svc"
            assert attrs["pod_extracted"] == "p-line"
            assert "message_extracted" not in attrs  # the line itself is the message
            assert extracted == 4, (line, attrs)


def test_a_line_key_the_stream_does_not_have_or_has_equal_is_not_renamed() -> None:
    row, extracted = _decoded(_json_push({"job": "api"}, '{"job": "api", "level": "warn", "x": 1}'), False)
    assert extracted == 0 and row["level"] == "WARN"  # the level came from the line: no collision
    assert row["attributes"] == {"job": "api", "x": 1}
    row, extracted = _decoded(_json_push({"job": "api"}, '{"timestamp": 1.5, "attributes": {"a": 1}}'), False)
    assert extracted == 2 and row["attributes"]["timestamp_extracted"] == 1.5
    assert row["attributes"]["attributes_extracted"] == {"a": 1}  # not spread over the labels
