"""Agent throughput: file → receiver, logharbor agent and rsyslog side by side. Prints JSON lines.

For each input kind (raw text lines, NGINX combined lines parsed by the agent, JSON lines parsed
by the agent, ``nginx_json``: NGINX's JSON ``log_format`` preset parsed by the agent) a file of
``--mbytes`` MiB is generated, then shipped from its beginning by:

- the logharbor agent (a real ``python -m logharbor.agent`` process, default zstd) to an HTTP
  receiver that decompresses, counts and discards (so the agent is what is measured);
- rsyslog (Debian's ``rsyslogd``, ``imfile`` → ``omfwd`` TCP) to a TCP receiver that counts and
  discards (raw lines only: rsyslog forwards lines, it does not parse NGINX into fields);
- with ``--server``, the agent to a real ``logharbor server`` (ack after WAL fsync) as well.

Each result: MiB/s and lines/s over wall time (from the first byte received to the last, so
process start-up is not counted), the shipper's CPU seconds (user+sys from /proc) and MiB per CPU
second (the per-core rate), ``steady_mib_per_cpu_s`` the same from the first batch received on
(the interpreter's start left out), and its peak RSS (VmHWM).

With ``--pin`` each shipper runs on CPU 0 alone and the receivers (and the server) on CPU 1, so
the wall-clock rate is the shipper's one-core rate whenever the receiver keeps up.

With ``--compare-tree DIR`` (repeatable) the agent of each source tree (``DIR/src``, e.g. a
``git worktree add --detach /tmp/lh-base main`` with its native modules built) ships the same
file too, ``--rounds`` times, runs interleaved with this tree's, each line naming its ``tree``:
ratios of one run hold on a loaded machine where absolute figures do not.

Run: .venv/bin/python bench/agent.py --mbytes 200 [--kinds raw,nginx,json,nginx_json] [--server] [--pin]
[--compare-tree DIR --rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parent.parent
CLK = os.sysconf("SC_CLK_TCK")
#: command prefix that runs a shipper on CPU 0 (set by --pin; the receivers then stay on CPU 1)
PIN: list[str] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- input ------------------------------------------------------------------------------------------

PATHS = ["/api/orders", "/api/cart", "/", "/static/app.js", "/api/users/42", "/healthz"]
AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"]


def make_line(kind: str, i: int, rng: random.Random) -> str:
    path = rng.choice(PATHS)
    status = rng.choice((200, 200, 200, 201, 304, 404, 500))
    if kind == "nginx":
        return (f'10.0.{i % 256}.{rng.randrange(256)} - - [25/Nov/2026:01:{i % 60:02d}:{i % 60:02d} +0000] '
                f'"GET {path}?id={i} HTTP/1.1" {status} {rng.randrange(100, 9000)} '
                f'"https://example.com/" "{rng.choice(AGENTS)}"')
    if kind == "nginx_json":
        from logharbor.formats.nginx import format_nginx_line

        return format_nginx_line({
            "remote_addr": f"10.0.{i % 256}.{rng.randrange(256)}",
            "time_iso8601": 1_795_568_400_000_000_000 + i * 1_000_000_000,
            "request": f"GET {path}?id={i} HTTP/1.1", "status": status,
            "body_bytes_sent": rng.randrange(100, 9000), "request_time": rng.randrange(900) / 1000,
            "upstream_response_time": f"{rng.randrange(900) / 1000:.3f}", "http_referer": "https://example.com/",
            "http_user_agent": rng.choice(AGENTS), "request_id": f"{rng.getrandbits(128):032x}"}, "json")
    if kind == "json":
        level = rng.choice(("info", "warn", "error"))
        return json.dumps({"time": "2026-11-25T01:00:00.123Z", "level": level,
                           "service": "checkout", "msg": f"request {i} handled", "path": path,
                           "status": status, "duration_ms": rng.randrange(1, 900),
                           "user_id": f"u-{i % 5000}"})
    return (f"2026-11-25T01:00:00.{i % 1000:03d}Z INFO checkout[{i % 7}] request {i:09d} handled "
            f"path={path} status={status} user=u-{i % 5000} duration_ms={rng.randrange(1, 900)}")


def generate(path: Path, kind: str, mbytes: int) -> int:
    rng = random.Random(7)
    target = mbytes * 1024 * 1024
    size = lines = 0
    with open(path, "w") as fh:
        buf = []
        while size < target:
            line = make_line(kind, lines, rng) + "\n"
            buf.append(line)
            size += len(line)
            lines += 1
            if len(buf) >= 10_000:
                fh.write("".join(buf))
                buf = []
        fh.write("".join(buf))
    return lines


# -- receivers that count and discard --------------------------------------------------------------

class Counter:
    def __init__(self) -> None:
        self.lines = 0
        self.bytes = 0
        self.first: float | None = None
        self.last = 0.0
        self.lock = threading.Lock()

    def add(self, lines: int, nbytes: int) -> None:
        now = time.monotonic()
        with self.lock:
            if self.first is None:
                self.first = now
            self.lines += lines
            self.bytes += nbytes
            self.last = now


def http_receiver(counter: Counter) -> tuple[ThreadingHTTPServer, int]:

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # one write per response: no Nagle/delayed-ACK stall between header and body

        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30) \
                if self.headers.get("Content-Encoding") == "zstd" else raw
            n = body.count(b"\n")
            counter.add(n, len(body))
            answer = b'{"accepted":%d,"rejected":[]}' % n
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def tcp_receiver(counter: Counter) -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1 << 20):
                counter.add(data.count(b"\n"), len(data))

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return sock, int(sock.getsockname()[1])


# -- measuring a process ---------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_until(proc: subprocess.Popen[bytes], done: Any, counter: Counter, total: int,
              timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    cpu = rss = 0.0
    first: tuple[float, int] | None = None  # (CPU seconds, lines received) when the first batch came
    while time.monotonic() < deadline and proc.poll() is None:
        cpu, rss = cpu_seconds(proc.pid), peak_rss_mib(proc.pid)
        if first is None and counter.lines:
            first = (cpu, counter.lines)
        if done():
            break
        time.sleep(0.05)
    complete = bool(done())
    if proc.poll() is None:
        cpu, rss = cpu_seconds(proc.pid), peak_rss_mib(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    wall = max(counter.last - (counter.first or counter.last), 1e-9)
    # after the first batch: the interpreter's start (imports, ~0.5 CPU-s) left out
    steady = (cpu - first[0], (counter.lines - first[1]) / max(counter.lines, 1)) if first else None
    return {"complete": complete, "lines": counter.lines, "expected_lines": total,
            "wall_secs": round(wall, 3), "cpu_secs": round(cpu, 3), "peak_rss_mib": round(rss, 1),
            "_steady": steady}


def rates(result: dict[str, Any], file_bytes: int) -> dict[str, Any]:
    mib = file_bytes / (1024 * 1024)
    result["mib_per_s"] = round(mib / result["wall_secs"], 1)
    result["lines_per_s"] = round(result["lines"] / result["wall_secs"])
    result["mib_per_cpu_s"] = round(mib / result["cpu_secs"], 1) if result["cpu_secs"] else None
    steady = result.pop("_steady", None)
    if steady and steady[0] > 0:
        # the file's share after the first batch over the CPU spent on it
        result["steady_mib_per_cpu_s"] = round(mib * steady[1] / steady[0], 1)
    return result


# -- shippers --------------------------------------------------------------------------------------

def run_agent(work: Path, log: Path, kind: str, url: str, counter: Counter, total: int,
              done: Any, compression: str, api_key: str | None = None,
              tree: Path = ROOT) -> dict[str, Any]:
    import yaml

    data = work / f"agent-data-{kind}-{time.monotonic_ns()}"
    source: dict[str, Any] = {"type": "file", "include": [str(log)], "poll_interval_secs": 0.05}
    if kind == "nginx":
        source["parser"] = {"type": "nginx", "format": "combined"}
    elif kind == "nginx_json":
        source["parser"] = {"type": "nginx", "format": "json"}
    elif kind == "json":
        source["parser"] = "json"
    cfg = {"data_dir": str(data), "metrics": {"port": 0}, "sources": {"bench": source},
           "sinks": {"out": {"type": "logharbor", "url": url, "compression": compression,
                             "api_key": api_key, "batch": {"timeout_secs": 0.2}}}}
    path = work / f"agent-{kind}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    proc = subprocess.Popen([*PIN, sys.executable, "-m", "logharbor.agent", "-c", str(path)],
                            stdout=subprocess.DEVNULL, stderr=open(work / "agent.log", "ab"), cwd=tree,
                            env=env)
    return run_until(proc, done, counter, total, timeout=600)


def run_rsyslog(work: Path, log: Path, port: int, counter: Counter, total: int) -> dict[str, Any] | None:
    rsyslogd = shutil.which("rsyslogd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if rsyslogd is None:
        return None
    state = work / f"rsyslog-{time.monotonic_ns()}"
    state.mkdir()
    conf = state / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{state}")
module(load="imfile" mode="polling" PollingInterval="1")
template(name="raw" type="string" string="%msg%\\n")
input(type="imfile" File="{log}" Tag="bench" freshStartTail="off" ruleset="fwd")
ruleset(name="fwd" queue.type="LinkedList" queue.size="100000") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" template="raw"
         queue.type="LinkedList" queue.size="100000")
}}
""")
    proc = subprocess.Popen([*PIN, rsyslogd, "-n", "-f", str(conf), "-i", str(state / "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run_until(proc, lambda: counter.lines >= total, counter, total, timeout=600)


def start_server(work: Path) -> tuple[subprocess.Popen[bytes], str, str | None]:
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir",
                             str(work / "server-data"), "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.DEVNULL,
                            stderr=open(work / "server.log", "ab"), cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    key = work / "server-data" / "admin.key"
                    return proc, url, key.read_text().strip() if key.exists() else None
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def server_rows(url: str, key: str | None) -> int:
    """Records the server acknowledged (after its WAL fsync), all protocols."""
    import urllib.request

    total = 0.0
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(url + "/metrics", headers=headers)  # noqa: S310 - loopback
    with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - loopback
        for line in r.read().decode().splitlines():
            if line.startswith("logharbor_records_accepted_total"):
                total += float(line.split()[-1])
    return int(total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbytes", type=int, default=100)
    ap.add_argument("--kinds", default="raw,nginx,json")
    ap.add_argument("--compression", default="zstd", choices=["zstd", "gzip", "none"])
    ap.add_argument("--server", action="store_true", help="also ship raw lines to a real logharbor server")
    ap.add_argument("--no-rsyslog", action="store_true")
    ap.add_argument("--pin", action="store_true",
                    help="run each shipper on CPU 0 and the receivers (and server) on CPU 1: one core each")
    ap.add_argument("--compare-tree", action="append", default=[], type=Path, metavar="DIR",
                    help="also run the agent of this source tree on the same file (repeatable)")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each tree's agent, interleaved")
    args = ap.parse_args()
    trees = [ROOT, *(t.resolve() for t in args.compare_tree)]
    if args.pin:
        os.sched_setaffinity(0, {1})
        PIN[:] = ["taskset", "-c", "0"]
    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    try:
        for kind in args.kinds.split(","):
            log = work / f"{kind}.log"
            total = generate(log, kind, args.mbytes)
            size = log.stat().st_size
            common = {"bench": "agent", "input": kind, "mbytes": round(size / 2**20, 1),
                      "lines_in_file": total, "pinned_one_core": args.pin}
            for rnd in range(args.rounds):
                for tree in trees:
                    counter = Counter()
                    server, port = http_receiver(counter)
                    res = run_agent(work, log, kind, f"http://127.0.0.1:{port}", counter, total,
                                    lambda c=counter, t=total: c.lines >= t, args.compression, tree=tree)
                    server.shutdown()
                    server.server_close()
                    print(json.dumps({**common, "shipper": "logharbor-agent",
                                      "to": "counting receiver (http)",
                                      "compression": args.compression, "tree": str(tree), "round": rnd,
                                      "load_avg": os.getloadavg()[0], **rates(res, size)}), flush=True)
            if kind == "raw" and not args.no_rsyslog:
                counter = Counter()
                sock, port = tcp_receiver(counter)
                res_r = run_rsyslog(work, log, port, counter, total)
                sock.close()
                if res_r is not None:
                    print(json.dumps({**common, "shipper": "rsyslog imfile+omfwd",
                                      "to": "counting receiver (tcp)", **rates(res_r, size)}), flush=True)
            if kind == "raw" and args.server:
                proc, url, key = start_server(work)
                try:
                    before = server_rows(url, key)
                    counter = Counter()
                    stop = threading.Event()

                    def watch(c: Counter = counter, u: str = url, b: int = before,
                              halt: threading.Event = stop, k: str | None = key) -> None:
                        seen = 0
                        while not halt.is_set():
                            n = server_rows(u, k) - b
                            if n > seen:
                                c.add(n - seen, 0)
                                seen = n
                            time.sleep(0.05)

                    threading.Thread(target=watch, daemon=True).start()
                    res_s = run_agent(work, log, kind, url, counter, total,
                                      lambda c=counter, t=total: c.lines >= t, args.compression, key)
                    stop.set()
                    print(json.dumps({**common, "shipper": "logharbor-agent", "to": "logharbor server",
                                      "compression": args.compression, **rates(res_s, size)}), flush=True)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
            log.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
