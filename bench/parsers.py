"""Parser throughput: MiB/s and lines/s per parser on one core, as JSON lines.

Usage: ``python bench/parsers.py --mbytes 50 [--parsers nginx_main,alb,multiline_java] [--normalize]
[--baseline]``

Each parser gets its own generated input of about ``--mbytes`` MiB (realistic lines written by
the formatters in ``logharbor.formats``: a few thousand distinct requests, timestamps advancing
about 1 ms per line like a busy server). The timed loop is only ``parser.parse(line)`` over lines
already in memory (``--normalize`` adds :func:`logharbor.record.normalize`, the rest of the
agent's per-line work); CPU time of this process is reported beside wall time, and
``mib_per_cpu_s`` is the rate per second of CPU, the figure that holds on a busy machine.
``--baseline`` also times the NGINX text formats' reference parse function
(``formats/nginx_reference.py``) over the same lines in the same process, alternating rounds with
the current one, and prints ``speedup`` (reference CPU / current CPU): a ratio that holds on a
loaded machine where absolute figures do not.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable

import orjson

from logharbor.formats import build_parser
from logharbor.formats.alb import format_alb_line
from logharbor.formats.nginx import format_nginx_line
from logharbor.record import normalize

BASE_NS = 1_793_534_400_000_000_000
PATHS = ["/", "/api/orders", "/api/orders/42", "/static/app.js", "/login", "/api/search?q=shoes&page=2",
         "/health", "/api/cart/items", "/img/logo.png", "/api/users/u-123/profile"]
AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0 Safari/537.36", "python-httpx/0.28.1", "Go-http-client/1.1"]
STATUSES = [200] * 14 + [201, 204, 301, 304, 400, 404, 404, 500, 502, 503]


def _trace(rng: random.Random) -> str:
    return f"Root=1-{rng.getrandbits(32):08x}-{rng.getrandbits(96):024x}"


def nginx_values(rng: random.Random, i: int) -> dict[str, object]:
    """Variables of one generated NGINX request."""
    return {
        "remote_addr": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "time_local": BASE_NS + i * 1_000_000, "time_iso8601": BASE_NS + i * 1_000_000,
        "request": f"{rng.choice(['GET', 'GET', 'POST', 'PUT'])} {rng.choice(PATHS)} HTTP/1.1",
        "status": rng.choice(STATUSES), "body_bytes_sent": rng.randrange(0, 50_000),
        "http_referer": rng.choice(["-", "https://shop.example/"]),
        "http_user_agent": rng.choice(AGENTS), "request_time": rng.randrange(0, 3000) / 1000,
        "upstream_response_time": f"{rng.randrange(0, 3000) / 1000:.3f}",
        "request_id": f"{rng.getrandbits(128):032x}", "http_x_amzn_trace_id": _trace(rng),
    }


def gen_nginx(fmt: str) -> Callable[[random.Random, int], str]:
    """Generator of NGINX lines in ``fmt``, written by ``format_nginx_line``."""
    return lambda rng, i: format_nginx_line(nginx_values(rng, i), fmt)


def gen_alb(rng: random.Random, i: int) -> str:
    """An HTTPS ALB entry with all 33 fields, written by ``format_alb_line``."""
    v = nginx_values(rng, i)
    return format_alb_line({
        "type": "https", "time": BASE_NS + i * 1_000_000, "elb": "app/my-lb/50dc6c495c0c9188",
        "client:port": f"{v['remote_addr']}:{rng.randrange(1024, 65535)}", "target:port": "10.0.0.1:80",
        "request_processing_time": 0.001, "target_processing_time": v["request_time"],
        "response_processing_time": 0.0, "elb_status_code": v["status"],
        "target_status_code": v["status"], "received_bytes": rng.randrange(100, 2000),
        "sent_bytes": v["body_bytes_sent"],
        "request": f"GET https://shop.example:443{rng.choice(PATHS)} HTTP/1.1",
        "user_agent": v["http_user_agent"], "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "ssl_protocol": "TLSv1.2",
        "target_group_arn": "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/t/73e2d6bc",
        "trace_id": v["http_x_amzn_trace_id"], "domain_name": "shop.example",
        "matched_rule_priority": 1, "request_creation_time": BASE_NS + i * 1_000_000 - 5_000_000,
        "actions_executed": "forward", "target:port_list": "10.0.0.1:80",
        "target_status_code_list": str(v["status"]), "conn_trace_id": f"TID_{rng.getrandbits(64):016x}",
    })


def gen_json(rng: random.Random, i: int) -> str:
    """An sdk-style JSON line."""
    return orjson.dumps({
        "timestamp": "2026-11-01T12:00:00.123456Z", "level": rng.choice(["INFO", "INFO", "WARN", "ERROR"]),
        "service": "checkout", "message": "payment processed", "trace_id": f"{rng.getrandbits(128):032x}",
        "user_id": f"u-{rng.randrange(1000)}", "amount": rng.randrange(100, 10000) / 100,
    }).decode()


def gen_logfmt(rng: random.Random, i: int) -> str:
    """A Go-style logfmt line."""
    return (f'ts=2026-11-01T12:00:00.{i % 1000:03d}Z level={rng.choice(["info", "warn", "error"])} '
            f'service=checkout msg="payment processed for order" user_id=u-{rng.randrange(1000)} '
            f"duration_ms={rng.randrange(1, 900)} cached={rng.choice(['true', 'false'])}")


def gen_syslog(rng: random.Random, i: int) -> str:
    """RFC 5424 with structured data and RFC 3164 sshd lines, alternately."""
    if i % 2:
        return (f"<{rng.randrange(8, 191)}>1 2026-11-01T12:00:{i % 60:02d}.{i % 1000:03d}Z web-{i % 9} "
                f'app {rng.randrange(1, 9999)} ID47 [req@32473 id="{i}" user="u-{i % 100}"] request handled')
    return f"<{rng.randrange(8, 191)}>Nov  1 12:00:{i % 60:02d} web-{i % 9} sshd[{rng.randrange(99999)}]: " \
           "Accepted publickey for deploy from 10.0.0.5 port 50022 ssh2"


REGEX_PATTERN = (r"^(?P<ts>\S+) (?P<level>\w+) (?P<service>\S+) (?P<http__status>\d{3}) "
                 r"(?P<duration_ms>[\d.]+)ms (?P<message>.*)$")


def gen_regex(rng: random.Random, i: int) -> str:
    """A line for :data:`REGEX_PATTERN`."""
    return (f"2026-11-01T12:00:00.{i % 1000:03d}Z {rng.choice(['INFO', 'WARN', 'ERROR'])} checkout "
            f"{rng.choice(STATUSES)} {rng.randrange(1, 9000) / 10}ms order {i} placed by u-{i % 1000}")


CASES: dict[str, tuple[Callable[[random.Random, int], str], dict[str, object], str]] = {
    "nginx_combined": (gen_nginx("combined"), {"format": "combined"}, "nginx"),
    "nginx_main": (gen_nginx("main"), {"format": "main"}, "nginx"),
    "nginx_json": (gen_nginx("json"), {"format": "json"}, "nginx"),
    "alb": (gen_alb, {}, "alb"),
    "json": (gen_json, {}, "json"),
    "logfmt": (gen_logfmt, {}, "logfmt"),
    "syslog": (gen_syslog, {}, "syslog"),
    "regex": (gen_regex, {"pattern": REGEX_PATTERN, "types": {"http__status": "int",
                                                             "duration_ms": "float"}}, "regex"),
}


def make_lines(gen: Callable[[random.Random, int], str], mbytes: float,
               seed: int = 7) -> tuple[list[str], int]:
    """About ``mbytes`` MiB of lines: 4096 distinct ones with advancing times, repeated."""
    rng = random.Random(seed)
    target = int(mbytes * 1024 * 1024)
    lines: list[str] = []
    size = 0
    i = 0
    while size < target:
        line = gen(rng, i)
        lines.append(line)
        size += len(line.encode()) + 1
        i += 1
        if i >= 4096:
            break
    base = list(lines)
    while size < target:
        for line in base:
            lines.append(line)
            size += len(line.encode()) + 1
            if size >= target:
                break
    return lines, size


def run(name: str, mbytes: float, with_normalize: bool) -> dict[str, object]:
    """Time one parser over its generated input."""
    gen, options, kind = CASES[name]
    lines, size = make_lines(gen, mbytes)
    parser = build_parser(kind, **options)
    parse = parser.parse
    errors = sum(1 for line in lines[:4096] if "parse_error" in parse(line))
    cpu0, t0 = time.process_time(), time.perf_counter()
    if with_normalize:
        now = BASE_NS
        for line in lines:
            normalize(parse(line), received_ns=now)
    else:
        for line in lines:
            parse(line)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    mib = size / (1024 * 1024)
    return {
        "bench": "parsers", "parser": name, "normalize": with_normalize, "lines": len(lines),
        "mib": round(mib, 2), "avg_line_bytes": round(size / len(lines), 1),
        "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
        "mib_per_s": round(mib / wall, 2), "lines_per_s": round(len(lines) / wall),
        "mib_per_cpu_s": round(mib / cpu, 2) if cpu else None,
        "parse_errors_in_sample": errors,
    }


def run_baseline(name: str, mbytes: float, rounds: int = 3) -> dict[str, object]:
    """Current vs reference NGINX text parser on the same lines, best CPU time of ``rounds``
    alternating rounds each (alternating, so a burst of load hits both alike)."""
    from logharbor.formats.nginx import NginxParser, compile_log_format
    from logharbor.formats.nginx_reference import generate_reference

    gen, options, kind = CASES[name]
    lines, size = make_lines(gen, mbytes)
    current = build_parser(kind, **options)
    ref = NginxParser(str(options["format"]))
    ref.parse = generate_reference(compile_log_format(ref.format)[0], ref._unescape)  # type: ignore[method-assign]
    best = {"reference": float("inf"), "current": float("inf")}
    for _ in range(rounds):
        for label, parse in (("reference", ref.parse), ("current", current.parse)):
            cpu0 = time.process_time()
            for line in lines:
                parse(line)
            best[label] = min(best[label], time.process_time() - cpu0)
    mib = size / (1024 * 1024)
    return {
        "bench": "parsers", "parser": name, "baseline": "nginx_reference", "mib": round(mib, 2),
        "lines": len(lines), "rounds": rounds,
        "reference_mib_per_cpu_s": round(mib / best["reference"], 2),
        "current_mib_per_cpu_s": round(mib / best["current"], 2),
        "speedup": round(best["reference"] / best["current"], 3),
        "current_native": getattr(current, "native", False),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def gen_java(rng: random.Random, i: int) -> str:
    """Java service output: mostly single lines, every 8th event an exception with its stack."""
    head = f"2026-11-01 12:00:00.{i % 1000:03d} INFO  [http-{i % 16}] c.e.OrderService - order {i} placed"
    if i % 8:
        return head
    frames = "\n".join(f"\tat com.example.Layer{j}.call(Layer{j}.java:{rng.randrange(1, 400)})"
                       for j in range(rng.randrange(5, 30)))
    return (head.replace("INFO ", "ERROR") + "\njava.lang.IllegalStateException: order failed\n" + frames
            + "\nCaused by: java.io.IOException: reset\n\tat x.y.Z.read(Z.java:1)\n\t... 12 more")


def run_multiline(mbytes: float) -> dict[str, object]:
    """Time the multiline aggregator (java preset) over Java output: feed every physical line."""
    from logharbor.formats.multiline import build_multiline

    events, _ = make_lines(gen_java, mbytes)
    lines = [part for event in events for part in event.split("\n")]
    size = sum(len(line.encode()) + 1 for line in lines)
    agg = build_multiline(preset="java")
    cpu0, t0 = time.process_time(), time.perf_counter()
    out = 0
    feed = agg.feed
    for line in lines:
        out += len(feed(line, 0.0))
    out += len(agg.close())
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    mib = size / (1024 * 1024)
    return {
        "bench": "parsers", "parser": "multiline_java", "normalize": False, "lines": len(lines),
        "events": out, "events_expected": len(events), "mib": round(mib, 2),
        "avg_line_bytes": round(size / len(lines), 1), "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3), "mib_per_s": round(mib / wall, 2),
        "lines_per_s": round(len(lines) / wall), "mib_per_cpu_s": round(mib / cpu, 2) if cpu else None,
        "parse_errors_in_sample": 0 if out == len(events) else abs(out - len(events)),
    }


def main() -> None:
    """Run the chosen cases and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbytes", type=float, default=20, help="MiB of input per parser")
    names = [*CASES, "multiline_java"]
    ap.add_argument("--parsers", default=",".join(names), help="comma-separated: " + ",".join(names))
    ap.add_argument("--normalize", action="store_true", help="also time parse + record.normalize")
    ap.add_argument("--baseline", action="store_true",
                    help="NGINX text formats: also time the reference parser side by side")
    args = ap.parse_args()
    for name in args.parsers.split(","):
        if name == "multiline_java":
            print(orjson.dumps(run_multiline(args.mbytes)).decode(), flush=True)
            continue
        if name not in CASES:
            ap.error(f"unknown parser {name!r}")
        print(orjson.dumps(run(name, args.mbytes, False)).decode(), flush=True)
        if args.normalize:
            print(orjson.dumps(run(name, args.mbytes, True)).decode(), flush=True)
        if args.baseline and name in ("nginx_combined", "nginx_main"):
            print(orjson.dumps(run_baseline(name, args.mbytes)).decode(), flush=True)


if __name__ == "__main__":
    main()
