"""The matcher's text features, computed for many texts at once with numpy.

A text is described by weighted features (see :mod:`quickresponse.matcher` for why):

* Chinese: character 1-, 2- and 3-grams within runs of Chinese characters, and toneless pinyin
  bigrams; a 2- or 3-gram that is not a dictionary word weighs :data:`NON_WORD`;
* English: stemmed content words and word bigrams.

Every feature is one 64-bit integer: its kind in the top bits (:data:`C1` ... :data:`W2`), then
what it is made of: 16 bits per Chinese character (all matched characters are in the Basic
Multilingual Plane), 20 bits per pinyin reading id, 28 bits per English word id. Integers let a
knowledge base of ten thousand entries be featurised, counted and indexed in a few array
operations instead of millions of dictionary updates of strings; a message goes through the same
code, so the index and the message cannot disagree on what a feature is.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise, product

import numpy as np

from quickresponse.textnorm import (
    ZH_STOPWORDS,
    content_stem,
    gram_code,
    is_cjk_code,
    pinyin,
    zh_word_frequencies,
)

KIND_SHIFT = 58
C1, C2, C3, PY, W, W2 = 1, 2, 3, 4, 5, 6
# Relative weight of each kind of feature (multiplied by its IDF), indexed by kind.
KIND_WEIGHT = np.array([0.0, 1.0, 1.0, 0.6, 0.45, 1.0, 0.5])
# Weight of a Chinese n-gram that is not a dictionary word, relative to one that is: two
# characters that make a word carry meaning, a pair straddling two words (水已 in 水已经) is
# mostly noise.
NON_WORD = 0.35
READING_BITS = 20
WORD_BITS = 28

# The parts of each kind of feature, most significant first: (bits, shift).
_FIELDS = {
    C1: ((16, 0),), C2: ((16, 16), (16, 0)), C3: ((16, 32), (16, 16), (16, 0)),
    PY: ((READING_BITS, READING_BITS), (READING_BITS, 0)), W: ((WORD_BITS, 0),),
    W2: ((WORD_BITS, WORD_BITS), (WORD_BITS, 0)),
}

_STOP_CHAR = np.zeros(0x10000, dtype=bool)
for _word in ZH_STOPWORDS:
    if len(_word) == 1:
        _STOP_CHAR[ord(_word)] = True
_STOP_GRAMS = {n: np.array(sorted(gram_code(w) for w in ZH_STOPWORDS if len(w) == n),
                           dtype=np.int64) for n in (2, 3)}

# The Chinese characters matched (textnorm's cjk_runs), first and last.
_CJK_FIRST, _CJK_LAST = 0x3400, 0xFAFF


def kind_of(keys: np.ndarray) -> np.ndarray:
    return keys >> KIND_SHIFT


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values: ``numpy.unique`` by sorting. (numpy 2.3+ hashes instead,
    which is tens of times slower on millions of 64-bit integers.)"""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def member(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in ``sorted_values`` (a binary search each: for the small
    arrays of one message, much cheaper than :func:`numpy.isin`)."""
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def chinese_key(gram: str) -> int:
    """The feature of one to three Chinese characters (c1, c2 or c3)."""
    return (len(gram) << KIND_SHIFT) | gram_code(gram)


def word_key(word_id: int) -> int:
    return (W << KIND_SHIFT) | word_id


def bigram_key(first: int, second: int) -> int:
    return (W2 << KIND_SHIFT) | (first << WORD_BITS) | second


@dataclass(frozen=True)
class Features:
    """Features of several texts: parallel arrays of text index, feature and weight (0-1)."""

    doc: np.ndarray
    key: np.ndarray
    value: np.ndarray

    @staticmethod
    def concat(parts: Sequence[Features]) -> Features:
        return Features(np.concatenate([p.doc for p in parts]),
                        np.concatenate([p.key for p in parts]),
                        np.concatenate([p.value for p in parts]))

    def merged(self) -> Features:
        """One row per (text, feature), with the largest weight it was seen with, ordered by
        feature and then by text.

        Millions of rows are sorted as single unsigned integers, one kind of feature at a time:
        the feature's parts (characters, readings, words) narrowed to the bits their values
        need, then the text, then the weight's rank. numpy sorts those several times faster
        than it finds the order of the 64-bit features themselves.
        """
        if not len(self.key):
            return self
        kinds = kind_of(self.key)
        doc_bits = max(int(self.doc.max()).bit_length(), 1)
        parts = []
        for kind in distinct(kinds).tolist():
            rows = np.flatnonzero(kinds == kind)
            part = Features(self.doc[rows], self.key[rows], self.value[rows])
            packed = part._merged_packed(kind, doc_bits)
            parts.append(packed if packed is not None else part._merged_by_lexsort())
        return Features.concat(parts)

    def _merged_packed(self, kind: int, doc_bits: int) -> Features | None:
        """:meth:`merged` for rows of one kind, or None when they do not fit in 64 bits."""
        levels = distinct(self.value)
        rank_bits = (len(levels) - 1).bit_length()
        fields = []
        for width, shift in _FIELDS[kind]:
            field = (self.key >> shift) & ((1 << width) - 1)
            low = int(field.min())
            fields.append((field - low, low, max(int(field.max()) - low, 1).bit_length(), shift))
        if sum(f[2] for f in fields) + doc_bits + rank_bits > 64:
            return None
        packed = np.zeros(len(self.key), dtype=np.uint64)
        for field, _, bits, _ in fields:
            packed = (packed << np.uint64(bits)) | field.astype(np.uint64)
        packed = (((packed << np.uint64(doc_bits)) | self.doc.astype(np.uint64))
                  << np.uint64(rank_bits)) | np.searchsorted(levels, self.value).astype(np.uint64)
        packed.sort()
        # The last of each (feature, text) group has the highest weight rank.
        group = packed >> np.uint64(rank_bits)
        packed = packed[np.flatnonzero(np.concatenate((group[1:] != group[:-1], [True])))]
        value = levels[(packed & np.uint64((1 << rank_bits) - 1)).astype(np.int64)]
        packed >>= np.uint64(rank_bits)
        doc = (packed & np.uint64((1 << doc_bits) - 1)).astype(np.int64)
        packed >>= np.uint64(doc_bits)
        key = np.full(len(packed), kind << KIND_SHIFT, dtype=np.int64)
        for _, low, bits, shift in reversed(fields):
            key |= ((packed & np.uint64((1 << bits) - 1)).astype(np.int64) + low) << shift
            packed >>= np.uint64(bits)
        return Features(doc, key, value)

    def _merged_by_lexsort(self) -> Features:
        order = np.lexsort((self.doc, self.key))
        doc, key, value = self.doc[order], self.key[order], self.value[order]
        starts = np.flatnonzero(np.concatenate(
            ([True], (doc[1:] != doc[:-1]) | (key[1:] != key[:-1]))))
        return Features(doc[starts], key[starts], np.maximum.reduceat(value, starts))


# ---- Chinese -----------------------------------------------------------------------------------

class _Readings:
    """Pinyin readings as small integers, shared by every matcher in the process."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._lock = threading.Lock()
        # Per Chinese character (offset from the first one): first reading id, second reading
        # id or -1, number of readings; -2 for a character not looked up yet.
        self._table = np.full((_CJK_LAST + 1 - _CJK_FIRST, 3), -2, dtype=np.int64)
        self._of_char: dict[str, tuple[int, ...]] = {}

    def reading_id(self, reading: str) -> int:
        found = self._ids.get(reading)
        if found is None:
            # A matcher may be built in a worker thread while another answers messages: two
            # new readings must never get the same number.
            with self._lock:
                found = self._ids.setdefault(reading, len(self._ids))
        return found

    def of_char(self, char: str) -> tuple[int, ...]:
        """The reading ids of one character (one or two)."""
        found = self._of_char.get(char)
        if found is None:
            found = self._of_char[char] = tuple(self.reading_id(r) for r in pinyin(char))
        return found

    def of(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each Chinese character code: first reading id, second reading id (or -1), number
        of readings."""
        rows = codes - _CJK_FIRST
        new = distinct(rows[self._table[rows, 0] == -2])
        for row in new.tolist():
            readings = [self.reading_id(r) for r in pinyin(chr(row + _CJK_FIRST))]
            self._table[row] = (readings[0], readings[1] if len(readings) > 1 else -1,
                                len(readings))
        found = self._table[rows]
        return found[:, 0], found[:, 1], found[:, 2]

    def sound_keys(self, gram: str) -> list[tuple[int, ...]]:
        """Every reading of ``gram`` (one reading id per character), the first character's
        readings outermost."""
        return list(product(*([self.reading_id(r) for r in pinyin(ch)] for ch in gram)))


def pack_sound(key: tuple[int, ...]) -> int:
    """A reading id sequence of up to three characters as one integer."""
    code = 0
    for reading in key:
        code = (code << READING_BITS) | reading
    return code


READINGS = _Readings()


def chinese_features(joined: str) -> Features:
    """The Chinese features of normalised texts joined by newlines (text i is the i-th line).

    A knowledge base repeats the same runs of Chinese characters in many texts (a clause, a
    keyword); when at most half of them are distinct, each distinct run is featurised once
    and its rows are copied to every text it is in.
    """
    points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    doc_of = np.cumsum(points == 10)
    chinese = is_cjk_code(points)
    starts = np.flatnonzero(chinese & ~np.concatenate(([False], chinese[:-1])))
    if not len(starts):
        return _EMPTY
    if len(starts) >= _RUNS_WORTH_SHARING:
        ends = np.flatnonzero(chinese & ~np.concatenate((chinese[1:], [False]))) + 1
        runs = [joined[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        distinct_runs = dict.fromkeys(runs)
        if 2 * len(distinct_runs) <= len(runs):
            return _shared_run_features(doc_of[starts], runs, distinct_runs)
    return _chinese_features(points, doc_of, np.flatnonzero(chinese))


# Fewer runs than this are featurised directly: sharing would not pay for its bookkeeping.
_RUNS_WORTH_SHARING = 2048


def _shared_run_features(run_doc: np.ndarray, runs: list[str],
                         distinct_runs: dict[str, None]) -> Features:
    number = {run: i for i, run in enumerate(distinct_runs)}
    run_id = np.fromiter(map(number.__getitem__, runs), dtype=np.int64, count=len(runs))
    once = chinese_features("\n".join(distinct_runs))
    order = np.argsort(once.doc, kind="stable")
    pointers = np.zeros(len(number) + 1, dtype=np.int64)
    np.cumsum(np.bincount(once.doc, minlength=len(number)), out=pointers[1:])
    lengths = pointers[run_id + 1] - pointers[run_id]
    total = int(lengths.sum())
    rows = order[np.repeat(pointers[run_id] - (np.cumsum(lengths) - lengths), lengths)
                 + np.arange(total)]
    return Features(np.repeat(run_doc, lengths), once.key[rows], once.value[rows])


def _chinese_features(points: np.ndarray, doc_of: np.ndarray, where: np.ndarray) -> Features:
    chars = points[where]
    doc = doc_of[where]
    stop = _STOP_CHAR[chars]
    parts = [Features(doc[~stop], (C1 << KIND_SHIFT) | chars[~stop], np.ones(int((~stop).sum())))]
    # Neighbours in the joined text are in the same run (a newline is not Chinese).
    adjacent = where[1:] == where[:-1] + 1
    pair = np.flatnonzero(adjacent)
    if len(pair):
        code = (chars[pair] << 16) | chars[pair + 1]
        keep = ~((stop[pair] & stop[pair + 1]) | member(_STOP_GRAMS[2], code))
        pair, code = pair[keep], code[keep]
        value = np.where(zh_word_frequencies().frequencies(code, 2) > 0, 1.0, NON_WORD)
        parts.append(Features(doc[pair], (C2 << KIND_SHIFT) | code, value))
        parts.append(_pinyin_bigrams(doc[pair], chars[pair], chars[pair + 1], value))
    triple = np.flatnonzero(adjacent[:-1] & adjacent[1:])
    if len(triple):
        code = (chars[triple] << 32) | (chars[triple + 1] << 16) | chars[triple + 2]
        keep = ~((stop[triple] & stop[triple + 1] & stop[triple + 2])
                 | member(_STOP_GRAMS[3], code))
        triple, code = triple[keep], code[keep]
        value = np.where(zh_word_frequencies().frequencies(code, 3) > 0, 1.0, NON_WORD)
        parts.append(Features(doc[triple], (C3 << KIND_SHIFT) | code, value))
    return Features.concat(parts)


def chinese_features_of(runs: Sequence[str]) -> dict[int, float]:
    """:func:`chinese_features` of one text given as its runs, a character at a time: for the
    few dozen characters of a typical message this is several times cheaper than the array
    operations, which pay off on long texts and whole knowledge bases."""
    # Which 2- and 3-grams are dictionary words: two lookups for the whole message.
    pairs: list[int] = []
    triples: list[int] = []
    for run in runs:
        codes = [ord(ch) for ch in run]
        pairs += [(a << 16) | b for a, b in pairwise(codes)]
        triples += [(a << 32) | (b << 16) | c
                    for a, b, c in zip(codes, codes[1:], codes[2:], strict=False)]
    words = zh_word_frequencies()
    pair_is_word = iter(words.are_words(pairs, 2))
    triple_is_word = iter(words.are_words(triples, 3))
    out: dict[int, float] = {}
    for run in runs:
        n = len(run)
        codes = [ord(ch) for ch in run]
        stop = [ch in ZH_STOPWORDS for ch in run]
        for i in range(n):
            code = codes[i]
            if not stop[i]:
                out[(C1 << KIND_SHIFT) | code] = 1.0
            if i + 1 < n:
                word = next(pair_is_word)
                if not (stop[i] and stop[i + 1]) and run[i:i + 2] not in ZH_STOPWORDS:
                    value = 1.0 if word else NON_WORD
                    out[(C2 << KIND_SHIFT) | (code << 16) | codes[i + 1]] = value
                    first, second = READINGS.of_char(run[i]), READINGS.of_char(run[i + 1])
                    share = value / (len(first) * len(second))
                    for a in first:
                        for b in second:
                            key = (PY << KIND_SHIFT) | (a << READING_BITS) | b
                            if out.get(key, 0.0) < share:
                                out[key] = share
            if i + 2 < n:
                word = next(triple_is_word)
                if (not (stop[i] and stop[i + 1] and stop[i + 2])
                        and run[i:i + 3] not in ZH_STOPWORDS):
                    out[(C3 << KIND_SHIFT) | (code << 32) | (codes[i + 1] << 16)
                        | codes[i + 2]] = 1.0 if word else NON_WORD
    return out


def _pinyin_bigrams(doc: np.ndarray, first: np.ndarray, second: np.ndarray,
                    value: np.ndarray) -> Features:
    # A bigram weighs the same in sound however many readings its characters have.
    a1, a2, na = READINGS.of(first)
    b1, b2, nb = READINGS.of(second)
    share = value / (na * nb)
    # The (up to) four readings of each bigram side by side, so that rows stay in text order.
    key = (PY << KIND_SHIFT) | np.stack(
        ((a1 << READING_BITS) | b1, (a1 << READING_BITS) | b2,
         (a2 << READING_BITS) | b1, (a2 << READING_BITS) | b2), axis=1)
    present = np.stack((np.ones(len(doc), dtype=bool), nb == 2, na == 2, (na == 2) & (nb == 2)),
                       axis=1)
    return Features(np.repeat(doc, 4).reshape(-1, 4)[present], key[present],
                    np.repeat(share, 4).reshape(-1, 4)[present])


_EMPTY = Features(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))


# ---- English -----------------------------------------------------------------------------------

_WORD_OR_BREAK = re.compile(r"[a-z][a-z0-9]*|[0-9]+[a-z]*|\n")
_BREAK, _STOP = -2, -1


class Vocabulary:
    """Stemmed English words numbered as a knowledge base is indexed."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []
        self._raw: dict[str, int] = {"\n": _BREAK}

    def typed(self) -> dict[str, int]:
        """Every content word as the indexed texts spell it, with its stemmed word's number."""
        return {token: number for token, number in self._raw.items() if number >= 0}

    def add(self, word: str) -> int:
        found = self.ids.get(word)
        if found is None:
            if len(self.words) >= 1 << WORD_BITS:
                raise ValueError("too many distinct English words to index")
            found = self.ids[word] = len(self.words)
            self.words.append(word)
        return found

    def english_features(self, joined: str) -> Features:
        """Word and word-bigram features of normalised texts joined by newlines, numbering new
        words as they come (the words :func:`textnorm.english_words` would give)."""
        raw = self._raw
        found = _WORD_OR_BREAK.findall(joined)
        if not found:
            return _EMPTY
        for token in dict.fromkeys(found):  # new words numbered in the order they come
            if token not in raw:
                content = content_stem(token)
                raw[token] = _STOP if content is None else self.add(content)
        tokens = np.fromiter(map(raw.__getitem__, found), dtype=np.int64, count=len(found))
        doc = np.cumsum(tokens == _BREAK)
        kept = tokens >= 0
        word, doc = tokens[kept], doc[kept]
        same = np.flatnonzero(doc[1:] == doc[:-1])
        return Features(
            np.concatenate((doc, doc[same])),
            np.concatenate(((W << KIND_SHIFT) | word,
                            (W2 << KIND_SHIFT) | (word[same] << WORD_BITS) | word[same + 1])),
            np.ones(len(word) + len(same)))
