"""Golden lines of the loggers people run, folded as docs/record.md "Logger dialects" says (issue #22).

Where the logger runs here, the lines are its own: pino, bunyan and winston from the npm registry
(tests/clients/package.json, installed by ``scripts/install.sh --test``), Logback with
logstash-logback-encoder (Debian's liblogback-java and liblogstash-logback-encoder-java, compiled
with the JDK), python-json-logger and Elastic's ecs-logging (pinned in pyproject.toml). The others are lines as their own
documentation prints them; each says where it comes from. Every line is read three ways — the
native decoder's ``normalize``, the agent's ``json`` parser then ``normalize``, and a real server
(``POST /api/v1/logs`` and ``POST /_bulk``, read back through ``POST /api/v1/query``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import ecs_logging
import orjson
import pytest
from pythonjsonlogger.json import JsonFormatter
from tests.conftest import ServerProcess

from logharbor.formats.json import JsonParser
from logharbor.record import format_timestamp, normalize

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
JARS = ("slf4j-api", "logback-classic", "logback-core", "logstash-logback-encoder", "jackson-databind",
        "jackson-core", "jackson-annotations")
RECEIVED = 1_800_000_000_000_000_000


def _missing(what: str) -> None:
    """A logger that cannot run here: CI installs every one (scripts/install.sh --test), so there
    it is a failure; on a developer's machine the test is skipped with the install command."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed: scripts/install.sh --test installs it")
    pytest.skip(f"{what} is not installed (scripts/install.sh --test)")


# -- lines written by the real loggers ------------------------------------------------------------


@pytest.fixture(scope="module")
def node_lines() -> dict[str, list[str]]:
    if shutil.which("node") is None or not (CLIENTS / "node_modules" / "pino").is_dir():
        _missing("tests/clients/node_modules (pino, bunyan, winston)")
    out = subprocess.run(["node", "emit_loggers.js"], cwd=CLIENTS, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    lines: dict[str, list[str]] = {}
    for row in out.splitlines():
        name, _, line = row.partition("\t")
        lines.setdefault(name, []).append(line)
    return lines


@pytest.fixture(scope="module")
def logback_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    jars = [Path(f"/usr/share/java/{name}.jar") for name in JARS]
    if shutil.which("javac") is None or not all(jar.exists() for jar in jars):
        _missing("a JDK with liblogback-java and liblogstash-logback-encoder-java")
    build = tmp_path_factory.mktemp("logback")
    classpath = ":".join(map(str, jars))
    subprocess.run(["javac", "-d", str(build), "-cp", classpath, str(CLIENTS / "java" / "Emit.java")],
                   check=True, timeout=300, capture_output=True)
    run = subprocess.run(["java", "-cp", f"{classpath}:{build}",
                          f"-Dlogback.configurationFile={CLIENTS / 'java' / 'logback.xml'}", "Emit"],
                         check=True, timeout=300, capture_output=True, text=True)
    return [line for line in run.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def python_json_logger_lines() -> list[str]:
    """python-json-logger's JsonFormatter with the format of its README (asctime levelname name
    message), an ``extra``, an exception; then ``timestamp=True``."""
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log = logging.getLogger("tests.dialects.payments")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.info("charged", extra={"request_id": "req-py-1", "amount": 12.5})
        log.warning("retrying")
        try:
            1 / 0  # noqa: B018 - the exception is the point
        except ZeroDivisionError:
            log.exception("charge failed")
        handler.setFormatter(JsonFormatter("%(levelname)s %(message)s %(otelTraceID)s %(otelServiceName)s",
                                           timestamp=True))
        log.debug("with a timestamp", extra={"otelTraceID": "5759e988bd862e3fe1be46a994272793",
                                             "otelServiceName": "payments"})
    finally:
        log.removeHandler(handler)
    return stream.getvalue().splitlines()


# -- lines as each logger's documentation prints them ----------------------------------------------

#: (name, source, line, expected): expected holds the canonical values the line must fold to
DOCUMENTED: list[tuple[str, str, str, dict[str, Any]]] = [
    ("serilog-clef", "Serilog.Formatting.Compact README, 'Sample' (CompactJsonFormatter)",
     '{"@t":"2016-06-07T03:44:57.8532799Z","@mt":"Hello, {User}","User":"nblumhardt"}',
     {"timestamp": "2016-06-07T03:44:57.853279900Z", "level": "INFO", "message": 'Hello, "nblumhardt"',
      "attributes": {"@mt": "Hello, {User}", "User": "nblumhardt"}}),
    ("serilog-clef-rendered", "Serilog.Formatting.Compact README, 'Rendered events'",
     '{"@t":"2016-06-07T03:44:57.8532799Z","@m":"Hello, \\"nblumhardt\\"","@i":"7a8b9c0d","User":"nblumhardt"}',
     {"level": "INFO", "message": 'Hello, "nblumhardt"', "attributes": {"@i": "7a8b9c0d", "User": "nblumhardt"}}),
    ("serilog-clef-error", "CLEF reified properties (@l, @x, @r) of the same README; ASP.NET Core's "
     "RequestId/TraceId scope properties",
     '{"@t":"2026-11-25T10:00:00.1234567Z","@mt":"Order {OrderId} failed after {Elapsed:0.0} ms","@l":"Error",'
     '"@x":"System.InvalidOperationException: card declined\\n   at Shop.Pay()","@r":["12.3"],"OrderId":42,'
     '"Elapsed":12.34,"RequestId":"0HMQ8:00000001","TraceId":"5759e988bd862e3fe1be46a994272793",'
     '"SourceContext":"Shop.Orders","Application":"shop"}',
     {"level": "ERROR", "message": "Order 42 failed after 12.3 ms", "service": "shop", "request_id": "0HMQ8:00000001",
      "trace_id": "5759e988bd862e3fe1be46a994272793",
      "error": {"stack": "System.InvalidOperationException: card declined\n   at Shop.Pay()"}}),
    ("gcp", "cloud.google.com/logging/docs/structured-logging (special JSON fields), with the "
     "timestamp as the {seconds, nanos} object the same page allows",
     '{"severity":"ERROR","message":"There was an error in the application.","httpRequest":{"requestMethod":"GET",'
     '"requestUrl":"https://example.com/cart?id=7","status":503,"latency":"0.250s","remoteIp":"203.0.113.7"},'
     '"timestamp":{"seconds":1602487250,"nanos":520000000},"logging.googleapis.com/insertId":"42",'
     '"logging.googleapis.com/labels":{"user_label_1":"value_1"},'
     '"logging.googleapis.com/sourceLocation":{"file":"get_data.py","line":"142","function":"getData"},'
     '"logging.googleapis.com/spanId":"000000000000004a",'
     '"logging.googleapis.com/trace":"projects/my-projectid/traces/06796866738c859f2f19b7cfb3214824",'
     '"logging.googleapis.com/trace_sampled":false}',
     {"timestamp": "2020-10-12T07:20:50.520000Z", "level": "ERROR", "message": "There was an error in the application.",
      "trace_id": "06796866738c859f2f19b7cfb3214824", "span_id": "000000000000004a",
      "http": {"method": "GET", "path": "/cart?id=7", "status": 503, "duration_ms": 250.0, "client_ip": "203.0.113.7"}}),
    ("gcp-error-reporting", "cloud.google.com/error-reporting/docs/formatting-error-messages (serviceContext, "
     "stack_trace)",
     '{"severity":"ERROR","message":"failed to charge","serviceContext":{"service":"payments","version":"1.4.2"},'
     '"stack_trace":"Traceback (most recent call last):\\n  File \\"pay.py\\", line 3\\nValueError: x",'
     '"timestampSeconds":1602487250,"timestampNanos":5}',
     {"timestamp": "2020-10-12T07:20:50.000000005Z", "level": "ERROR", "service": "payments", "version": "1.4.2",
      "error": {"stack": "Traceback (most recent call last):\n  File \"pay.py\", line 3\nValueError: x"}}),
    ("syslog-ng elasticsearch-http()", "syslog-ng scl/elasticsearch/elastic-http.conf: the stock template "
     "$(format-json --scope rfc5424 --exclude DATE --key ISODATE @timestamp=${ISODATE}) of a message "
     "'<11>Nov 25 10:00:00 web-1 app[4242]: payment failed' read in Europe/Berlin",
     '{"PROGRAM":"app","PRIORITY":"err","PID":"4242","MESSAGE":"payment failed","ISODATE":"2026-11-25T10:00:00+01:00",'
     '"HOST":"web-1","FACILITY":"user","@timestamp":"2026-11-25T10:00:00+01:00"}',
     {"timestamp": "2026-11-25T09:00:00.000000Z", "level": "ERROR", "message": "payment failed", "service": "app",
      "host": "web-1", "attributes": {"PID": "4242", "ISODATE": "2026-11-25T10:00:00+01:00", "FACILITY": "user"}}),
    ("journald", "journalctl -o json (systemd.journal-fields(7)): a unit's entry; __REALTIME_TIMESTAMP, "
     "SYSLOG_IDENTIFIER and _HOSTNAME were attributes (the record got the receive time, service unknown)",
     '{"__CURSOR":"s=6b1f;i=1a2","__REALTIME_TIMESTAMP":"1699999999123456","__MONOTONIC_TIMESTAMP":"81234567",'
     '"_BOOT_ID":"b1c2","PRIORITY":"3","SYSLOG_FACILITY":"3","SYSLOG_IDENTIFIER":"nginx","_PID":"812",'
     '"_COMM":"nginx","_SYSTEMD_UNIT":"nginx.service","_HOSTNAME":"web-1","MESSAGE":"connect() failed"}',
     {"timestamp": "2023-11-14T22:13:19.123456Z", "level": "ERROR", "message": "connect() failed",
      "service": "nginx", "host": "web-1",
      "attributes": {"_SYSTEMD_UNIT": "nginx.service", "_PID": "812", "__MONOTONIC_TIMESTAMP": "81234567"}}),
    ("loguru", "loguru docs, logger.add(sink, serialize=True): the record of logger.exception() "
     "(message, level, time and exception were inside 'record' and not read: no message, INFO, the "
     "receive time)",
     '{"text":"2026-11-25 10:00:00.125 | ERROR    | shop:pay:12 - payment failed\\n","record":{"elapsed":'
     '{"repr":"0:00:00.052000","seconds":0.052},"exception":{"type":"ValueError","value":"card declined",'
     '"traceback":true},"extra":{"order_id":42},"file":{"name":"shop.py","path":"/app/shop.py"},"function":"pay",'
     '"level":{"icon":"\\u274c","name":"ERROR","no":40},"line":12,"message":"payment failed","module":"shop",'
     '"name":"shop","process":{"id":7,"name":"MainProcess"},"thread":{"id":1,"name":"MainThread"},'
     '"time":{"repr":"2026-11-25 10:00:00.125000+00:00","timestamp":1795600800.125}}}',
     # the float's digits as written: .125, not the double's .124999936
     {"timestamp": "2026-11-25T10:00:00.125000Z", "level": "ERROR", "message": "payment failed",
      "error": {"type": "ValueError", "message": "card declined"}}),
    ("gelf", "GELF 1.1 specification (go2docs.graylog.org, GELF payload specification): its example "
     "message; level 1 (alert) was read on pino's scale, so it was level_raw and INFO",
     '{"version":"1.1","host":"example.org","short_message":"A short message that helps you identify what is '
     'going on","full_message":"Backtrace here\\n\\nmore stuff","timestamp":1385053862.3072,"level":1,'
     '"_user_id":9001,"_some_info":"foo","_some_env_var":"bar"}',
     {"level": "FATAL", "host": "example.org", "message": "A short message that helps you identify what is going on",
      "attributes": {"full_message": "Backtrace here\n\nmore stuff", "_user_id": 9001}}),
    ("log4j2 EcsLayout", "logging.apache.org Log4j 2 manual, JSON Template Layout: the output of "
     "classpath:EcsLayout.json", '{"@timestamp":"2017-05-25T19:56:23.370Z","ecs.version":"1.2.0","log.level":"ERROR",'
     '"message":"Hello, error!","process.thread.name":"main","log.logger":"org.apache.logging.log4j.JsonTemplateLayoutDemo",'
     '"error.type":"java.lang.RuntimeException","error.message":"test","error.stack_trace":"java.lang.RuntimeException: '
     'test\\n\\tat Demo.main(Demo.java:5)\\n"}',
     {"timestamp": "2017-05-25T19:56:23.370000Z", "level": "ERROR", "message": "Hello, error!",
      "attributes": {"error.type": "java.lang.RuntimeException", "error.message": "test",
                     "error.stack": "java.lang.RuntimeException: test\n\tat Demo.main(Demo.java:5)\n",
                     "ecs.version": "1.2.0", "process.thread.name": "main",
                     "log.logger": "org.apache.logging.log4j.JsonTemplateLayoutDemo"}}),
    ("zap", "zap's NewProduction() (NewProductionEncoderConfig: ts in epoch seconds, level, caller, msg, "
     "stacktrace on errors; zap.Error(err) writes 'error')",
     '{"level":"error","ts":1700000000.1234567,"caller":"app/main.go:42","msg":"request failed",'
     '"url":"http://example.com","attempt":3,"error":"connection refused",'
     '"stacktrace":"main.main\\n\\t/app/main.go:42\\nruntime.main\\n\\t/usr/lib/go/src/runtime/proc.go:250"}',
     # the float's digits as written (.1234567), not the double's binary value (.123456768)
     {"timestamp": "2023-11-14T22:13:20.123456700Z", "level": "ERROR", "message": "request failed",
      "attributes": {"caller": "app/main.go:42", "url": "http://example.com", "attempt": 3,
                     "error": "connection refused",
                     "error.stack": "main.main\n\t/app/main.go:42\nruntime.main\n\t/usr/lib/go/src/runtime/proc.go:250"}}),
    ("zerolog", "zerolog README, 'Error Logging with Stacktrace' (zerolog.TimeFieldFormat = Unix, pkgerrors)",
     '{"level":"error","stack":[{"func":"inner","line":"20","source":"errors.go"},{"func":"main","line":"32",'
     '"source":"errors.go"}],"error":"seems we have an error here","time":1609086683}',
     {"timestamp": "2020-12-27T16:31:23.000000Z", "level": "ERROR", "message": "",
      "attributes": {"error": "seems we have an error here", "stack": [
          {"func": "inner", "line": "20", "source": "errors.go"}, {"func": "main", "line": "32", "source": "errors.go"}]}}),
    ("zerolog-message", "zerolog README, 'Simple Logging Example'",
     '{"level":"debug","time":1494567715,"message":"hello world"}',
     {"timestamp": "2017-05-12T05:41:55.000000Z", "level": "DEBUG", "message": "hello world"}),
    ("logrus", "logrus README, JSONFormatter (its default TimestampFormat, RFC 3339 with the local offset)",
     '{"animal":"walrus","level":"warning","msg":"The group\'s number increased tremendously!","number":122,'
     '"omg":true,"time":"2014-03-10T19:57:38-04:00"}',
     {"timestamp": "2014-03-10T23:57:38.000000Z", "level": "WARN",
      "message": "The group's number increased tremendously!",
      "attributes": {"animal": "walrus", "number": 122, "omg": True}}),
    ("slog", "pkg.go.dev log/slog, JSONHandler example (HandlerOptions{AddSource: true, Level: -8})",
     '{"time":"2022-11-08T15:28:26.000000000-05:00","level":"ERROR+4","source":{"function":"main.main",'
     '"file":"/tmp/main.go","line":14},"msg":"hello","count":3}',
     {"timestamp": "2022-11-08T20:28:26.000000Z", "level": "ERROR", "message": "hello",
      "attributes": {"count": 3, "source_location": {"function": "main.main", "file": "/tmp/main.go", "line": 14}}}),
    ("slog-debug", "pkg.go.dev log/slog, Levels ('DEBUG-4' for a level below Debug)",
     '{"time":"2022-11-08T15:28:26.000000000-05:00","level":"DEBUG-4","msg":"hello","count":3}',
     {"level": "TRACE", "message": "hello"}),
    ("log4j2 JsonLayout", "Log4j 2 manual, JsonLayout (complete=false, compact=true, eventEol=true): a logged "
     "exception (instant and thrown were not read: the receive time, no error)",
     '{"instant":{"epochSecond":1795600800,"nanoOfSecond":125000000},"thread":"main","level":"ERROR",'
     '"loggerName":"com.shop.Payments","message":"payment failed","thrown":{"commonElementCount":0,'
     '"localizedMessage":"card declined","message":"card declined","name":"java.lang.IllegalStateException",'
     '"extendedStackTrace":"java.lang.IllegalStateException: card declined\\n\\tat com.shop.Payments.pay(Payments.java:42)"},'
     '"endOfBatch":false,"loggerFqcn":"org.apache.logging.log4j.spi.AbstractLogger","threadId":1,"threadPriority":5}',
     {"timestamp": "2026-11-25T10:00:00.125000Z", "level": "ERROR", "message": "payment failed",
      "error": {"commonElementCount": 0, "localizedMessage": "card declined", "message": "card declined",
                "type": "java.lang.IllegalStateException",
                "stack": "java.lang.IllegalStateException: card declined\n\tat com.shop.Payments.pay(Payments.java:42)"},
      "attributes": {"loggerName": "com.shop.Payments", "thread": "main"}}),
    ("log4j2 JsonLayout locationInfo", "Log4j 2 manual, JsonLayout with locationInfo=\"true\": the code "
     "location is a 'source' object (it was stored as the record's source, its JSON text)",
     '{"instant":{"epochSecond":1795600800,"nanoOfSecond":0},"thread":"main","level":"INFO",'
     '"loggerName":"com.shop.Cart","message":"cart saved","endOfBatch":false,'
     '"loggerFqcn":"org.apache.logging.log4j.spi.AbstractLogger","threadId":1,"threadPriority":5,'
     '"source":{"class":"com.shop.Cart","method":"save","file":"Cart.java","line":88}}',
     {"timestamp": "2026-11-25T10:00:00.000000Z", "level": "INFO", "message": "cart saved", "source": None,
      "attributes": {"source_location": {"class": "com.shop.Cart", "method": "save", "file": "Cart.java",
                                         "line": 88}}}),
    (".NET JSON console", "Microsoft docs, Console log formatting: JsonConsoleFormatter with TimestampFormat "
     "set (LogLevel, Message, Timestamp and Exception were not read: INFO, no message, the receive time)",
     '{"Timestamp":"2026-11-25T10:00:00.125Z","EventId":0,"LogLevel":"Warning","Category":"Shop.Payments",'
     '"Message":"payment retried for order 42","Exception":"System.TimeoutException: gateway\\n   at Shop.Pay()",'
     '"State":{"Message":"payment retried for order 42","order":42,"{OriginalFormat}":"payment retried for order {order}"}}',
     {"timestamp": "2026-11-25T10:00:00.125000Z", "level": "WARN", "message": "payment retried for order 42",
      "error": {"stack": "System.TimeoutException: gateway\n   at Shop.Pay()"},
      "attributes": {"Category": "Shop.Payments", "EventId": 0}}),
    ("rust tracing", "tracing-subscriber docs, fmt::format::Json: an event with a field (the message is "
     "fields.message, which was not read)",
     '{"timestamp":"2026-11-25T10:00:00.125000Z","level":"INFO","fields":{"message":"preparing to shave yaks",'
     '"number_of_yaks":3},"target":"fmt_json"}',
     {"timestamp": "2026-11-25T10:00:00.125000Z", "level": "INFO", "message": "preparing to shave yaks",
      "attributes": {"fields": {"number_of_yaks": 3}, "target": "fmt_json"}}),
    ("caddy", "Caddy docs, the log directive: an access log line (JSON encoder; status, size and duration "
     "in seconds were attributes, the request an object nobody read)",
     '{"level":"info","ts":1795600800.125,"logger":"http.log.access.log0","msg":"handled request",'
     '"request":{"remote_ip":"203.0.113.7","remote_port":"51234","client_ip":"203.0.113.7","proto":"HTTP/2.0",'
     '"method":"GET","host":"shop.example.com","uri":"/api/cart?id=7","headers":{"User-Agent":["curl/8.5.0"]}},'
     '"bytes_read":0,"user_id":"","duration":0.0012,"size":512,"status":404,"resp_headers":{"Server":["Caddy"]}}',
     {"timestamp": "2026-11-25T10:00:00.125000Z", "level": "INFO", "message": "handled request",
      "http": {"method": "GET", "path": "/api/cart?id=7", "client_ip": "203.0.113.7", "user_agent": "curl/8.5.0",
               "status": 404, "bytes_sent": 512, "duration_ms": 1.2}}),
    ("traefik", "Traefik docs, access logs in JSON (default fields; Duration in nanoseconds, msg empty)",
     '{"ClientAddr":"203.0.113.7:51234","ClientHost":"203.0.113.7","DownstreamContentSize":512,'
     '"DownstreamStatus":502,"Duration":12500000,"OriginStatus":502,"RequestMethod":"POST","RequestPath":"/api/pay",'
     '"RequestProtocol":"HTTP/1.1","RequestHost":"shop.example.com","RouterName":"shop@docker",'
     '"StartUTC":"2026-11-25T10:00:00.112500000Z","level":"info","msg":"","time":"2026-11-25T10:00:00Z"}',
     # the level is logrus's "info" as sent (a level sent wins over the status's)
     {"timestamp": "2026-11-25T10:00:00.000000Z", "level": "INFO", "message": "POST /api/pay",
      "http": {"method": "POST", "path": "/api/pay", "status": 502, "client_ip": "203.0.113.7",
               "bytes_sent": 512, "duration_ms": 12.5},
      "attributes": {"RouterName": "shop@docker", "RequestHost": "shop.example.com"}}),
]


def fold(line: str) -> dict[str, Any]:
    """The record a line becomes, in the wire form (what a query returns), without the receive time."""
    record = normalize(orjson.loads(line), received_ns=RECEIVED)
    out = {name: value for name, value in record.items() if value not in (None, {}, "") or name == "message"}
    out.pop("observed_timestamp")
    out.pop("severity_number")
    out["timestamp"] = format_timestamp(record["timestamp"])
    return out


def agree(line: str) -> dict[str, Any]:
    """The fold of a line, checked to be what the agent's json parser leads to as well."""
    folded = fold(line)
    parsed = JsonParser().parse(line)
    assert "parse_error" not in parsed, parsed
    via_agent = normalize(parsed, received_ns=RECEIVED)
    assert via_agent["level"] == folded["level"] and via_agent["message"] == folded["message"]
    assert format_timestamp(via_agent["timestamp"]) == folded["timestamp"]
    return folded


def subset(expected: dict[str, Any], got: dict[str, Any]) -> None:
    for key, value in expected.items():
        if key == "attributes":
            for name, inner in value.items():
                assert got["attributes"].get(name) == inner, (name, got["attributes"])
        elif key == "error":
            assert got["attributes"]["error"] == value
        else:
            assert got.get(key) == value, (key, got)


@pytest.mark.parametrize("name, source, line, expected", DOCUMENTED, ids=[d[0] for d in DOCUMENTED])
def test_documented_lines(name: str, source: str, line: str, expected: dict[str, Any]) -> None:
    subset(expected, agree(line))


def test_pino(node_lines: dict[str, list[str]]) -> None:
    got = [agree(line) for line in node_lines["pino"]]
    assert [r["level"] for r in got] == ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
    assert {r["service"] for r in got} == {"checkout"}
    assert got[2]["message"] == "order o-42 placed" and got[2]["request_id"] == "req-pino-1"
    assert got[2]["attributes"]["orderId"] == 42 and "hostname" not in got[2]["attributes"]
    error = got[4]["attributes"]["error"]
    assert error["type"] == "Error" and error["message"] == "card declined"
    assert error["stack"].startswith("Error: card declined\n    at boom")
    sent = orjson.loads(node_lines["pino"][0])
    assert got[0]["timestamp"] == format_timestamp(sent["time"] * 1_000_000)  # epoch ms
    assert got[0]["host"] == sent["hostname"] and got[0]["attributes"]["pid"] == sent["pid"]


def test_bunyan(node_lines: dict[str, list[str]]) -> None:
    got = [agree(line) for line in node_lines["bunyan"]]
    assert [r["level"] for r in got] == ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
    assert {r["service"] for r in got} == {"billing"}
    assert got[2]["message"] == "invoice sent" and got[2]["request_id"] == "req-bunyan-1"
    error = got[4]["attributes"]["error"]
    assert error["name"] == "Error" and error["stack"].startswith("Error: card declined")
    assert got[0]["attributes"]["v"] == 0
    assert got[0]["timestamp"][:23] == orjson.loads(node_lines["bunyan"][0])["time"][:23]


def test_winston(node_lines: dict[str, list[str]]) -> None:
    got = [agree(line) for line in node_lines["winston"]]
    assert [r["level"] for r in got] == ["TRACE", "DEBUG", "TRACE", "INFO", "INFO", "WARN", "ERROR"]
    assert {r["service"] for r in got} == {"orders"}
    assert got[4]["request_id"] == "req-winston-1" and got[3]["message"] == "GET /orders 200"
    # winston's errors({stack: true}) writes a top-level `stack`: a generic key, kept as sent
    assert got[6]["message"] == "card declined" and got[6]["attributes"]["stack"].startswith("Error: card")


def test_logback(logback_lines: list[str]) -> None:
    got = [agree(line) for line in logback_lines]
    assert [r["level"] for r in got] == ["INFO", "WARN", "ERROR", "DEBUG"]
    assert {r["service"] for r in got} == {"checkout"}
    assert got[0]["message"] == "order 42 placed" and got[0]["request_id"] == "req-logback-1"
    assert got[0]["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert got[0]["attributes"]["logger_name"] == "com.example.checkout.OrderService"
    assert got[0]["attributes"]["thread_name"] == "main" and got[0]["attributes"]["level_value"] == 20000
    assert got[2]["attributes"]["error"] == {"stack": orjson.loads(logback_lines[2])["stack_trace"]}
    assert got[2]["attributes"]["error"]["stack"].startswith("java.lang.IllegalStateException: card declined")
    assert "request_id" not in got[3]  # MDC cleared


def test_python_json_logger(python_json_logger_lines: list[str]) -> None:
    got = [agree(line) for line in python_json_logger_lines]
    assert [r["level"] for r in got] == ["INFO", "WARN", "ERROR", "DEBUG"]
    first = orjson.loads(python_json_logger_lines[0])
    day, clock = first["asctime"].split(" ")
    assert got[0]["timestamp"] == f"{day}T{clock.replace(',', '.')}000Z"  # local time, read as UTC
    assert got[0]["message"] == "charged" and got[0]["request_id"] == "req-py-1"
    assert got[0]["attributes"]["name"] == "tests.dialects.payments"
    stack = got[2]["attributes"]["error"]["stack"]
    assert stack.startswith("Traceback (most recent call last):") and "ZeroDivisionError" in stack
    last = orjson.loads(python_json_logger_lines[3])
    assert got[3]["timestamp"][:26] == last["timestamp"][:26]  # timestamp=True: UTC with its offset
    assert got[3]["trace_id"] == "5759e988bd862e3fe1be46a994272793" and got[3]["service"] == "payments"


@pytest.fixture(scope="module")
def ecs_logging_lines() -> list[str]:
    """Elastic's ecs-logging for Python (StdlibFormatter): ``service``, ``host``, ``trace`` and ``log``
    are nested objects, ``log.level`` a dotted key, the exception in ``error``."""
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ecs_logging.StdlibFormatter())
    log = logging.getLogger("tests.dialects.ecs")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.info("charged", extra={"service.name": "checkout", "host.name": "web-1",
                                   "trace.id": "0af7651916cd43dd8448eb211c80319c", "span.id": "00f067aa0ba902b7"})
        try:
            1 / 0  # noqa: B018 - the exception is the point
        except ZeroDivisionError:
            log.exception("charge failed", extra={"service.name": "checkout", "user.id": "u-1"})
    finally:
        log.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_ecs_logging(ecs_logging_lines: list[str]) -> None:
    """Its nested service, host, trace and span are read as the dotted names Log4j2's EcsLayout
    writes (they were stored as JSON text: service '{"name":"checkout"}', the trace as a request id)."""
    assert '"service":{"name":"checkout"}' in ecs_logging_lines[0]  # the logger really nests them
    got = [agree(line) for line in ecs_logging_lines]
    assert [r["level"] for r in got] == ["INFO", "ERROR"]
    assert got[0]["service"] == "checkout" and got[0]["host"] == "web-1"
    assert got[0]["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and got[0]["span_id"] == "00f067aa0ba902b7"
    assert "request_id" not in got[0]
    assert got[0]["attributes"]["log.logger"] == "tests.dialects.ecs"
    assert got[1]["service"] == "checkout" and got[1]["message"] == "charge failed"
    assert got[1]["attributes"]["error"]["type"] == "ZeroDivisionError"
    assert got[1]["attributes"]["error"]["stack"].lstrip().startswith('File "')
    assert got[1]["attributes"]["user"] == {"id": "u-1"}  # other ECS objects stay as they are


# -- through a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_line(node_lines: dict[str, list[str]], logback_lines: list[str],
               python_json_logger_lines: list[str], ecs_logging_lines: list[str]) -> Iterator[list[tuple[str, str]]]:
    lines = [(name, line) for name, found in node_lines.items() for line in found]
    lines += [("logback", line) for line in logback_lines]
    lines += [("python-json-logger", line) for line in python_json_logger_lines]
    lines += [("ecs-logging", line) for line in ecs_logging_lines]
    lines += [(name, line) for name, _, line, _ in DOCUMENTED]
    yield lines


def _tagged(line: str, tag: str) -> bytes:
    obj = orjson.loads(line)
    obj["golden"] = tag
    return orjson.dumps(obj)


def test_a_real_server_stores_what_normalize_says(server: ServerProcess, every_line: list[tuple[str, str]]) -> None:
    """Each line, sent as the logger wrote it (native NDJSON and _bulk), is stored as it folds."""
    native = b"\n".join(_tagged(line, f"n{i}") for i, (_, line) in enumerate(every_line))
    bulk = b"".join(b'{"index":{"_index":"logs"}}\n' + _tagged(line, f"b{i}") + b"\n"
                    for i, (_, line) in enumerate(every_line))
    with server.client() as client:
        answer = client.post("/api/v1/logs", content=native, headers={"content-type": "application/x-ndjson"})
        assert answer.json() == {"accepted": len(every_line), "rejected": []}
        answer = client.post("/_bulk", content=bulk, headers={"content-type": "application/x-ndjson"})
        assert answer.json()["errors"] is False, answer.text
    assert server.wait_rows(2 * len(every_line)) >= 2 * len(every_line)
    rows = server.query("_exists_:golden", limit=1000, **{"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})
    stored = {}
    columns = rows["columns"]
    for values in rows["rows"]:
        row = dict(zip(columns, values, strict=True)) if isinstance(values, list) else values
        stored[row["golden"]] = row
    for i, (name, line) in enumerate(every_line):
        expected = fold(line)
        for tag in (f"n{i}", f"b{i}"):
            row = stored[tag]
            for field in ("level", "message", "service", "timestamp", "trace_id", "request_id"):
                want = expected.get(field) or (None if field != "service" else "unknown")
                assert (row.get(field) or None) == (want or None), (name, tag, field, row.get(field), want)
            for key in ("error", "error.stack"):
                if key in expected.get("attributes", {}):
                    assert row.get(key) == expected["attributes"][key], (name, tag, key)


if __name__ == "__main__":  # print what the real loggers write here (to refresh the docs' examples)
    sys.exit(pytest.main([__file__, "-q"]))
