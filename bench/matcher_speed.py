"""Time the matcher: build time and per-message latency (p50/p99) on the real knowledge base and
on a synthetic one scaled to N entries.

    .venv/bin/python bench/matcher_speed.py            # real knowledge base, 1,000 matches
    .venv/bin/python bench/matcher_speed.py 10000      # also a 10,000-entry knowledge base

The synthetic entries are the real ones repeated with distinct ids and distinct extra words in
their examples and keywords, so the index grows the way a larger knowledge base would.
"""

from __future__ import annotations

import dataclasses
import json
import random
import statistics
import sys
import time

from quickresponse.knowledge import KnowledgeBase, load_knowledge_base
from quickresponse.matcher import Matcher
from quickresponse.settings import DEFAULT_KB_DIR, PROJECT_ROOT

MESSAGES = PROJECT_ROOT / "tests" / "data" / "heldout_own.jsonl"


def _messages() -> list[str]:
    rows = [json.loads(line)["q"] for line in MESSAGES.read_text(encoding="utf-8").splitlines()]
    rows += ["", "hi", "x" * 4000, "着火了 " * 200, "what should I do " * 50]
    return rows


def _scaled(kb: KnowledgeBase, n: int, seed: int = 1) -> KnowledgeBase:
    rng = random.Random(seed)
    base = list(kb)
    hanzi = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    entries = {}
    for i in range(n):
        e = base[i % len(base)]
        tag_zh = "".join(rng.choice(hanzi) for _ in range(2))
        tag_en = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7))
        examples = {lang: tuple(f"{x} {tag_zh if lang == 'zh' else tag_en}" for x in xs)
                    for lang, xs in e.examples.items()}
        keywords = {lang: (*xs, tag_zh if lang == "zh" else tag_en)
                    for lang, xs in e.keywords.items()}
        entries[f"{e.id}-{i}"] = dataclasses.replace(
            e, id=f"{e.id}-{i}", examples=examples, keywords=keywords, related=())
    return KnowledgeBase(entries, kb.categories, kb.directory)


def _time(kb: KnowledgeBase, label: str, rounds: int = 1000) -> None:
    start = time.perf_counter()
    matcher = Matcher(kb)
    built = time.perf_counter() - start
    messages = _messages()
    for text in messages[:20]:  # warm caches
        matcher.match(text)
    latencies = []
    for i in range(rounds):
        text = messages[i % len(messages)]
        t0 = time.perf_counter()
        matcher.match(text)
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{label}: {len(kb)} entries, built in {built:.1f} s; {rounds} matches: "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms")


def main(argv: list[str]) -> int:
    kb = load_knowledge_base(DEFAULT_KB_DIR)
    _time(kb, "real knowledge base")
    for n in (int(a) for a in argv):
        _time(_scaled(kb, n), f"synthetic x{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
