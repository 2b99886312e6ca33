"""Loki push: protobuf (``logproto.PushRequest`` encoded here from the documented schema) + snappy, and JSON.

The protobuf body is written by a small wire encoder in this file, independent of the server's
descriptor-built classes, so a mismatch with the published field numbers would show.
"""

from __future__ import annotations

import gzip
import time
from base64 import b64encode

import cramjam
import httpx
import orjson
from tests.conftest import ServerProcess

from logharbor.record import format_timestamp

from .conftest import by_message, records


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # wire type 2: length-delimited
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:  # wire type 0: varint
    return _varint(number << 3) + _varint(value)


def push_request(streams: list[tuple[str, list[tuple[int, str, dict[str, str]]]]]) -> bytes:
    """PushRequest{streams=1: StreamAdapter{labels=1, entries=2: EntryAdapter{timestamp=1:
    Timestamp{seconds=1, nanos=2}, line=2, structuredMetadata=3: LabelPairAdapter{name=1, value=2}}}}"""
    out = b""
    for labels, entries in streams:
        stream = _field(1, labels.encode())
        for ns, line, meta in entries:
            stamp = _int_field(1, ns // 1_000_000_000) + _int_field(2, ns % 1_000_000_000)
            entry = _field(1, stamp) + _field(2, line.encode())
            for name, value in meta.items():
                entry += _field(3, _field(1, name.encode()) + _field(2, value.encode()))
            stream += _field(2, entry)
        out += _field(1, stream)
    return out


def test_protobuf_snappy_push(server: ServerProcess) -> None:
    now = time.time_ns() - 5_000_000_000
    body = push_request([
        ('{app="shop", env="prod", level="error", filename="/var/log/shop.log", note="say \\"hi\\""}',
         [(now + i, f"shop line {i}", {"trace_id": "5759e988bd862e3fe1be46a994272793"} if i == 0 else {})
          for i in range(50)]),
        ('{job="varlogs", host="web-3"}', [(now + 123_456_789, "varlogs line", {"user_id": "u-1"})]),
    ])
    response = httpx.post(server.url + "/loki/api/v1/push", content=bytes(cramjam.snappy.compress_raw(body)),
                          headers={**server.headers, "content-type": "application/x-protobuf"}, timeout=30)
    assert response.status_code == 204, response.text
    rows = by_message(records(server, "service:shop OR service:varlogs", 51))
    assert len(rows) == 51
    first = rows["shop line 0"]
    assert first["level"] == "ERROR" and first["env"] == "prod" and first["app"] == "shop"
    assert first["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert first["filename"] == "/var/log/shop.log" and first["note"] == 'say "hi"'
    varlogs = rows["varlogs line"]
    assert varlogs["service"] == "varlogs" and varlogs["host"] == "web-3" and varlogs["user_id"] == "u-1"
    assert varlogs["timestamp"] == format_timestamp(now + 123_456_789)  # nanoseconds kept


def test_json_push_gzip_and_partial_failure(server: ServerProcess) -> None:
    now = str(time.time_ns())
    body = {"streams": [
        {"stream": {"service_name": "jsonsvc", "app": "ignored-for-service"},
         "values": [[now, "json one"], [now, "json two", {"trace_id": "0af7651916cd43dd8448eb211c80319c"}],
                    ["yesterday", "bad stamp"], [now, 42]]},
    ]}
    response = httpx.post(server.url + "/loki/api/v1/push", content=gzip.compress(orjson.dumps(body)),
                          headers={**server.headers, "content-type": "application/json",
                                   "content-encoding": "gzip"}, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert [item["entry"] for item in error["detail"]] == [3, 4]
    rows = by_message(records(server, "service:jsonsvc", 2))
    assert set(rows) == {"json one", "json two"}
    assert rows["json two"]["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert rows["json one"]["app"] == "ignored-for-service"


def test_malformed_pushes_are_refused(server: ServerProcess) -> None:
    headers = {**server.headers, "content-type": "application/x-protobuf"}
    not_snappy = httpx.post(server.url + "/loki/api/v1/push", content=b"\x05garbage", headers=headers)
    assert not_snappy.status_code == 400
    bomb = _varint(1 << 40) + b"\x00"  # declares a terabyte
    assert httpx.post(server.url + "/loki/api/v1/push", content=bomb, headers=headers).status_code == 413
    bad_labels = push_request([("job=no-braces", [(time.time_ns(), "x", {})])])
    response = httpx.post(server.url + "/loki/api/v1/push",
                          content=bytes(cramjam.snappy.compress_raw(bad_labels)), headers=headers)
    assert response.status_code == 400 and "labels" in response.json()["error"]["detail"][0]["error"]
    not_json = httpx.post(server.url + "/loki/api/v1/push", content=b"{",
                          headers={**server.headers, "content-type": "application/json"})
    assert not_json.status_code == 400
    anonymous = httpx.post(server.url + "/loki/api/v1/push", content=b'{"streams":[]}',
                           headers={"content-type": "application/json"})
    assert anonymous.status_code == 401
    reader = server.create_key("reader")
    assert httpx.post(server.url + "/loki/api/v1/push", content=b'{"streams":[]}',
                      headers={"content-type": "application/json",
                               "authorization": f"Bearer {reader}"}).status_code == 403
    writer = server.create_key("writer")
    assert httpx.post(server.url + "/loki/api/v1/push", content=b'{"streams":[]}',
                      headers={"content-type": "application/json",
                               "authorization": f"Basic {b64encode(b'promtail:' + writer.encode()).decode()}"}
                      ).status_code == 204


def test_python_logging_loki_handler(server: ServerProcess) -> None:
    """``python-logging-loki`` (a Loki client for stdlib logging) pushes the JSON form."""
    import logging

    import logging_loki

    writer = server.create_key("writer")
    handler = logging_loki.LokiHandler(url=server.url + "/loki/api/v1/push", version="1",
                                       tags={"application": "pyloki", "env": "staging"},
                                       auth=("promtail", writer))
    logger = logging.getLogger("pyloki.test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("loki handler error line", extra={"tags": {"order_id": "o-9"}})
        logger.warning("loki handler warning line")
    finally:
        logger.removeHandler(handler)
        handler.close()
    rows = by_message(records(server, "service:pyloki", 2))
    error = rows["loki handler error line"]
    assert error["level"] == "ERROR" and error["env"] == "staging" and error["order_id"] == "o-9"
    assert error["logger"] == "pyloki.test" and error["application"] == "pyloki"
    assert rows["loki handler warning line"]["level"] == "WARN"


def test_big_integers_in_json_and_logfmt_lines_are_kept_exact(server: ServerProcess) -> None:
    """As on native ingest: an integer beyond 64 bits in a pushed JSON line is that integer (it
    came back as 1.8446744073709552e+19); in a logfmt line its text is kept."""
    big = "18446744073709551617"
    body = {"streams": [{"stream": {"service_name": "loki-bigint"}, "values": [
        ["1700000000000000000", '{"msg":"json big","big":' + big + ',"neg":-9223372036854775809}'],
        ["1700000000000000001", f"msg=\"logfmt big\" big={big} small=42"]]}]}
    with server.client() as client:
        assert client.post("/loki/api/v1/push", json=body).status_code == 204
    found = records(server, 'service:"loki-bigint"', 2)
    rows = {"json big" if r["message"].startswith("{") else "logfmt big": r for r in found}

    def attr(row: dict, key: str) -> object:  # type: ignore[type-arg]
        return row["attributes"][key] if "attributes" in row else row[key]

    assert attr(rows["json big"], "big") == int(big) and attr(rows["json big"], "neg") == -9223372036854775809
    assert attr(rows["logfmt big"], "big") == big and attr(rows["logfmt big"], "small") == 42


def test_labels_and_metadata_that_are_not_strings_are_their_json_text(server: ServerProcess) -> None:
    """Loki's push decoder takes a label's or metadata's raw JSON value; a non-string one was
    stored as Python's spelling of it (``True``, ``None``, ``{'a': 1}``) and a number beyond
    64 bits as a float's digits. Each is now its JSON text; the string ones are unchanged."""
    big = "18446744073709551617"
    body = ('{"streams": [{"stream": {"service_name": "loki-typed", "flag": true, "none": null, '
            '"obj": {"a": [1, "x"]}, "f": 1.0, "big": ' + big + ', "s": "text"}, "values": [["1700000000000000000", '
            '"typed labels", {"mflag": false, "mnull": null, "mobj": {"b": [true]}, "mnum": -0.0, "mbig": '
            + big + ', "ms": "text"}]]}]}')
    with server.client() as client:
        response = client.post("/loki/api/v1/push", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 204, response.text
    (row,) = records(server, 'service:"loki-typed"', 1)
    attrs = row.get("attributes", row)
    assert {k: attrs[k] for k in ("flag", "none", "obj", "f", "big", "s")} == {
        "flag": "true", "none": "null", "obj": '{"a":[1,"x"]}', "f": "1.0", "big": big, "s": "text"}
    assert {k: attrs[k] for k in ("mflag", "mnull", "mobj", "mnum", "mbig", "ms")} == {
        "mflag": "false", "mnull": "null", "mobj": '{"b":[true]}', "mnum": "-0.0", "mbig": big, "ms": "text"}
