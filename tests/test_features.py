"""The array-built features are exactly the features the matcher's design describes.

The reference below is the plain definition, one text and one character at a time (it is what
the matcher computed before features were built with numpy): a Chinese character, 2- and 3-grams
within a run (stop words out, non-words at 0.35), pinyin bigrams sharing the bigram's weight over
its readings, English words and word bigrams.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quickresponse.features import (
    KIND_SHIFT,
    NON_WORD,
    PY,
    READING_BITS,
    READINGS,
    Features,
    Vocabulary,
    bigram_key,
    chinese_features,
    chinese_features_of,
    chinese_key,
    word_key,
)
from quickresponse.knowledge import load_knowledge_base
from quickresponse.settings import DEFAULT_KB_DIR
from quickresponse.textnorm import (
    ZH_STOPWORDS,
    cjk_runs,
    english_words,
    normalise,
    pinyin,
    zh_word_frequencies,
)


def _reference(normalised: str, vocabulary: Vocabulary) -> dict[int, float]:
    words = zh_word_frequencies()
    out: dict[int, float] = {}
    for run in cjk_runs(normalised):
        for i, ch in enumerate(run):
            if ch not in ZH_STOPWORDS:
                out[chinese_key(ch)] = 1.0
            gram = run[i:i + 2]
            if len(gram) == 2 and gram not in ZH_STOPWORDS and not (
                    ch in ZH_STOPWORDS and gram[1] in ZH_STOPWORDS):
                weight = 1.0 if gram in words else NON_WORD
                out[chinese_key(gram)] = weight
                readings_a, readings_b = pinyin(ch), pinyin(gram[1])
                for a in readings_a:
                    for b in readings_b:
                        key = ((PY << KIND_SHIFT) | (READINGS.reading_id(a) << READING_BITS)
                               | READINGS.reading_id(b))
                        out[key] = max(out.get(key, 0.0),
                                       weight / (len(readings_a) * len(readings_b)))
            gram = run[i:i + 3]
            if len(gram) == 3 and gram not in ZH_STOPWORDS and not all(
                    c in ZH_STOPWORDS for c in gram):
                out[chinese_key(gram)] = 1.0 if gram in words else NON_WORD
    ids = [vocabulary.ids[w] for w in english_words(normalised)]
    for i, word in enumerate(ids):
        out[word_key(word)] = 1.0
        if i + 1 < len(ids):
            out[bigram_key(word, ids[i + 1])] = 1.0
    return out


def _batch(texts: list[str]) -> tuple[list[dict[int, float]], Vocabulary]:
    vocabulary = Vocabulary()
    joined = "\n".join(texts)
    features = Features.concat(
        [chinese_features(joined), vocabulary.english_features(joined)]).merged()
    pairs = list(zip(features.doc.tolist(), features.key.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs), "a feature listed twice for one text"
    out: list[dict[int, float]] = [{} for _ in texts]
    for doc, key, value in zip(features.doc.tolist(), features.key.tolist(),
                               features.value.tolist(), strict=True):
        out[doc][key] = value
    return out, vocabulary


def _assert_same(texts: list[str]) -> None:
    normalised = [normalise(t) for t in texts]
    got, vocabulary = _batch(normalised)
    for text, features in zip(normalised, got, strict=True):
        assert features == _reference(text, vocabulary), text


def test_knowledge_base_texts_get_the_reference_features() -> None:
    kb = load_knowledge_base(DEFAULT_KB_DIR)
    _assert_same([text for entry in kb for lang in ("zh", "en")
                  for text in (entry.title[lang], *entry.examples[lang], *entry.keywords[lang])])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list(
    "着火了地震怎么办的是不是一个我们水电梯困住行长重 abc fire floods the 12 ")), max_size=30),
    max_size=6))
def test_any_text_gets_the_reference_features(texts: list[str]) -> None:
    _assert_same(texts)


def test_saying_it_twice_adds_no_feature_and_no_weight() -> None:
    once, twice = _batch([normalise("行长着火了 fire"),
                          normalise("行长着火了 fire 行长着火了 fire")])[0]
    assert set(twice) - set(once) == {bigram_key(0, 0)}  # only "fire fire" is new
    assert all(twice[k] == v for k, v in once.items())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("着火了地震怎么办的是不是一个我们水电梯困住行长重")),
                        min_size=1, max_size=60), max_size=4))
def test_one_message_a_character_at_a_time_gets_the_array_features(runs: list[str]) -> None:
    arrays = chinese_features("\n".join(runs))
    arrays = Features(np.zeros_like(arrays.doc), arrays.key, arrays.value).merged()
    assert chinese_features_of(runs) == dict(
        zip(arrays.key.tolist(), arrays.value.tolist(), strict=True))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from([
    chinese_key("火"), chinese_key("着火"), chinese_key("着火了"), word_key(3), word_key(70_000),
    bigram_key(3, 5), bigram_key(70_000, 2), (PY << KIND_SHIFT) | (12 << READING_BITS) | 400]),
    st.sampled_from([1.0, NON_WORD, 0.5, 0.25, 0.175])), max_size=60))
def test_merging_keeps_one_row_per_text_and_feature_with_its_highest_weight(
        rows: list[tuple[int, int, float]]) -> None:
    features = Features(np.array([r[0] for r in rows], dtype=np.int64),
                        np.array([r[1] for r in rows], dtype=np.int64),
                        np.array([r[2] for r in rows], dtype=np.float64))
    merged = features.merged()
    expected: dict[tuple[int, int], float] = {}
    for doc, key, value in rows:
        expected[(key, doc)] = max(expected.get((key, doc), 0.0), value)
    assert list(zip(merged.key.tolist(), merged.doc.tolist(), strict=True)) == sorted(expected)
    assert merged.value.tolist() == [expected[k] for k in sorted(expected)]


def test_runs_repeated_across_many_texts_get_the_reference_features() -> None:
    # Thousands of texts sharing their runs take the featurise-each-run-once path.
    shared = ["着火了 地震来了怎么办", "行长重新 fire", "水电梯困住了", "我们 flood 困住"]
    texts = [f"{shared[i % 4]} {'的是不一个'[i % 5]}第{i}号" for i in range(1200)]
    _assert_same(texts)
