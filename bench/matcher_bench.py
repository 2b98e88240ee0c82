"""Matcher quality and speed against two baselines, in one process.

Run: ``python -m bench matcher``. Knowledge bases: the shipped one, and synthetic ones of 1,000
and 10,000 entries made from it (each real entry cloned with perturbed example questions and
keywords, so scores stay meaningful: a match counts as right when it lands on a clone of the
right topic). Messages: ``../shared/eval/dev.jsonl``.

Baselines: rapidfuzz ``process.extractOne`` with ``WRatio`` over the example questions, and BM25
(bm25s) over the same text with the same Chinese handling (our normalisation, Chinese character
bigrams plus unigrams, English words). Each baseline rejects below a score cut-off; we report it
at the cut-off that is best for it on this set (its most favourable setting).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rapidfuzz import fuzz, process

from bench.common import DEV_SET, Results, Stopwatch, median, percentile
from quickresponse.knowledge import Entry, KnowledgeBase, load_knowledge_base
from quickresponse.matcher import Matcher
from quickresponse.settings import DEFAULT_KB_DIR, Settings
from quickresponse.textnorm import normalise

Predict = Callable[[str], "tuple[str | None, float]"]
_CJK = re.compile(r"[\u4e00-\u9fff]")


def load_messages(path: Path = DEV_SET) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def base_id(entry_id: str | None) -> str | None:
    return entry_id.split("--")[0] if entry_id else None


def _perturb(text: str, rng: random.Random) -> str:
    chars = list(text)
    if len(chars) > 4:
        i = rng.randrange(len(chars) - 1)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    if len(chars) > 8 and rng.random() < 0.5:
        del chars[rng.randrange(len(chars))]
    return "".join(chars)


def synthetic_kb(real: KnowledgeBase, size: int, seed: int = 7) -> KnowledgeBase:
    """``size`` entries: the real ones, then perturbed clones of them in turn."""
    rng = random.Random(seed)
    base = list(real)
    entries: dict[str, Entry] = {e.id: e for e in base}
    k = 0
    while len(entries) < size:
        src = base[k % len(base)]
        k += 1
        clone = replace(
            src, id=f"{src.id}--{k}", related=(),
            examples={lang: tuple(_perturb(x, rng) for x in xs)
                      for lang, xs in src.examples.items()},
            keywords={lang: tuple(_perturb(x, rng) for x in xs)
                      for lang, xs in src.keywords.items()},
        )
        entries[clone.id] = clone
    return KnowledgeBase(entries, real.categories, real.directory)


def _docs(kb: KnowledgeBase) -> tuple[list[str], list[str]]:
    texts, owners = [], []
    for entry in kb:
        for lang in ("zh", "en"):
            for text in (entry.title[lang], *entry.examples[lang]):
                texts.append(normalise(text))
                owners.append(entry.id)
    return texts, owners


def rapidfuzz_baseline(kb: KnowledgeBase, cutoff: float) -> Predict:
    texts, owners = _docs(kb)

    def predict(message: str) -> tuple[str | None, float]:
        best = process.extractOne(normalise(message), texts, scorer=fuzz.WRatio)
        if best is None or best[1] < cutoff:
            return None, best[1] if best else 0.0
        return owners[best[2]], best[1]

    return predict


def tokens(text: str) -> list[str]:
    """Same Chinese handling for BM25: characters and bigrams for Chinese, words for English."""
    out: list[str] = []
    for chunk in normalise(text).split():
        if _CJK.search(chunk):
            out.extend(chunk)
            out.extend(chunk[i:i + 2] for i in range(len(chunk) - 1))
        else:
            out.append(chunk)
    return out or ["<empty>"]


def bm25_baseline(kb: KnowledgeBase, cutoff: float) -> Predict:
    import bm25s

    texts, owners = _docs(kb)
    retriever = bm25s.BM25()
    retriever.index([tokens(t) for t in texts], show_progress=False)

    def predict(message: str) -> tuple[str | None, float]:
        docs, scores = retriever.retrieve([tokens(message)], k=1, show_progress=False,
                                          n_threads=1)
        score = float(scores[0][0])
        if score < cutoff:
            return None, score
        return owners[int(docs[0][0])], score

    return predict


def ours(matcher: Matcher) -> Predict:
    def predict(message: str) -> tuple[str | None, float]:
        result = matcher.match(message)
        return result.entry_id, result.score

    return predict


def score(predict: Predict, messages: list[dict], passes: int = 3) -> dict[str, float]:
    latencies: list[float] = []
    right = in_scope = rejected = out_scope = 0
    for n in range(passes):
        for m in messages:
            t0 = time.perf_counter()
            got, _ = predict(m["q"])
            latencies.append((time.perf_counter() - t0) * 1000)
            if n:
                continue
            if m["id"] is None:
                out_scope += 1
                rejected += got is None
            else:
                in_scope += 1
                right += base_id(got) == m["id"]
    return {
        "top1": right / in_scope, "oos_rejected": rejected / out_scope if out_scope else 1.0,
        "p50_ms": median(latencies), "p99_ms": percentile(latencies, 99),
    }


def best_cutoff(make: Callable[[float], Predict], cutoffs: list[float],
                messages: list[dict]) -> tuple[float, dict[str, float]]:
    best: tuple[float, dict[str, float]] | None = None
    for cutoff in cutoffs:
        figures = score(make(cutoff), messages, passes=1)
        if best is None or (figures["top1"] + figures["oos_rejected"] >
                            best[1]["top1"] + best[1]["oos_rejected"]):
            best = (cutoff, figures)
    assert best is not None
    return best


def run(results: Results, *, quick: bool = False) -> None:
    sizes = (0, 1000) if quick else (0, 1000, 10000)
    messages = load_messages()
    real = load_knowledge_base(DEFAULT_KB_DIR)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for size in sizes:
        kb = real if size == 0 else synthetic_kb(real, size)
        label = f"{len(kb)} entries"
        with Stopwatch() as build:
            matcher = Matcher(kb, answer_threshold=settings.answer_threshold,
                              suggest_threshold=settings.suggest_threshold)
        figures = score(ours(matcher), messages)
        p99_target = 2.0 if size == 0 else 20.0 if size >= 10000 else None
        target = f"p99 ≤ {p99_target} ms" if p99_target else ""
        met = figures["p99_ms"] <= p99_target if p99_target else None
        if size >= 10000:
            target += "; build < 5 s"
            met = bool(met) and build.seconds < 5
        results.add("matcher", f"QuickResponse, {label}", target, met,
                    build_s=build.seconds, **figures)

        with Stopwatch() as build:
            rapidfuzz_baseline(kb, 0)
        cutoff, _ = best_cutoff(lambda c, kb=kb: rapidfuzz_baseline(kb, c),
                                [0, 60, 70, 75, 80, 85, 90], messages)
        figures_rf = score(rapidfuzz_baseline(kb, cutoff), messages)
        results.add("matcher", f"rapidfuzz WRatio (cut-off {cutoff:g}), {label}",
                    build_s=build.seconds, **figures_rf)

        with Stopwatch() as build:
            bm25_baseline(kb, 0)
        cutoff, _ = best_cutoff(lambda c, kb=kb: bm25_baseline(kb, c),
                                [0, 2, 4, 6, 8, 10, 12, 15], messages)
        figures_bm = score(bm25_baseline(kb, cutoff), messages)
        results.add("matcher", f"BM25 bm25s (cut-off {cutoff:g}), {label}",
                    build_s=build.seconds, **figures_bm)
        beats = (figures["top1"] > figures_rf["top1"] and figures["top1"] > figures_bm["top1"])
        results.add("matcher", f"beats both baselines on top-1, {label}",
                    "QuickResponse > both", beats,
                    ours=figures["top1"], rapidfuzz=figures_rf["top1"], bm25=figures_bm["top1"])
