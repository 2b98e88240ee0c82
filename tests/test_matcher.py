"""The matcher as residents meet it: the right entry, "did you mean", or an honest "no".

The regression tests run the shared dev set (../shared/eval/dev.jsonl beside the repository) and
our own held-out sets (tests/data/*.jsonl, written independently of the dev set) against the real
knowledge base. The unit tests pin down the behaviour behind those figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process

from quickresponse import matcher as matcher_module
from quickresponse.evaluation import evaluate_file
from quickresponse.knowledge import Entry, KnowledgeBase, load_knowledge_base
from quickresponse.matcher import Matcher, _top
from quickresponse.settings import DEFAULT_KB_DIR, load_settings
from quickresponse.textnorm import normalise

DEV_SET = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"
OWN_SET = Path(__file__).resolve().parent / "data" / "heldout_own.jsonl"
VARIANTS_SET = Path(__file__).resolve().parent / "data" / "heldout_variants.jsonl"
ROUND4_SET = Path(__file__).resolve().parent / "data" / "heldout_round4.jsonl"
UNTUNED_SET = Path(__file__).resolve().parent / "data" / "untuned_round4.jsonl"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    defaults = load_settings(_env_file=None)
    return Matcher(load_knowledge_base(DEFAULT_KB_DIR),
                   answer_threshold=defaults.answer_threshold,
                   suggest_threshold=defaults.suggest_threshold)


# ---- regression on labelled sets ----------------------------------------------------------------

def test_dev_set_meets_the_targets(matcher: Matcher) -> None:
    if not DEV_SET.exists():
        pytest.skip(f"the shared dev set is not at {DEV_SET} (../shared beside the repository)")
    report = evaluate_file(DEV_SET, matcher)
    assert report.top1().value >= 0.92, report.top1()
    assert report.rejected().value >= 0.90, report.rejected()
    assert report.urgent_recall().value == 1.0, report.urgent_recall()


def test_own_held_out_set_stays_at_the_measured_level(matcher: Matcher) -> None:
    # Measured 96.8% top-1, 96.7% rejected, 100% urgent recall, 0.0% false alarms; the bounds
    # leave a small margin so a harmless knowledge-base edit does not fail the build.
    report = evaluate_file(OWN_SET, matcher)
    assert len(report.outcomes) >= 150
    assert report.top1().value >= 0.89, report.top1()
    assert report.rejected().value >= 0.90, report.rejected()
    assert report.urgent_recall().value >= 0.94, report.urgent_recall()
    assert report.false_alarms().value <= 0.03, report.false_alarms()
    for lang in ("zh", "en"):
        assert report.top1(lang).value >= 0.85, (lang, report.top1(lang))


def test_variants_held_out_set_stays_at_the_measured_level(matcher: Matcher) -> None:
    # Residents' styles: traditional characters, Cantonese, zh/en mixed in one message, typos,
    # paraphrases, stories, two-word queries, emergencies and near-miss chit-chat. Measured
    # 97.9% top-1 (zh 99.1%, en 94.2%), 100% rejected, 100% urgent recall, 0.3% false alarms.
    report = evaluate_file(VARIANTS_SET, matcher)
    assert len(report.outcomes) >= 300
    assert report.top1().value >= 0.93, report.top1()
    assert report.top1("zh").value >= 0.94, report.top1("zh")
    assert report.top1("en").value >= 0.88, report.top1("en")
    assert report.rejected().value >= 0.94, report.rejected()
    assert report.urgent_recall().value >= 0.95, report.urgent_recall()
    assert report.false_alarms().value <= 0.02, report.false_alarms()
    kinds = report.by_kind()
    for kind in ("traditional", "cantonese", "mixed", "typo"):
        assert kinds[kind].value >= 0.88, (kind, kinds[kind])


def test_round4_sets_stay_at_the_measured_level(matcher: Matcher) -> None:
    # Written by people who saw only the topic list (never dev, the knowledge base or the code).
    # heldout_round4 (1,151 messages from five blind sets) was then tuned on (measured 94.1%
    # top-1, 99.4% rejected, 99.5% urgent recall, 1.8% false alarms); untuned_round4 was only
    # scored (93.8%, 90.9%, 95.8%, 3.1%). The bounds leave a margin so a harmless
    # knowledge-base edit does not fail the build.
    tuned = evaluate_file(ROUND4_SET, matcher)
    assert len(tuned.outcomes) >= 1100
    assert tuned.top1().value >= 0.92, tuned.top1()
    assert tuned.rejected().value >= 0.95, tuned.rejected()
    assert tuned.urgent_recall().value >= 0.93, tuned.urgent_recall()
    assert tuned.false_alarms().value <= 0.04, tuned.false_alarms()
    untuned = evaluate_file(UNTUNED_SET, matcher)
    assert len(untuned.outcomes) >= 180
    assert untuned.top1().value >= 0.88, untuned.top1()
    assert untuned.rejected().value >= 0.85, untuned.rejected()
    assert untuned.urgent_recall().value >= 0.9, untuned.urgent_recall()
    assert untuned.false_alarms().value <= 0.05, untuned.false_alarms()


# ---- what a resident types ----------------------------------------------------------------------

@pytest.mark.parametrize(("message", "entry_id"), [
    ("灭火器怎么用", "fire-extinguisher"),
    ("how do I use a fire extinguisher on a pan fire", "fire-extinguisher"),
    ("地镇来了躲在哪里", "earthquake-during"),              # pinyin slip for 地震
    ("停电了冰想里的东西怎么办", "power-outage"),           # 冰箱
    ("earthqauke drill at home with kids", "earthquake-prepare"),
    ("carbon monoxcide from a gas heater", "co-poisoning"),
    ("屋企停咗水 幾時先有水", "water-outage"),             # Cantonese
    ("AED在哪里能找到", "cpr"),                            # mixed
    ("停电了fridge里的东西还能吃吗", "power-outage"),
])
def test_typical_questions_get_their_entry(matcher: Matcher, message: str, entry_id: str) -> None:
    result = matcher.match(message)
    assert result.decision == "answer", result
    assert result.entry_id == entry_id


@pytest.mark.parametrize(("message", "entry_id"), [
    # Short words and swapped letters, compared as typed: smel, gass, stuk, fier, drivng.
    ("i smel gass in the kitchin", "gas-leak"),
    ("stuk in the elevater", "elevator-trapped"),
    ("kitchen fier how to escape", "home-fire"),
    ("is it ok drivng thru a flooded underpass", "flood-driving"),
])
def test_english_misspellings_meet_the_words_the_knowledge_base_uses(
        matcher: Matcher, message: str, entry_id: str) -> None:
    result = matcher.match(message)
    assert result.candidates and result.candidates[0].entry_id == entry_id, result


def test_a_character_that_starts_a_word_with_the_next_two_is_no_slip(matcher: Matcher) -> None:
    # 烟冲上来了 is 烟 + 冲上来, not a slip of 烟囱 (chimney, a carbon-monoxide word).
    result = matcher.match("楼下着火了烟冲上来了，我在15楼怎么办")
    assert result.entry_id == "highrise-fire"
    assert matcher.match("着伙了").entry_id == "home-fire"    # a real slip is still read


def test_a_slip_between_two_indexed_words_is_read_as_the_common_one(matcher: Matcher) -> None:
    # "gass" is one letter from "gas" and from "glass"; the knowledge base talks about gas.
    assert matcher._respell("gass") is not None
    assert matcher._respell("gass")[0] == "gas"
    # A word the knowledge base itself uses is never respelt.
    assert matcher._respell("water") is None


def test_traditional_characters_score_like_simplified(matcher: Matcher) -> None:
    simplified = matcher.match("高层建筑着火了怎么逃生")
    traditional = matcher.match("高層建築著火了怎麼逃生")
    assert traditional.candidates == simplified.candidates
    assert traditional.entry_id == "highrise-fire"


def test_full_width_letters_score_like_ascii(matcher: Matcher) -> None:
    full_width = matcher.match("ＡＥＤ　ｎｅａｒ　ｍｅ")
    assert full_width.candidates == matcher.match("AED near me").candidates


@pytest.mark.parametrize("message", [
    "hi", "hello there!", "谢谢 再见", "你是真人吗", "are you a robot", "哈哈哈",
    "明天会下雨吗", "will it be cold this weekend", "怎么办理护照", "how do I pay my phone bill",
    "推荐个好吃的饭店", "which bus goes to the airport", "asdfghjkl", "👍👍👍",
    "你係咪機器人嚟㗎", "食咗飯未呀", "what time is it now", "今天是星期几", "恒指今日升咗幾多",
    "地铁几点收车", "my cat is sick and not eating", "家里的狗狗拉肚子了",
    "what's 110 + 120", "119乘以2等于多少", "what is 7 plus 5",
    "聽日會唔會打風", "will there be a typhoon this week", "明天空气质量怎么样", "今天有雾霾吗",
    # Prices, bills, insurance products, songs, sport and trivia, however many topic words.
    "哪家店的电动车最便宜", "停车场停车费怎么收", "这个月电费余额怎么查", "雷雨这首歌的歌词",
    "台风的名字是谁起的", "best travel insurance for a ski trip", "who won the thunder match",
    "homework: how are sandstorms formed", "空调开几度最省电", "网上买个灭火器多少钱",
    "how do you say hailstorm in chinese", "tell me a joke about floods",
    "物理题：打雷的声音为什么比闪电慢", "公司消防演习好无聊 找个借口不去",
    "who won the football match", "我家猫一打雷就躲起来 要不要看兽医", "鱼缸的水变浑了要不要消毒",
    "which brand of snow shovel is worth buying",
    "our sales are at red alert, how do i motivate my team",
    "in minecraft how do i stop lava fires",
    "这家网红店人气火爆 要排队多久", "how do i fire up a charcoal grill without lighter fluid",
])
def test_small_talk_and_other_city_services_get_no_disaster_answer(
        matcher: Matcher, message: str) -> None:
    result = matcher.match(message)
    assert result.decision == "none", result
    assert result.entry_id is None


@pytest.mark.parametrize(("message", "entry_id"), [
    # Words of the price / trivia rule inside real safety questions.
    ("can i light matches during a power cut", "power-outage"),
    ("how can our community use the resilience scorecard", "resilience-scorecard"),
    ("我们租了个地下室住 下大雨要不要搬出去", "flood-basement"),
    ("we rent a basement room, when should we get out in heavy rain", "flood-basement"),
    ("our shop flooded and we lost all our stock, can small businesses get relief",
     "insurance-aid"),
    ("i drive a taxi, what do i do if my car stalls in a flooded underpass", "flood-driving"),
    ("the aqi is 350 today, is football practice outside still ok for my son", "air-pollution"),
    ("a delivery rider fell into an open manhole in the storm, how do we avoid that",
     "flood-walking"),
    ("novel coronavirus symptoms and what to do", "epidemic"),
    ("do i need a medical exam after carbon monoxide exposure", "co-poisoning"),
    ("大风天还能高空作业吗", "strong-wind"),
    ("避难场所的牌子长什么样", "shelters"),
])
def test_price_and_trivia_words_do_not_reject_a_safety_question(
        matcher: Matcher, message: str, entry_id: str) -> None:
    assert matcher.match(message).entry_id == entry_id


def test_a_forecast_question_that_asks_what_to_do_is_in_scope(matcher: Matcher) -> None:
    result = matcher.match("明天有特大暴雨 家里要准备什么")
    assert result.entry_id == "rainstorm-prepare"


@pytest.mark.parametrize("message", [
    "今晚有大风吗 窗台上的东西要拿进来吗", "明天会下雪吗 开车要注意什么",
    "will there be a storm tonight, should we tie down the bikes",
])
def test_a_forecast_question_with_a_safety_question_gets_topics(
        matcher: Matcher, message: str) -> None:
    assert matcher.match(message).reason != "off_topic"


def test_an_urgent_message_gets_its_topic_and_the_urgent_flag(matcher: Matcher) -> None:
    result = matcher.match("help, my kitchen is on fire and the smoke is getting thick")
    assert result.urgent
    assert result.entry_id == "home-fire"
    result = matcher.match("救命 电梯卡在两层中间了 我们出不去")
    assert result.urgent and result.entry_id == "elevator-trapped"


@pytest.mark.parametrize(("message", "entry_id"), [
    # The background (a subway station, onlookers; a river bank, a guesthouse) pulls towards
    # other topics; what is happening (no breathing, trapped by water) names the steps.
    ("救命 地铁站里有个大爷倒地了 没有呼吸了 旁边的人都在看", "cpr"),
    ("help, the river came over the bank and we are trapped upstairs in the village guesthouse, "
     "water everywhere downstairs", "flood-trapped"),
])
def test_an_emergency_is_answered_by_what_is_happening_not_by_where(
        matcher: Matcher, message: str, entry_id: str) -> None:
    result = matcher.match(message)
    assert result.urgent
    assert result.decision == "answer", result
    assert result.entry_id == entry_id


def test_a_near_miss_is_offered_as_suggestions(matcher: Matcher) -> None:
    # "gas" alone could be a leak or carbon monoxide: offer both rather than guess.
    result = matcher.match("gas")
    assert result.decision == "suggest"
    assert {"gas-leak", "co-poisoning"} <= set(result.alternatives)
    assert result.entry_id is None
    assert set(result.alternatives) == {c.entry_id for c in result.candidates}


def test_an_answer_lists_its_alternatives_after_the_entry(matcher: Matcher) -> None:
    result = matcher.match("灭火器过期了还能用吗")
    assert result.decision == "answer"
    assert result.entry_id not in result.alternatives
    assert list(result.alternatives) == [c.entry_id for c in result.candidates[1:]]


def test_candidates_are_ranked_and_bounded(matcher: Matcher) -> None:
    result = matcher.match("暴雨天地下车库进水了")
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert len(result.candidates) <= matcher.max_candidates
    assert all(0 <= s <= 100 for s in scores)


# ---- ties and preferences ------------------------------------------------------------------------

def _twin_kb() -> KnowledgeBase:
    """Two entries that a question cannot tell apart."""
    def entry(entry_id: str) -> Entry:
        return Entry(
            id=entry_id, category="weather", title={"zh": "暴雨", "en": "Rainstorm"},
            answer={"zh": "待在室内。", "en": "Stay indoors."},
            examples={"zh": ("暴雨天要注意什么", "下暴雨怎么办", "暴雨来了"),
                      "en": ("heavy rain what to do", "rainstorm safety", "big storm tips")},
            keywords={"zh": ("暴雨",), "en": ("rainstorm",)}, related=(), sources=(),
            reviewed=dt.date(2026, 1, 1))
    twins = {i: entry(i) for i in ("rain-a", "rain-b")}
    return KnowledgeBase(twins, {}, Path("."))


def test_a_tie_is_not_answered_blindly() -> None:
    result = Matcher(_twin_kb()).match("暴雨天要注意什么")
    assert result.decision == "suggest"
    assert {c.entry_id for c in result.candidates} == {"rain-a", "rain-b"}


@pytest.mark.parametrize("preferred", ["rain-a", "rain-b"])
def test_prefer_breaks_a_tie(preferred: str) -> None:
    result = Matcher(_twin_kb()).match("暴雨天要注意什么", prefer={preferred})
    assert result.decision == "answer"
    assert result.entry_id == preferred


def test_prefer_does_not_override_a_clear_winner(matcher: Matcher) -> None:
    result = matcher.match("灭火器怎么用", prefer={"rainstorm-home"})
    assert result.entry_id == "fire-extinguisher"


# ---- odd input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("message", [
    "", "   ", "🙂🙂🙂", "？？？", "12345", "\u200b\u200b", "x" * 10_000, "\x00\x07\x1b",
    "ﷺ" * 50, "啊" * 10_000,
])
def test_odd_input_gets_none_without_crashing(matcher: Matcher, message: str) -> None:
    result = matcher.match(message)
    assert result.entry_id is None
    assert all(0 <= c.score <= 100 for c in result.candidates)


def test_a_long_english_message_is_judged_on_a_questions_worth_of_english(
        matcher: Matcher) -> None:
    # English words weigh about half what the Chinese characters saying the same weigh, so
    # where a message starts to count as long is set per script; with one figure for both,
    # this message was judged on all its background and only offered as a "did you mean".
    result = matcher.match("two years ago our street flooded and water came into the ground "
                           "floor, this year I want to be ready before the summer storms, what "
                           "should we prepare")
    assert result.decision == "answer"
    assert result.entry_id == "rainstorm-prepare"


def test_a_very_long_message_is_judged_on_its_first_part(matcher: Matcher) -> None:
    assert matcher.match("火" * 10_000).entry_id == matcher.match("火").entry_id
    result = matcher.match("煤气泄漏怎么办 " + "啊" * 10_000)
    assert result.entry_id == "gas-leak"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_match_never_raises_and_scores_stay_in_range(text: str) -> None:
    result = _shared_matcher().match(text)
    assert result.decision in ("answer", "suggest", "none")
    assert all(0.0 <= c.score <= 100.0 for c in result.candidates)
    assert (result.entry_id is None) == (result.decision != "answer")
    assert result.lang in ("zh", "en")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(
    ["着火", "地震", "暴雨", "fire", "flood", "gas", "怎么办", "the", "了", "!!", "困", "水"]),
    max_size=12).map(" ".join))
def test_match_is_stable_on_topic_word_soup(text: str) -> None:
    first = _shared_matcher().match(text)
    assert _shared_matcher().match(text) == first


_CACHE: dict[str, Matcher] = {}


def _shared_matcher() -> Matcher:
    # Hypothesis cannot take function-scoped fixtures; build the real matcher once.
    if "m" not in _CACHE:
        _CACHE["m"] = Matcher(load_knowledge_base(DEFAULT_KB_DIR))
    return _CACHE["m"]


def test_the_matcher_is_built_from_plain_values() -> None:
    kb = _twin_kb()
    changed = dataclasses.replace(kb.entries["rain-a"], keywords={"zh": ("洪水",), "en": ()})
    matcher = Matcher(KnowledgeBase({"rain-a": changed}, {}, Path(".")))
    assert matcher.match("洪水").entry_id == "rain-a"


# ---- the fast paths give what the plain ones give ----------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("着伙火了地镇震怎么办电梯店困住水漫进家门煤气味重固顶")),
               max_size=70), st.sampled_from([2, 3]))
def test_sound_alike_windows_are_the_same_a_character_at_a_time_and_in_arrays(
        run: str, n: int) -> None:
    homophones = _shared_matcher()._homophones
    chars = list(run)
    for start in range(0, max(len(chars) - n + 1, 1), 7):
        assert (homophones._sound_alike(chars, n, start)
                == homophones._sound_alike_arrays(chars, n, start))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 10.5, 30.0, 30.0, 55.2, 80.0, 99.9]), max_size=40),
       st.integers(min_value=1, max_value=12))
def test_top_candidates_are_those_of_a_full_stable_sort(scores: list[float], k: int) -> None:
    values = np.array(scores)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matcher_module, "_PARTITION_FROM", 0)  # the path for many entries
        assert _top(values, k).tolist() == np.argsort(-values, kind="stable")[:k].tolist()


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=5, max_size=14))
def test_typo_correction_finds_what_a_search_of_the_whole_vocabulary_finds(word: str) -> None:
    matcher = _shared_matcher()
    vocab = sorted(w for w in matcher._indexed_words if w.isalpha())
    cutoff = 88.0 if len(word) <= 5 else 84.0 if len(word) <= 7 else 80.0
    expected = None
    if word not in matcher._known_words:
        best = process.extractOne(word, vocab, scorer=fuzz.ratio, score_cutoff=cutoff)
        expected = (best[0], best[1] / 100.0) if best else None
    assert matcher._correct(word) == expected


def test_typo_correction_meets_misspelt_topic_words() -> None:
    matcher = _shared_matcher()
    for typed, meant in (("earthqake", "earthquak"), ("extinguiser", "extinguish")):
        found = matcher._correct(typed)
        assert found is not None and found[0].startswith(meant[:8]), (typed, found)


def test_a_long_message_gets_the_same_features_either_way(monkeypatch) -> None:
    # Past a few dozen characters features are computed with arrays; the result must not
    # depend on which way was taken.
    text = normalise("家里的电动车着火了 烟很大 我们在楼上出不去 怎么办 fire smoke 着伙了 地镇" * 3)
    assert len(text) > matcher_module._ARRAYS_FROM
    by_arrays = _shared_matcher()._query_features(text)
    monkeypatch.setattr(matcher_module, "_ARRAYS_FROM", 10_000)
    by_characters = _shared_matcher()._query_features(text)
    assert (dict(zip(by_arrays[0].tolist(), by_arrays[1].tolist(), strict=True))
            == dict(zip(by_characters[0].tolist(), by_characters[1].tolist(), strict=True)))


def test_building_leaves_the_garbage_collector_as_it_found_it() -> None:
    import gc

    kb = _twin_kb()
    assert gc.isenabled()
    Matcher(kb)
    assert gc.isenabled()
    gc.disable()
    try:
        Matcher(kb)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_building_leaves_numpys_huge_page_advice_as_it_found_it() -> None:
    set_advice = np._core.multiarray._set_madvise_hugepage
    seen = []

    def spy(enabled: bool) -> bool:
        seen.append(enabled)
        return set_advice(enabled)

    previous = set_advice(True)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(np._core.multiarray, "_set_madvise_hugepage", spy)
            Matcher(_twin_kb())
        assert seen == [False, True]          # off for the build, then as it was
        assert set_advice(False) is True      # ... and it was left on
    finally:
        set_advice(previous)
