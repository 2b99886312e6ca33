"""Where the agent's CPU goes per line, step by step, in one process. Prints JSON lines.

The per-chunk work of a file source (``agent/sources/tailed.split_lines``, the parse step or the
compiled NGINX chunk path, ``agent/pipeline.encode``, the sink's zstd) over the same generated
lines as ``bench/agent.py`` (``--kinds nginx,nginx_json,json,raw``), cut into the agent's 256 KiB
blocks, timed with this process's CPU clock, best of ``--rounds``. For the NGINX text formats
both the Python path (``parse`` + ``encode``) and the compiled chunk path
(``formats/nginx_chunk.py``, when built) are timed, so their µs per line sit side by side.
What is not here — reading the file, acknowledgements, the HTTP POST, the delivery threads and
the interpreter's start — is the difference to ``bench/agent.py``'s CPU seconds.

Run: PYTHONPATH=src python bench/agent_steps.py [--lines 60000] [--kinds nginx,nginx_json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent import make_line
from logharbor.agent.pipeline import _TIME_KEYS, _fused_step, _parse_step, encode
from logharbor.agent.sources.tailed import split_lines
from logharbor.agent.types import Chunk
from logharbor.formats.base import build_parser
from logharbor.formats.nginx_chunk import chunk_encoder

PARSERS = {"nginx": ("nginx", {"format": "combined"}), "nginx_json": ("nginx", {"format": "json"}),
           "json": ("json", {}), "raw": None}
META = {"source": "file", "host": "bench-host", "file": "/var/log/nginx/access.log"}


def blocks_of(kind: str, lines: int) -> tuple[list[bytes], int]:
    rng = random.Random(7)
    data = ("\n".join(make_line(kind, i, rng) for i in range(lines)) + "\n").encode()
    out, pos = [], 0
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + 256 * 1024) + 1
        out.append(data[pos:end])
        pos = end
    return out, len(data)


def measure(blocks: list[bytes], step, rounds: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    zstd = zstandard.ZstdCompressor(level=1)
    clock = time.process_time
    best: dict[str, float] = {}
    for _ in range(rounds):
        spent = dict.fromkeys(("split", "parse", "encode", "zstd"), 0.0)
        for body in blocks:
            t0 = clock()
            lines = split_lines(body)
            t1 = clock()
            chunk = Chunk(lines, None, len(body), dict(META), None, time.time_ns())  # type: ignore[arg-type]
            if step is not None:
                chunk = step(chunk)
            t2 = clock()
            item = encode(chunk)
            t3 = clock()
            zstd.compress(item.payload)
            t4 = clock()
            spent["split"] += t1 - t0
            spent["parse"] += t2 - t1
            spent["encode"] += t3 - t2
            spent["zstd"] += t4 - t3
        for k, v in spent.items():
            best[k] = min(best.get(k, v), v)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=60_000)
    ap.add_argument("--kinds", default="nginx,nginx_json")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for kind in args.kinds.split(","):
        blocks, size = blocks_of(kind, args.lines)
        spec = PARSERS[kind]
        paths: list[tuple[str, object]] = [("python", None)]
        if spec is not None:
            parser = build_parser(spec[0], **spec[1])
            paths = [("python", _parse_step(parser))]
            encoder = chunk_encoder(parser, _TIME_KEYS)
            if encoder is not None:
                paths.append(("compiled", _fused_step(parser, encoder)))
        for path, step in paths:
            best = measure(blocks, step, args.rounds)
            total = sum(best.values())
            print(json.dumps({
                "bench": "agent_steps", "input": kind, "path": path, "lines": args.lines,
                "bytes_per_line": round(size / args.lines, 1),
                **{f"{k}_us_per_line": round(v / args.lines * 1e6, 2) for k, v in best.items()},
                "total_us_per_line": round(total / args.lines * 1e6, 2),
                "mib_per_cpu_s": round(size / total / 2**20, 1), "load_avg": os.getloadavg()[0]}), flush=True)


if __name__ == "__main__":
    main()
