"""Template accuracy and speed on loghub-2k, logharbor and drain3 side by side (JSON lines).

    python bench/patterns_accuracy.py /tmp/loghub2k [--rounds 3] [--shuffle 7] [--only Proxifier]

``DIR`` holds the 16 labelled files of loghub-2k (logpai/loghub on GitHub: each system's folder has
``<System>_2k.log_structured.csv``; copy them into one folder, do not commit them), or the labelled
corpora ``bench/patterns_corpora.py DIR`` generates in the same format (every such file in ``DIR``
is read when it holds none of loghub's). Every message
of a data set is one service's; the metric is grouping accuracy (GA, Zhu et al., ICSE-SEIP 2019):
the share of messages whose predicted group holds exactly the messages of their labelled event.

For each data set, one line per parser:

- ``logharbor``: the masked-template id of every message as ingest computes it
  (``store.rows`` with its caches), then the miner as the batcher runs it (each batch of 2,000
  rows: its distinct ids, the new ones learned); the group id of each message is what
  ``| patterns`` shows. ``msgs_per_s`` is mask + mine; ``server_msgs_per_s`` is the same messages
  as whole rows through ``encode_row`` and ``PatternMiner.process`` (journal included), whose
  partition must be the same (checked).
- ``drain3`` (0.9.11, when installed: ``pip install drain3==0.9.11``; a bench-only dependency):
  its defaults, and with the two masks of its README (IPs and integers).

``--shuffle SEED`` feeds every parser the messages in a shuffled order: logharbor's partition and
ids must not change (checked: ``same_as_unshuffled``). Speeds are the best of ``--rounds`` (CPU
time of this process, so other load on the machine weighs less), every cache emptied per round.
The last line averages GA over the data sets and compares the speeds.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from logharbor import patterns as masking  # noqa: E402 - after the path tweak
from logharbor.miner import Miner  # noqa: E402
from logharbor.record import normalize  # noqa: E402
from logharbor.server.engine.mining import PatternMiner  # noqa: E402
from logharbor.server.engine.store import rows as rows_mod  # noqa: E402

SYSTEMS = ("Android Apache BGL HDFS HPC Hadoop HealthApp Linux Mac OpenSSH OpenStack Proxifier Spark "
           "Thunderbird Windows Zookeeper").split()
BATCH = 2000
_SUFFIX = "_2k.log_structured.csv"
README_MASKS = [  # drain3's README, "Masking"
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
]


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def load(folder: Path, system: str) -> tuple[list[str], list[str]]:
    """(messages, labelled event ids) of one data set."""
    with open(folder / f"{system}{_SUFFIX}", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def grouping_accuracy(predicted: list[str], truth: list[str]) -> float:
    """Messages whose predicted group is exactly their labelled event's messages, over all."""
    by_pred: dict[str, set[int]] = {}
    by_true: dict[str, set[int]] = {}
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        by_pred.setdefault(p, set()).add(i)
        by_true.setdefault(t, set()).add(i)
    right = 0
    for members in by_true.values():
        groups = {predicted[i] for i in members}
        if len(groups) == 1 and by_pred[groups.pop()] == members:
            right += len(members)
    return right / len(predicted)


def _fresh_caches() -> None:
    masking._CACHE.clear()
    masking._MASKED.clear()
    masking._IDS.clear()
    rows_mod._SIDS.clear()


def logharbor_ids(service: str, messages: list[str]) -> list[str]:
    """Each message's group id: ids as ingest computes them, mined batch by batch as the batcher does."""
    _fresh_caches()
    miner = Miner()
    sid = rows_mod._sid
    ids = [sid(None, service, m) for m in messages]
    for start in range(0, len(ids), BATCH):
        first: dict[str, str] = {}
        for s, m in zip(ids[start:start + BATCH], messages[start:start + BATCH], strict=True):
            first.setdefault(s, m)
        for s, m in first.items():
            if miner.resolve(s) is None:
                miner.add("", service, s, masking.template_of(m).split(), sample=m[:256])
        miner.regroup()
    return [miner.group_of("", service, s) or s for s in ids]


def server_path_ids(service: str, messages: list[str], folder: Path) -> list[str]:
    """The same through whole rows: ``encode_row`` then ``PatternMiner.process`` per batch."""
    _fresh_caches()
    pm = PatternMiner(folder)
    pm.load()
    ids: list[str] = []
    now = time.time_ns()
    for start in range(0, len(messages), BATCH):
        rows = [rows_mod.encode_row(normalize({"service": service, "message": m}, received_ns=now))
                for m in messages[start:start + BATCH]]
        payload, _ = pm.process(b"\n".join(rows))
        pm.commit()
        ids.extend(orjson.loads(r)["pattern_id"] for r in payload.split(b"\n"))
    out = [pm.miner.group_of("", service, s) or s for s in ids]
    pm.close()
    return out


def drain3_ids(messages: list[str], masks: bool) -> list[str]:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    if masks:
        config.masking_instructions = [MaskingInstruction(p, name) for p, name in README_MASKS]
    miner = TemplateMiner(config=config)
    return [str(miner.add_log_message(m)["cluster_id"]) for m in messages]


def best_rate(fn: Callable[[], list[str]], n: int, rounds: int) -> tuple[list[str], float]:
    best = 0.0
    result: list[str] = []
    for _ in range(rounds):
        started = time.process_time()
        result = fn()
        elapsed = max(time.process_time() - started, 1e-9)
        best = max(best, n / elapsed)
    return result, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="the folder holding <System>_2k.log_structured.csv")
    ap.add_argument("--rounds", type=int, default=3, help="speed: best of this many runs")
    ap.add_argument("--shuffle", type=int, default=None, help="shuffle the messages with this seed")
    ap.add_argument("--only", nargs="*", default=None, help="these data sets only")
    args = ap.parse_args()
    try:
        import drain3  # noqa: F401
        have_drain3 = True
    except ImportError:
        have_drain3 = False
    emit(stage="machine", cpus=os.cpu_count(), load=[round(x, 2) for x in os.getloadavg()],
         python=platform.python_version(), drain3=have_drain3, shuffle=args.shuffle)
    totals: dict[str, list[float]] = {}
    work = Path(tempfile.mkdtemp(prefix="lh-bench-accuracy-"))
    found = sorted(p.name.removesuffix(_SUFFIX) for p in args.folder.glob(f"*{_SUFFIX}"))
    systems = args.only or [s for s in SYSTEMS if s in found] or found
    if not systems:
        sys.exit(f"no *{_SUFFIX} in {args.folder} (loghub-2k, or bench/patterns_corpora.py DIR)")
    for system in systems:
        messages, truth = load(args.folder, system)
        n = len(messages)
        plain = logharbor_ids(system, messages)
        order = list(range(n))
        if args.shuffle is not None:
            random.Random(args.shuffle).shuffle(order)
            messages = [messages[i] for i in order]
            truth = [truth[i] for i in order]
        ours, rate = best_rate(lambda m=messages, s=system: logharbor_ids(s, m), n, args.rounds)
        server, server_rate = best_rate(
            lambda m=messages, s=system: server_path_ids(s, m, work / f"{s}-{time.time_ns()}"),
            n, 1)
        assert server == ours, f"{system}: the server path grouped differently"
        line = {"dataset": system, "parser": "logharbor", "ga": round(grouping_accuracy(ours, truth), 4),
                "groups": len(set(ours)), "true_groups": len(set(truth)), "msgs_per_s": round(rate),
                "server_msgs_per_s": round(server_rate)}
        if args.shuffle is not None:
            unshuffled = [plain[i] for i in order]
            line["same_as_unshuffled"] = unshuffled == ours
        emit(**line)
        totals.setdefault("logharbor", []).append(line["ga"])  # type: ignore[arg-type]
        totals.setdefault("logharbor_rate", []).append(rate)
        if have_drain3:
            for name, masks in (("drain3", False), ("drain3+masks", True)):
                ids, d_rate = best_rate(lambda m=messages, k=masks: drain3_ids(m, k), n, args.rounds)
                ga = round(grouping_accuracy(ids, truth), 4)
                emit(dataset=system, parser=name, ga=ga, groups=len(set(ids)), true_groups=len(set(truth)),
                     msgs_per_s=round(d_rate))
                totals.setdefault(name, []).append(ga)
                totals.setdefault(name + "_rate", []).append(d_rate)
    summary: dict[str, object] = {"stage": "summary", "datasets": len(totals["logharbor"])}
    for name in ("logharbor", "drain3", "drain3+masks"):
        if name in totals:
            summary[f"{name}_ga"] = round(sum(totals[name]) / len(totals[name]), 4)
            summary[f"{name}_min_ga"] = min(totals[name])
            rates = totals[name + "_rate"]
            summary[f"{name}_msgs_per_s"] = round(len(rates) / sum(1 / r for r in rates))  # harmonic
    if have_drain3:
        summary["speed_vs_drain3_masks"] = round(
            summary["logharbor_msgs_per_s"] / summary["drain3+masks_msgs_per_s"], 2)  # type: ignore[operator]
    summary["load_after"] = [round(x, 2) for x in os.getloadavg()]
    emit(**summary)


if __name__ == "__main__":
    main()
