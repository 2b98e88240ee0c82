"""Text folding: what a resident types on a phone meets what the knowledge base says."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quickresponse import textnorm
from quickresponse.textnorm import (
    MAX_INPUT_CHARS,
    detect_language,
    english_words,
    normalise,
    pinyin,
    stem,
    zh_word_frequencies,
)


@pytest.mark.parametrize(("typed", "folded"), [
    ("ＡＥＤ　在哪？", "aed 在哪"),                      # full-width letters and space
    ("家裡著火了怎麼逃生", "家里着火了怎么逃生"),           # traditional characters
    ("屋企停咗水 點算", "家里停了水 怎么办"),               # Cantonese function words
    ("佢哋冇電", "他们没电"),
    ("I'm trapped!!! can't get out", "i am trapped can not get out"),
    ("shud u turn off the gas thru the valve", "should you turn off the gas through the valve"),
    ("  Fire\u200b  EXTINGUISHER\t\n", "fire extinguisher"),    # zero-width space, case
    ("🔥🔥 着火了!!!", "着火了"),                              # emoji and punctuation
])
def test_normalise_folds_what_residents_type(typed: str, folded: str) -> None:
    assert normalise(typed) == folded


def test_traditional_and_simplified_fold_to_the_same_text() -> None:
    assert normalise("颱風來了 電梯停電 怎麼辦") == normalise("台风来了 电梯停电 怎么办")


def test_normalise_caps_very_long_input() -> None:
    assert len(normalise("火" * 10_000)) == MAX_INPUT_CHARS


def test_cantonese_replacements_cannot_feed_each_other() -> None:
    """No replacement contains a word that is itself replaced, so one pass is final."""
    for mapping in (textnorm._CANTONESE, textnorm._CANTONESE_TRADITIONAL):
        for value in mapping.values():
            assert not any(key in value for key in mapping), value
    for value in textnorm._TEXT_SPEAK.values():
        assert not any(re.search(rf"\b{re.escape(k)}\b", value) for k in textnorm._TEXT_SPEAK)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_normalise_is_idempotent_and_never_raises(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("着火了煤气味水浸咗點算係唔ABCabc'’ !？，。 ")),
               max_size=60))
def test_normalise_is_idempotent_on_mixed_chinese_and_english(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@pytest.mark.parametrize(("text", "lang"), [
    ("家里着火了怎么办", "zh"),
    ("how do I use a fire extinguisher", "en"),
    ("AED在哪里可以找到", "zh"),                  # an English word in a Chinese sentence
    ("evacuate的时候要带什么东西", "zh"),
    ("is 12345 the right number for 积水", "en"),  # English carries this one
    ("😀😀", "zh"),                               # nothing to go on: the default
    ("120", "zh"),
])
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_detect_language_default_is_configurable() -> None:
    assert detect_language("!!!", default="en") == "en"


@pytest.mark.parametrize("forms", [
    ("flood", "floods", "flooded", "flooding"),
    ("battery", "batteries"),
    ("charge", "charging", "charged"),
    ("trap", "trapped", "trapping"),
])
def test_stem_meets_word_forms(forms: tuple[str, ...]) -> None:
    assert len({stem(w) for w in forms}) == 1


def test_stem_leaves_short_and_special_words_alone() -> None:
    assert stem("gas") == "gas"
    assert stem("virus") == "virus"
    assert stem("bleed") == stem("bleeding")


def test_english_words_drop_stop_words() -> None:
    assert english_words("what should i do in a blackout") == ["blackout"]


def test_homophones_share_a_reading() -> None:
    # Pinyin-input slips: 着伙 for 着火, 地镇 for 地震, 店梯 for 电梯.
    for typed, meant in (("伙", "火"), ("镇", "震"), ("店", "电")):
        assert set(pinyin(typed)) & set(pinyin(meant))


def test_word_frequencies_know_common_words() -> None:
    words = zh_word_frequencies()
    assert words["地震"] > words.get("地镇", 0)
    assert "点击" in words


def test_stem_folds_adverbs_but_not_nouns_ending_in_ly() -> None:
    assert stem("safely") == stem("safe")
    assert stem("supply") == stem("supplies")
    assert stem("family") == stem("families")
