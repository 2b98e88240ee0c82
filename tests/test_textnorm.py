"""Text folding: what a resident types on a phone meets what the knowledge base says."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quickresponse import textnorm
from quickresponse.knowledge import load_knowledge_base
from quickresponse.settings import DEFAULT_KB_DIR
from quickresponse.textnorm import (
    MAX_INPUT_CHARS,
    detect_language,
    english_words,
    normalise,
    normalise_many,
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
    ("Café FIRE, naïve", "cafe fire naive"),                   # accents
    ("I‘m stuck, don`t know", "i am stuck do not know"),       # other apostrophes
    ("e‑bike e–scooter", "ebike escooter"),                    # other hyphens
])
def test_normalise_folds_what_residents_type(typed: str, folded: str) -> None:
    assert normalise(typed) == folded


@pytest.mark.parametrize(("typed", "folded"), [
    # zhconv turns 嗰 and 𨋢 into other characters before the dialect table sees them.
    ("嗰陣時我喺𨋢入面", "的时候我在电梯里面"),
    ("佢困咗喺車入面 水仲喺度漲", "他困在车里面 水还在涨"),
    ("有冇人識游水", "有没有人会游泳"),
    ("使唔使熄總掣", "要不要关总闸"),
    ("雪櫃啲嘢仲食唔食得", "冰箱些东西还能不能吃"),
    ("佢晕低咗冇咗呼吸 點做心外壓", "他晕倒了没有呼吸 怎么做胸外按压"),
    ("滅火筒點用", "灭火器怎么用"),
    ("今日天氣點呀", "今天天气怎么样"),
    ("成日發惡夢 好驚", "总是做噩梦 很害怕"),
    ("俾電電親", "被电触电"),
    ("瓦斯外洩 可以傳簡訊嗎", "燃气泄漏 可以传短信吗"),           # Taiwan words
    ("屋苑啲長者", "小区些老人"),                                # Hong Kong words
    ("食錯嘢肚痾", "吃错东西拉肚子"),
    ("打大風", "刮大风"),
    ("儲起啲水可以擺幾耐", "储起些水可以摆多久"),
    ("路邊的人孔蓋不見了", "路边的井盖不见了"),                    # Taiwan: manhole cover
])
def test_cantonese_words_fold_to_mandarin(typed: str, folded: str) -> None:
    assert normalise(typed) == folded


@pytest.mark.parametrize("mandarin", ["一点去", "几点走", "地点在哪", "点火", "点蜡烛",
                                      "仲裁", "快点走"])
def test_mandarin_words_with_cantonese_characters_stay(mandarin: str) -> None:
    assert normalise(mandarin) == mandarin


def test_cantonese_forms_are_written_as_they_look_after_script_conversion() -> None:
    """The table is applied to simplified text: a key zhconv would change never matches."""
    for key in textnorm._DIALECT:
        assert textnorm.to_simplified(key) == key, key


def test_a_letter_hyphenated_to_a_word_is_one_word() -> None:
    assert english_words(normalise("E-bike")) == english_words(normalise("ebike"))
    assert english_words(normalise("e-scooter")) == english_words(normalise("ebike"))
    assert normalise("well-known re-entry") == "well known re entry"


def test_traditional_and_simplified_fold_to_the_same_text() -> None:
    assert normalise("颱風來了 電梯停電 怎麼辦") == normalise("台风来了 电梯停电 怎么办")


def test_normalise_caps_very_long_input() -> None:
    assert len(normalise("火" * 10_000)) == MAX_INPUT_CHARS


def test_cantonese_replacements_cannot_feed_each_other() -> None:
    """No replacement contains a word that is itself replaced, so one pass is final."""
    for mapping in (textnorm._DIALECT, textnorm._CANTONESE_TRADITIONAL):
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


# Pieces that exercise every folding step: full width, traditional and Cantonese forms, text-speak,
# contractions, stray marks, digits, Greek final sigma, a compatibility ideograph and a character
# beyond the Basic Multilingual Plane (which the script conversion treats apart).
_PIECES = ["着火了", "煤气味", "水浸咗", "點算", "係唔係", "唔该", "ＡＥＤ", "Ｆｉｒｅ", "u", "ur",
           "2day", "can't", "I'm", "shud", "it's", "!!", "？", "，", "。", "120", "5楼", "ΣΑΣ",
           "\u00b4", "\uf900", "\U00020000", "𨋢", "\u3000", "\t", "\n", "\x1c", "\u200b", "_",
           "a_b", ""]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=6).map(" ".join), max_size=8))
def test_normalise_many_folds_each_text_like_normalise(texts: list[str]) -> None:
    assert normalise_many(texts) == [normalise(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=6))
def test_normalise_many_folds_any_text_like_normalise(texts: list[str]) -> None:
    assert normalise_many(texts) == [normalise(t) for t in texts]


def test_normalise_many_folds_the_knowledge_base_like_normalise() -> None:
    texts = [text for entry in load_knowledge_base(DEFAULT_KB_DIR) for lang in ("zh", "en")
             for text in (entry.title[lang], *entry.examples[lang], *entry.keywords[lang],
                          entry.answer[lang])]
    assert normalise_many(texts) == [normalise(t) for t in texts]


def _zhconv_phrases() -> list[str]:
    import zhconv.zhconv

    return sorted(k for k in zhconv.zhconv.getdict("zh-cn") if len(k) > 1)


_PHRASES = _zhconv_phrases()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_PHRASES),
                          st.sampled_from(_PHRASES).map(lambda p: p[1:] or p),
                          st.sampled_from(_PHRASES).map(lambda p: p[:-1] or p),
                          st.sampled_from(list("乾隆干什麼么了 a1\n"))), max_size=12).map("".join))
def test_script_conversion_is_zhconv_exactly(text: str) -> None:
    import zhconv

    assert textnorm.to_simplified(text) == zhconv.convert(text, "zh-cn")


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
    ("go", "went", "gone", "going"),                   # irregular verbs
    ("fall", "fell", "fallen", "falling"),
    ("child", "children", "kid", "kids"),
    ("neighbour", "neighbours", "neighbor", "neighbors"),  # British and American spelling
    ("elevator", "elevators", "lift", "lifts"),
    ("tin", "tins", "tinned", "canned", "cans"),         # "can" alone is a stop word
    ("quake", "quakes", "tremor", "tremors"),
])
def test_stem_meets_word_forms(forms: tuple[str, ...]) -> None:
    assert len({stem(w) for w in forms}) == 1


def test_inflected_stop_words_are_stop_words() -> None:
    # "the power goes out" is about power; "go" would point at the go-bag.
    assert english_words(normalise("the power goes out, thanks")) == ["power"]


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
    assert "地镇" not in words and "火" not in words  # 2 and 3 characters only


def test_word_frequencies_are_read_back_from_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    zh_word_frequencies.cache_clear()
    try:
        parsed = zh_word_frequencies()
        cached = list((tmp_path / "quickresponse").glob("zh-words-*.npz"))
        assert len(cached) == 1
        zh_word_frequencies.cache_clear()
        assert zh_word_frequencies()["地震"] == parsed["地震"]
        cached[0].write_bytes(b"damaged")  # a damaged cache is parsed anew, not trusted
        zh_word_frequencies.cache_clear()
        assert zh_word_frequencies()["地震"] == parsed["地震"]
        assert len(zh_word_frequencies()) == len(parsed) > 200_000
    finally:
        zh_word_frequencies.cache_clear()


def test_word_frequencies_work_without_a_writable_cache(tmp_path, monkeypatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    zh_word_frequencies.cache_clear()
    try:
        assert "地震" in zh_word_frequencies()
    finally:
        zh_word_frequencies.cache_clear()


def test_pinyin_leaves_the_phrase_dictionary_unloaded() -> None:
    # pypinyin's phrase dictionary costs most of a second at every start and is never used.
    code = ("import sys; from quickresponse.textnorm import pinyin; "
            "assert pinyin('火') == ('huo',), pinyin('火'); "
            "assert 'pypinyin.phrases_dict' not in sys.modules, 'phrases loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_stem_folds_adverbs_but_not_nouns_ending_in_ly() -> None:
    assert stem("safely") == stem("safe")
    assert stem("supply") == stem("supplies")
    assert stem("family") == stem("families")


def _fold_fully(text: str) -> str:
    """normalise as it is defined: every folding step, until nothing changes."""
    folded = textnorm._fold_once(text)
    for _ in range(3):
        again = textnorm._fold_once(folded)
        if again == folded:
            break
        folded = again
    return folded


_PLAIN_CASES = ["e-bike u", "  U  r  ", "x_y", "b4-2day", "", "a - e-scooter", "a-e-bike n w",
                "Hi!!  (ur) pls--ok", "_", "-", "u\tr", "x" * 10, "don`t", "I`m  here",
                "it`s e-bike`s", "Can't swim", "SHUD u call 120??"]


def test_normalise_many_folds_whole_lines_like_normalise() -> None:
    # Lines of plain ASCII and lines of Chinese (and digits) are folded whole, not cut at spaces:
    # compounds, marks and text-speak at the start, inside and at the end of a line.
    texts = [*_PLAIN_CASES, "着火了", "水浸咗點算", "係唔係", "着火了 u", "u\n着火", "住20楼",
             "打119", "3点用", "点用灭火器", "2點算", "係2", "12345是干嘛 的报急事吗"]
    assert normalise_many(texts) == [_fold_fully(t) for t in texts]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60)
       | st.sampled_from(_PLAIN_CASES))
def test_normalise_of_ascii_is_every_folding_step(text: str) -> None:
    # Plain ASCII (most English messages) takes a shorter path; it must fold the same.
    assert normalise(text) == _fold_fully(text)
