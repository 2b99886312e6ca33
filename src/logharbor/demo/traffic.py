"""Realistic traffic of the reference stack: AWS ALB → NGINX → app instances on 9092/9093.

A *request story* is one request as the three layers see it: the ALB picks a trace id
(``X-Amzn-Trace-Id: Root=1-…``) and forwards to NGINX, which adds ``$request_id`` and proxies to one
of two app instances; each layer writes its own line. :func:`render` writes those lines in each
layer's real format (the AWS ALB access log, NGINX's ``main`` format with timings and ids, JSON
app records), so everything downstream parses them the way it would parse production logs.

The mix: browsing, search and checkout; some 4xx; some 5xx from a flaky payment provider; slow
upstreams; now and then an app exception with a Python stack trace.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from logharbor.demo.alb import ELB, TARGET_GROUP
from logharbor.formats.alb import format_alb_line
from logharbor.formats.nginx import format_nginx_line
from logharbor.record import format_timestamp
from logharbor.types import WireRecord

__all__ = ["APP_PORTS", "ELB", "NGINX_FORMAT", "RequestStory", "TrafficGenerator", "render"]

APP_PORTS = (9092, 9093)
NGINX_FORMAT = "main"
CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
DOMAIN = "shop.example.com"
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.5.0",
    "python-httpx/0.28.1",
)
PRODUCTS = ("espresso-machine", "grinder", "kettle", "mug", "filter-papers", "scale", "tamper")
QUERIES = ("coffee", "decaf", "milk frother", "gift card", "descaler", "beans")
ERROR_CODES = ("PAY_001", "PAY_002", "PAY_TIMEOUT")


@dataclass
class RequestStory:
    """One request through the stack, with every value each layer will log."""

    start_ns: int
    trace_id: str  # 32 hex: 8 hex epoch seconds + 24 random hex, as AWS builds it
    request_id: str
    client_ip: str
    client_port: int
    user_agent: str
    method: str
    path: str
    route: str
    status: int
    app_ms: float
    port: int
    user_id: str
    bytes_sent: int
    received_bytes: int
    app_records: list[WireRecord] = field(default_factory=list)
    #: how far each layer's clock is off (ns, + is ahead): ``alb``, ``nginx``, ``app``; the lines
    #: carry the skewed times, as a host whose clock is wrong writes them
    clock_ns: dict[str, int] = field(default_factory=dict)

    @property
    def amzn_trace_header(self) -> str:
        return f"Root=1-{self.trace_id[:8]}-{self.trace_id[8:]}"


class TrafficGenerator:
    """Stories with a seeded, realistic mix; ``rate_5xx`` raises the payment failure rate.

    ``clock_offsets_ms`` shifts the times a layer writes, as a host with a wrong clock would: keys
    ``alb``, ``nginx`` or an app instance (``checkout-9093``), values in ms (+ is ahead).
    """

    def __init__(self, seed: int | None = None, *, rate_5xx: float = 0.04,
                 clock_offsets_ms: dict[str, float] | None = None) -> None:
        self.rng = random.Random(seed)
        self.rate_5xx = rate_5xx
        self.clock_offsets_ms = dict(clock_offsets_ms or {})
        self._clients = [self._ip() for _ in range(400)]

    def _ip(self) -> str:
        r = self.rng
        if r.random() < 0.1:
            return f"2001:db8:{r.randrange(65536):x}::{r.randrange(65536):x}"
        return f"{r.choice((198, 203, 192))}.{r.choice((51, 0))}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def story(self, start_ns: int | None = None) -> RequestStory:
        r = self.rng
        now = start_ns if start_ns is not None else time.time_ns()
        trace_id = f"{now // 1_000_000_000:08x}"[-8:] + f"{r.getrandbits(96):024x}"
        kind = r.choices(("browse", "product", "search", "cart", "checkout", "missing"),
                         weights=(30, 25, 18, 10, 12, 5))[0]
        method, status, app_ms = "GET", 200, r.lognormvariate(2.6, 0.6)
        if kind == "browse":
            path = route = "/products"
        elif kind == "product":
            route = "/products/{slug}"
            path = f"/products/{r.choice(PRODUCTS)}"
        elif kind == "search":
            route = "/search"
            path = f"/search?q={r.choice(QUERIES).replace(' ', '+')}"
            app_ms *= 2.5
        elif kind == "cart":
            method, route = "POST", "/api/cart"
            path = route
        elif kind == "checkout":
            method, route = "POST", "/api/orders"
            path = route
            app_ms = r.lognormvariate(4.5, 0.5)  # talks to the payment provider
            if r.random() < self.rate_5xx * 4:
                status = r.choice((502, 503, 500))
                app_ms = r.uniform(800, 3000)
        else:
            route = "/products/{slug}"
            path = f"/products/{r.choice(('old-kettle', 'x', 'wp-login.php'))}"
            status = 404
        if status == 200 and r.random() < 0.03:
            status = r.choice((400, 401, 429))
        if r.random() < 0.02:
            app_ms *= 20  # a slow upstream
        story = RequestStory(
            start_ns=now, trace_id=trace_id, request_id=f"{r.getrandbits(128):032x}",
            client_ip=r.choice(self._clients), client_port=r.randrange(20000, 65000),
            user_agent=r.choice(USER_AGENTS), method=method, path=path, route=route, status=status,
            app_ms=round(app_ms, 3), port=r.choice(APP_PORTS), user_id=f"u-{r.randrange(1, 5000)}",
            bytes_sent=r.randrange(300, 40000) if status == 200 else r.randrange(100, 600),
            received_bytes=r.randrange(200, 2000),
        )
        offsets = self.clock_offsets_ms
        story.clock_ns = {layer: int(offsets[key] * 1e6) for layer, key in
                          (("alb", "alb"), ("nginx", "nginx"), ("app", f"checkout-{story.port}"))
                          if offsets.get(key)}
        story.app_records = self._app_records(story, kind)
        return story

    def _app_records(self, s: RequestStory, kind: str) -> list[WireRecord]:
        """The app's own JSON lines for a request (what the sdk writes)."""
        r = self.rng
        base = {"service": "checkout", "source": "app", "host": "ip-10-0-1-5", "env": "prod",
                "version": "1.4.2", "instance": f"checkout-{s.port}", "trace_id": s.trace_id,
                "request_id": s.request_id, "user_id": s.user_id}
        # the app starts 0.35 ms after the ALB received the request (NGINX started at 0.15 ms),
        # as its own clock tells it
        t = s.start_ns + 350_000 + s.clock_ns.get("app", 0)
        out: list[WireRecord] = []
        if kind == "search":
            out.append({**base, "timestamp": format_timestamp(t), "level": "DEBUG",
                        "logger": "shop.search", "message": f"search ran in {s.app_ms * 0.8:.1f} ms",
                        "hits": r.randrange(0, 120)})
        if kind == "checkout":
            order_id = f"o-{r.randrange(10**6)}"
            amount = round(r.uniform(5, 400), 2)
            if s.status >= 500:
                code = r.choice(ERROR_CODES)
                out.append({**base, "timestamp": format_timestamp(t + int(s.app_ms * 1e6) - 500_000),
                            "level": "ERROR", "logger": "shop.payments", "order_id": order_id,
                            "message": "payment declined by provider" if code != "PAY_TIMEOUT"
                            else f"payment provider timeout after {int(s.app_ms)}ms",
                            "error_code": code, "amount": amount})
                if r.random() < 0.3:
                    out.append({**base, "timestamp": format_timestamp(t + int(s.app_ms * 1e6) - 400_000),
                                "level": "ERROR", "logger": "shop.api", "order_id": order_id,
                                "message": "unhandled exception in POST /api/orders",
                                "error": {"type": "ConnectionResetError",
                                          "message": "[Errno 104] Connection reset by peer",
                                          "stack": _STACK}})
            else:
                out.append({**base, "timestamp": format_timestamp(t + int(s.app_ms * 5e5)),
                            "level": "INFO", "logger": "shop.orders", "order_id": order_id,
                            "message": "order placed", "amount": amount, "items": r.randrange(1, 6)})
        if s.app_ms > 1000:
            out.append({**base, "timestamp": format_timestamp(t + int(s.app_ms * 1e6)), "level": "WARN",
                        "logger": "shop.api", "message": f"slow request {s.method} {s.route}",
                        "duration_ms": s.app_ms})
        out.append({**base, "timestamp": format_timestamp(t + int(s.app_ms * 1e6)),
                    "level": "ERROR" if s.status >= 500 else "WARN" if s.status >= 400 else "INFO",
                    "logger": "logharbor.access", "message": f"{s.method} {s.path} {s.status}",
                    "http": {"method": s.method, "path": s.path, "route": s.route, "status": s.status,
                             "duration_ms": s.app_ms, "client_ip": s.client_ip,
                             "user_agent": s.user_agent}})
        return out

    def stories(self, n: int, *, start_ns: int | None = None, spacing_ns: int = 5_000_000
                ) -> Iterator[RequestStory]:
        """``n`` stories starting at ``start_ns`` (default: now), ``spacing_ns`` apart on average."""
        t = start_ns if start_ns is not None else time.time_ns()
        for _ in range(n):
            t += int(self.rng.expovariate(1 / spacing_ns))
            yield self.story(t)


_STACK = """Traceback (most recent call last):
  File "/app/shop/api.py", line 88, in create_order
    receipt = await payments.charge(order, card)
  File "/app/shop/payments.py", line 41, in charge
    response = await self.client.post(self.url, json=payload)
  File "/usr/local/lib/python3.12/site-packages/httpx/_client.py", line 1859, in post
    return await self.request("POST", url, **kwargs)
ConnectionResetError: [Errno 104] Connection reset by peer"""


def render(story: RequestStory) -> dict[str, list[str] | list[WireRecord]]:
    """The lines each layer writes for one story: ``alb`` and ``nginx`` text, ``app`` records."""
    s = story
    # true times: the ALB receives at start and forwards at once; NGINX reads it 0.15 ms later and
    # writes its line when done (nginx_ms later); the app runs inside NGINX's upstream window; the
    # ALB logs 0.2 ms after the response came back. Each layer writes its own clock's time.
    nginx_ms = s.app_ms + 0.4
    alb_target_s = (nginx_ms + 0.3) / 1000
    alb_ns = s.clock_ns.get("alb", 0)
    created_ns = s.start_ns + alb_ns
    end_ns = created_ns + int((nginx_ms + 0.5) * 1e6)
    nginx_end_ns = s.start_ns + 150_000 + int(nginx_ms * 1e6) + s.clock_ns.get("nginx", 0)
    alb = format_alb_line({
        "type": "https", "time": end_ns, "elb": ELB, "client:port": _addr(s.client_ip, s.client_port),
        "target:port": f"10.0.1.{20 + s.port % 2}:80", "request_processing_time": 0.0,
        "target_processing_time": round(alb_target_s, 3), "response_processing_time": 0.0,
        "elb_status_code": s.status, "target_status_code": s.status, "received_bytes": s.received_bytes,
        "sent_bytes": s.bytes_sent + 180, "request": f"{s.method} https://{DOMAIN}:443{s.path} HTTP/1.1",
        "user_agent": s.user_agent, "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "ssl_protocol": "TLSv1.2", "target_group_arn": TARGET_GROUP, "trace_id": s.amzn_trace_header,
        "domain_name": DOMAIN, "chosen_cert_arn": CERT, "matched_rule_priority": 0,
        "request_creation_time": created_ns, "actions_executed": "forward",
        "target:port_list": f"10.0.1.{20 + s.port % 2}:80", "target_status_code_list": str(s.status),
        "classification": "", "classification_reason": "", "conn_trace_id":
        f"TID_{s.request_id[:16]}",
    })
    nginx = format_nginx_line({
        "remote_addr": "10.0.0.12", "remote_user": None, "time_local": nginx_end_ns,
        "request": f"{s.method} {s.path} HTTP/1.1", "status": s.status, "body_bytes_sent": s.bytes_sent,
        "http_referer": None, "http_user_agent": s.user_agent, "http_x_forwarded_for": s.client_ip,
        "request_time": round(nginx_ms / 1000, 3), "upstream_response_time": round(s.app_ms / 1000, 3),
        "request_id": s.request_id, "http_x_amzn_trace_id": s.amzn_trace_header,
    }, NGINX_FORMAT)
    return {"alb": [alb], "nginx": [nginx], "app": s.app_records}


def _addr(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
