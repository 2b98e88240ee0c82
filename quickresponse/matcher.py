"""Match a resident's message to knowledge-base entries.

The matcher is built once at start-up from the knowledge base (the index) and then answers each
message in well under a millisecond for a city-sized knowledge base: it takes plain text and
returns a ranked list of entry ids with scores (0-100), whether the message is urgent, the
message's language, and a decision: ``answer`` (confident), ``suggest`` (near miss: offer the top
few) or ``none``.

How a message is scored
-----------------------
Every entry's title, example questions and keywords, in both languages, are *units*. A text is
described by weighted features:

* Chinese: character 1-, 2- and 3-grams within runs of Chinese characters (there are no spaces to
  split on), plus toneless pinyin bigrams so that pinyin-input homophone typos (着伙 / 着火,
  地镇 / 地震) still meet;
* English: lightly stemmed content words and word bigrams; a word the knowledge base does not know
  is corrected to its closest indexed word when they are near enough (earthqake -> earthquake).

A feature's weight is its inverse document frequency over every unit and every sentence of the
answers, so common characters and words (的, 了, 怎么, "what", "do") weigh little and a message
made of words the knowledge base never uses (tax, visa, 签证) stays unexplained. Stop words weigh
nothing.

For each entry the matcher combines three signals, each 0-1:

* coverage: the share of the message's weight that the entry's units explain together;
* best unit: weighted Dice overlap with the entry's single closest title or example question;
* keyword: how completely the entry's best keyword (or title) appears inside the message, scaled
  by how much that keyword weighs, which carries long messages that mention the topic once.

Small talk ("hi", "thanks bye", "你是机器人吗") and questions about other city services (weather
forecasts, fines, taxes, visas) are recognised by their shape and get ``none`` unless a topic
keyword is plainly in the message. An urgent message is answered with its best topic at the
lower (suggest) threshold: the numbers to call come first either way.

Per message the work is a handful of array operations over inverted lists (numpy ``bincount``),
never a Python loop over all units, so it scales to thousands of entries.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process

from quickresponse.knowledge import Entry, KnowledgeBase
from quickresponse.textnorm import (
    EN_STOPWORDS,
    ZH_STOPWORDS,
    cjk_runs,
    detect_language,
    english_words,
    latin_words,
    normalise,
    pinyin,
    zh_word_frequencies,
)
from quickresponse.urgency import assess

Decision = Literal["answer", "suggest", "none"]


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    score: float


@dataclass(frozen=True)
class MatchResult:
    text: str
    lang: str
    urgent: bool
    decision: Decision
    candidates: tuple[Candidate, ...]
    # Why the decision was taken: "match", "ambiguous", "low_score", "small_talk",
    # "off_topic" or "empty"; for logs, the evaluation report and the gaps list.
    reason: str = ""

    @property
    def entry_id(self) -> str | None:
        """The entry to answer with, or None when the bot would not answer with an entry."""
        return self.candidates[0].entry_id if self.decision == "answer" else None

    @property
    def score(self) -> float:
        return self.candidates[0].score if self.candidates else 0.0

    @property
    def alternatives(self) -> tuple[str, ...]:
        start = 1 if self.decision == "answer" else 0
        return tuple(c.entry_id for c in self.candidates[start:])


# ---- features ----------------------------------------------------------------------------------

# Relative weight of each kind of feature (multiplied by its IDF).
_KIND_WEIGHT = {"c1": 1.0, "c2": 1.0, "c3": 0.6, "py": 0.45, "w": 1.0, "w2": 0.5}
_UNIT_TITLE, _UNIT_EXAMPLE, _UNIT_KEYWORD = 0, 1, 2
# Weight of a Chinese n-gram that is not a dictionary word, relative to one that is.
_NON_WORD = 0.35
# An English word unknown to the knowledge base is corrected to an indexed word this similar.
_TYPO_MIN_RATIO = 80.0
_TYPO_MIN_LEN = 5
_TYPO_MAX_LEN = 24
# Entries kept in each per-matcher memo (typo corrections, homophone fixes, unindexed weights).
_CACHE_SIZE = 50_000
# A typed Chinese word is taken for a slip of a homophone this many times more common.
_SLIP_ODDS = 5


def _zh_features(run: str, out: dict[str, float]) -> None:
    # Two or three characters that make a dictionary word carry meaning; a pair straddling two
    # words (水已 in 水已经) is mostly noise, so it weighs less, in messages and entries alike.
    words = zh_word_frequencies()
    n = len(run)
    for i, ch in enumerate(run):
        if ch not in ZH_STOPWORDS:
            out["c1:" + ch] = 1.0
        if i + 1 < n:
            gram = run[i:i + 2]
            if gram not in ZH_STOPWORDS and not (ch in ZH_STOPWORDS and run[i + 1] in ZH_STOPWORDS):
                word = 1.0 if gram in words else _NON_WORD
                out["c2:" + gram] = word
                # A bigram weighs the same in sound however many readings its characters have.
                readings_a, readings_b = pinyin(ch), pinyin(run[i + 1])
                share = word / (len(readings_a) * len(readings_b))
                for a in readings_a:
                    for b in readings_b:
                        key = f"py:{a} {b}"
                        out[key] = max(out.get(key, 0.0), share)
        if i + 2 < n:
            gram = run[i:i + 3]
            if not all(c in ZH_STOPWORDS for c in gram) and gram not in ZH_STOPWORDS:
                out["c3:" + gram] = 1.0 if gram in words else _NON_WORD


def _en_features(words: list[str], out: dict[str, float], confidence: list[float]) -> None:
    for i, word in enumerate(words):
        out["w:" + word] = max(out.get("w:" + word, 0.0), confidence[i])
        if i + 1 < len(words):
            key = f"w2:{word} {words[i + 1]}"
            out[key] = max(out.get(key, 0.0), min(confidence[i], confidence[i + 1]))


def text_features(normalised: str) -> dict[str, float]:
    """The features of a normalised text, each with the confidence it was seen (1.0)."""
    out: dict[str, float] = {}
    for run in cjk_runs(normalised):
        _zh_features(run, out)
    words = english_words(normalised)
    _en_features(words, out, [1.0] * len(words))
    return out


def _kind(feature: str) -> str:
    return feature.split(":", 1)[0]


# ---- out of scope ------------------------------------------------------------------------------

# Greetings, thanks, questions about the bot itself and chit-chat. A message made only of these
# (and stop words) is small talk.
_SMALL_TALK = re.compile(
    r"你好|您好|哈喽|嗨|在吗|在不在|有人吗|早上好|早安|中午好|下午好|晚上好|晚安|谢谢|多谢|感谢|谢了"
    r"|再见|拜拜|好的|好吧|嗯+|哈+|呵+|嘿+|你是谁|你是机器人|机器人|你是人|真人|人工|客服|你叫什么|名字"
    r"|你几岁|你会什么|你能做什么|你能干什么|(讲|说)?(个|一个)?(笑话|故事)|聊天|聊聊|无聊|测试|收到"
    r"|知道了|明白|没事|不用了|厉害|辛苦了|帮助|菜单|开始|啊+|哦+|噢+|呃+|唉+|诶+|喂+|ok"
    r"|\b(hi+|hello+|hey+|yo|hiya|howdy|good (morning|afternoon|evening|night|day)|thanks?"
    r"|thank you|thx|ty|cheers|bye+|goodbye|see you|ok|cool|great|nice|lol+|lmao|haha+|hehe+"
    r"|test|testing|who are you|what are you|are you (a |an )?(bot|robot|human|real|ai|machine"
    r"|person)|chatgpt|gpt|siri|your name|tell me a joke|a joke|joke|help|menu|start|how are you"
    r"|what can you do|never ?mind|nvm|nothing|bored|hmm+|um+|uh+|yes|no|sure|please|so much"
    r"|very much|a lot|again|there|everyone|guys|bot)\b")

# Questions about city services that are not disasters: paperwork, fines, bills, transport
# timetables, shopping, school places, entertainment. 12345 and official apps answer those.
_OFF_TOPIC = re.compile(
    r"护照|签证|居住证|暂住证|户口|落户|身份证|社保|医保卡|公积金|个税|所得税|纳税|报税|退税|罚款|违章"
    r"|驾照|驾驶证|车牌|摇号|入学|学区|招生|上小学|上幼儿园|入园|转学|学费|结婚证|离婚|营业执照|快递"
    r"|推荐\S{0,6}(餐厅|饭店|美食|火锅|好吃)|好吃的|酒店预订|订酒店|机票|火车票|高铁票|车票"
    r"|公交线路|坐几路|几路车|首班车|末班车|打车|滴滴|红包|点击链接|优惠券|彩票|股票|理财|贷款|房价"
    r"|租房|房东|押金|物业|噪音|扰民|手机卡|电话卡|话费|充值|缴费|宽带|电影|游戏|唱歌|足球|篮球"
    r"|旅游攻略|景点|门票|购物|网购|退款|找工作|招聘|工资|怎么办理|如何办理|去哪办|在哪办|营业时间"
    r"|几点开门|几点关门"
    r"|\b(passport|visa|residence permit|hukou|social (security|insurance)|income tax|tax|taxes"
    r"|parking (fine|ticket)|traffic (fine|ticket)|speeding|driving licen[cs]e|licen[cs]e plate"
    r"|school (enrol\w*|admission|registration|place|fees)|kindergarten|restaurant|hotel"
    r"|book a hotel|flight|train ticket|bus (route|number|schedule|go)|which bus|subway (map|hours"
    r"|schedule)|metro (map|hours|schedule)|taxi|didi|sim card|phone (plan|credit|bill)|top up"
    r"|mobile data|wifi|bank|exchange money|currency|stock|lottery|movie|film|song|music|football"
    r"|basketball|tourist|sightseeing|shopping|rent|landlord|deposit|marriage|divorce|recipe"
    r"|noisy|opening hours|job|salary|refund|parcel|delivery)\b")

# Forecast questions ("明天会下雨吗", "will it snow this weekend") name a weather hazard but ask
# for a forecast, not for safety advice; unless they also ask what to do, they are out of scope.
_FORECAST = re.compile(
    r"天气预报|天气怎么样|天气如何|(今天|明天|后天|这周|周末|下周|今晚|明早|这几天|最近|未来)\S{0,8}"
    r"(天气|下雨吗|下雨不|下雪吗|下雪不|会不会下|会下雨|会下雪|气温|温度|几度|多少度|冷不冷|热不热)"
    r"|\b(weather (forecast|today|tomorrow|this week|this weekend|like|be|in)|what is the weather"
    r"|how is the weather|will it (rain|snow|be (hot|cold|windy))|is it going to (rain|snow)"
    r"|temperature (today|tomorrow|this week)|how (hot|cold) (will it be|is it going to be))\b")
_ADVICE = re.compile(
    r"怎么|如何|注意|准备|应该|要不要|能不能|可以|安全|危险|防|躲|带什么|预警"
    r"|\b(how (do|to|can|should)|what (should|to do)|safe|dangerous|prepare|tips|should (i|we)"
    r"|can (i|we)|do (i|we) need|warning|alert)\b")

_EMPTY = re.compile(r"^[\s\d]*$")


@dataclass(frozen=True)
class _Scores:
    """Per-entry signals for one message, as arrays over all entries."""

    coverage: np.ndarray
    best_unit: np.ndarray
    keyword: np.ndarray
    query_weight: float


# Weights of the three signals in the final score (they sum to 1).
_W_COVERAGE, _W_UNIT, _W_KEYWORD = 0.40, 0.30, 0.30
# A message that names another city service is answered only on a match this strong
# ("小区物业不处理门口积水" still gets the hazard report).
_OFF_TOPIC_BAR = 80.0
# A keyword this heavy (sum of feature weights) counts half; heavier ones count more.
_KEYWORD_HALF = 3.0
# A message weighing more than this many typical example questions is judged on that much.
_LONG_MESSAGE = 1.5
# Answers of at most this many entries feed the background word statistics.
_BACKGROUND_ENTRIES = 500
# How much of a message (normalised characters) is matched.
_MATCH_CHARS = 400
# Below this, a candidate is not worth listing at all.
_LIST_FLOOR = 30.0
# Two candidates within this many points are a tie that a preferred entry wins.
_TIE = 3.0
# An answer needs this lead over the runner-up, or half of it this far above the threshold.
_MARGIN = 4.0
_CLEAR_LEAD = 10.0
# An urgent message is answered with its clear best topic from this score on: the numbers to
# call come first, and a long, breathless message scores low even when its topic is plain.
_URGENT_FLOOR = 30.0
# Raw scores are mapped by s -> s(1+c)/(s+100c), which takes 30 to 50 with c = 0.75.
_CALIBRATION = 0.75


class _HomophoneCorrector:
    """Undo pinyin-input slips: a character that makes no word with its neighbours is replaced
    by the homophone that makes a word the knowledge base uses (着伙 -> 着火, 地镇 -> 地震,
    地下市 -> 地下室).

    A typed sequence that is itself a word is left alone unless the knowledge-base word it sounds
    like is far more common (noisy channel: 点击 stays, 固顶 becomes 固定); the replacement must
    be a dictionary word, so accidents of the knowledge base's own text (了先) never are.
    """

    def __init__(self, grams: Iterable[str], seen: Collection[str]) -> None:
        self._words = zh_word_frequencies()
        self._seen = seen
        by_sound: dict[str, list[str]] = {}
        for gram in grams:
            if gram in self._words:
                for key in _sound_keys(gram):
                    by_sound.setdefault(key, []).append(gram)
        for options in by_sound.values():
            options.sort(key=lambda g: -self._words[g])
        self._by_sound = by_sound
        self._cache: dict[str, str] = {}

    def correct(self, run: str) -> str:
        cached = self._cache.get(run)
        if cached is not None:
            return cached
        chars = list(run)
        for n in (3, 2):
            for i in range(len(chars) - n + 1):
                fixed = self._fix_window(chars, i, n)
                if fixed is not None:
                    chars[i:i + n] = fixed
        corrected = "".join(chars)
        if len(self._cache) < _CACHE_SIZE:
            self._cache[run] = corrected
        return corrected

    def _fix_window(self, chars: list[str], i: int, n: int) -> str | None:
        typed = "".join(chars[i:i + n])
        # Function words, and anything the knowledge base writes itself, are not slips.
        if typed in ZH_STOPWORDS or f"c{n}:{typed}" in self._seen:
            return None
        typed_count = self._words.get(typed)
        if typed_count is not None and n == 3:
            return None
        for key in _sound_keys(typed):
            for gram in self._by_sound.get(key, ()):
                diff = [k for k in range(n) if gram[k] != typed[k]]
                if len(diff) != 1:
                    continue
                if typed_count is not None and self._words[gram] < _SLIP_ODDS * typed_count:
                    continue
                if self._part_of_word(chars, i + diff[0], i, n):
                    continue
                return gram
        return None

    def _part_of_word(self, chars: list[str], j: int, start: int, n: int) -> bool:
        """Whether chars[j] makes a word with a neighbour outside the window."""
        pairs = []
        if j == start and j > 0:
            pairs.append(chars[j - 1] + chars[j])
        if j == start + n - 1 and j + 1 < len(chars):
            pairs.append(chars[j] + chars[j + 1])
        return any(p in ZH_STOPWORDS or p in self._words or "c2:" + p in self._seen
                   for p in pairs)


def _sound_keys(text: str) -> list[str]:
    """Every reading of ``text`` (each character's readings combined), space-separated."""
    keys = [""]
    for ch in text:
        keys = [f"{k} {r}" if k else r for k in keys for r in pinyin(ch)]
    return keys


class Matcher:
    """Ranks entries for a message; thresholds decide answer / suggest / none."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        answer_threshold: float = 50.0,
        suggest_threshold: float = 40.0,
        max_candidates: int = 4,
    ) -> None:
        self.kb = kb
        self.answer_threshold = answer_threshold
        self.suggest_threshold = suggest_threshold
        self.max_candidates = max_candidates
        self._build(list(kb))

    # -- index -----------------------------------------------------------------------------------

    def _build(self, entries: list[Entry]) -> None:
        self._entry_ids = [e.id for e in entries]
        unit_entry: list[int] = []
        unit_kind: list[int] = []
        unit_feats: list[dict[str, float]] = []
        seen_texts: dict[str, dict[str, float]] = {}

        def features_of(text: str) -> dict[str, float]:
            if text not in seen_texts:
                seen_texts[text] = text_features(normalise(text))
            return seen_texts[text]

        for index, entry in enumerate(entries):
            for kind, texts in self._units(entry):
                for text in texts:
                    feats = features_of(text)
                    if feats:
                        unit_entry.append(index)
                        unit_kind.append(kind)
                        unit_feats.append(feats)
        # Background document frequencies: every unit and every answer sentence.
        df: Counter[str] = Counter()
        docs = 0
        for feats in unit_feats:
            df.update(feats.keys())
            docs += 1
        # The answers only provide background statistics, which a sample gives as well: a
        # city-sized knowledge base samples every n-th entry's answers to bound start-up time.
        stride = max(1, len(entries) // _BACKGROUND_ENTRIES)
        for entry in entries[::stride]:
            for lang in ("zh", "en"):
                for sentence in _sentences(entry.answer.get(lang, "")):
                    df.update(features_of(sentence).keys())
                    docs += 1
        self._idf_max = math.log((docs + 1) / 0.5)
        self._df = df
        self._docs = docs
        feature_ids: dict[str, int] = {}
        postings_u: list[list[int]] = []
        postings_e: list[list[int]] = []
        for u, feats in enumerate(unit_feats):
            owner = unit_entry[u]
            for key in feats:
                fid = feature_ids.setdefault(key, len(feature_ids))
                if fid == len(postings_u):
                    postings_u.append([])
                    postings_e.append([])
                postings_u[fid].append(u)
                # Units come entry by entry, so each entry list stays sorted and unique.
                if not postings_e[fid] or postings_e[fid][-1] != owner:
                    postings_e[fid].append(owner)
        self._feature_ids = feature_ids
        self._entry_count = len(entries)
        self._feature_weight = np.array(
            [self._weight(key) * self._specificity(len(postings_e[fid]))
             for key, fid in feature_ids.items()], dtype=np.float64)
        self._homophones = _HomophoneCorrector(
            [key[3:] for key in feature_ids if key.startswith(("c2:", "c3:"))], df)
        self._post_units = [np.array(p, dtype=np.int32) for p in postings_u]
        entry_arr = np.array(unit_entry, dtype=np.int32)
        self._post_entries = [np.array(p, dtype=np.int32) for p in postings_e]
        self._unit_entry = entry_arr
        self._unit_is_key = np.array([k != _UNIT_EXAMPLE for k in unit_kind], dtype=bool)
        self._unit_weight = np.array(
            [sum(self._feature_weight[feature_ids[k]] * v for k, v in feats.items())
             for feats in unit_feats], dtype=np.float64)
        # How specific a unit is to its entry: 1 when no other entry shares its features.
        background = np.array(
            [sum(self._weight(k) * v for k, v in feats.items()) for feats in unit_feats])
        self._unit_specificity = np.divide(
            self._unit_weight, background, out=np.zeros_like(background), where=background > 0)
        examples = self._unit_weight[~self._unit_is_key]
        self._long_message_weight = _LONG_MESSAGE * float(np.median(examples)) if len(
            examples) else math.inf
        # English vocabulary for typo correction: indexed words, and every word of the answers
        # (a real word the index lacks must not be "corrected" into a topic word).
        self._vocab = sorted(k[2:] for k in feature_ids if k.startswith("w:") and k[2:].isalpha())
        self._known_words = {k[2:] for k in df if k.startswith("w:")}
        self._typo_cache: dict[str, tuple[str, float] | None] = {}
        self._unindexed_cache: dict[str, float] = {}

    @staticmethod
    def _units(entry: Entry) -> Iterable[tuple[int, Iterable[str]]]:
        for lang in ("zh", "en"):
            yield _UNIT_TITLE, [entry.title.get(lang, "")]
            yield _UNIT_EXAMPLE, entry.examples.get(lang, ())
            yield _UNIT_KEYWORD, entry.keywords.get(lang, ())

    def _specificity(self, entries_with_feature: int) -> float:
        """1 for a feature only one entry has, falling towards 0 as more entries share it."""
        n = self._entry_count
        return math.log(1 + n / max(entries_with_feature, 1)) / math.log(1 + n)

    def _weight(self, key: str) -> float:
        idf = math.log((self._docs + 1) / (self._df.get(key, 0) + 0.5))
        return _KIND_WEIGHT[_kind(key)] * max(idf, 0.0)

    def _unindexed_weight(self, key: str) -> float:
        """How much a message feature no unit has counts against every entry.

        A word or character that no unit holds is content the knowledge base does not explain
        (tax, 签证). An n-gram never seen anywhere is usually an accident of two words written
        side by side (住30楼 -> 是住), so it counts for nothing; a typo within a word is caught by
        the pinyin and word-correction features instead.
        """
        cached = self._unindexed_cache.get(key)
        if cached is not None:
            return cached
        kind = _kind(key)
        if self._df.get(key, 0):
            weight = self._weight(key)
        else:
            weight = _KIND_WEIGHT[kind] * self._idf_max if kind in ("c1", "w") else 0.0
        if len(self._unindexed_cache) < _CACHE_SIZE:
            self._unindexed_cache[key] = weight
        return weight

    # -- query -----------------------------------------------------------------------------------

    def _correct(self, word: str) -> tuple[str, float] | None:
        """The indexed word a misspelt English word stands for, with the similarity (0-1)."""
        if word in self._typo_cache:
            return self._typo_cache[word]
        found = None
        if (_TYPO_MIN_LEN <= len(word) <= _TYPO_MAX_LEN and word.isalpha()
                and word not in self._known_words):
            # One slip in a short word is a different word (lady / lay); longer words tolerate
            # one or two.
            cutoff = 88.0 if len(word) <= 5 else 84.0 if len(word) <= 7 else _TYPO_MIN_RATIO
            best = process.extractOne(word, self._vocab, scorer=fuzz.ratio, score_cutoff=cutoff)
            if best is not None:
                found = (best[0], best[1] / 100.0)
        if len(self._typo_cache) < _CACHE_SIZE:
            self._typo_cache[word] = found
        return found

    def _query_features(self, normalised: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for run in cjk_runs(normalised):
            _zh_features(self._homophones.correct(run), out)
        words = english_words(normalised)
        confidence = [1.0] * len(words)
        for i, word in enumerate(words):
            if "w:" + word not in self._feature_ids:
                fixed = self._correct(word)
                if fixed is not None:
                    words[i], confidence[i] = fixed
        _en_features(words, out, confidence)
        return out

    def _score(self, normalised: str) -> _Scores | None:
        feats = self._query_features(normalised)
        if not feats:
            return None
        known_ids: list[int] = []
        known_w: list[float] = []
        total = 0.0
        for key, share in feats.items():
            fid = self._feature_ids.get(key)
            if fid is None:
                total += self._unindexed_weight(key) * share
                continue
            weight = float(self._feature_weight[fid]) * share
            total += weight
            if weight > 0:
                known_ids.append(fid)
                known_w.append(weight)
        if total <= 0 or not known_ids:
            return None
        lengths = [len(self._post_units[f]) for f in known_ids]
        units = np.concatenate([self._post_units[f] for f in known_ids])
        matched_u = np.bincount(units, weights=np.repeat(known_w, lengths),
                                minlength=len(self._unit_entry))
        e_lengths = [len(self._post_entries[f]) for f in known_ids]
        ents = np.concatenate([self._post_entries[f] for f in known_ids])
        matched_e = np.bincount(ents, weights=np.repeat(known_w, e_lengths),
                                minlength=len(self._entry_ids))
        hit = np.flatnonzero(matched_u)
        m = matched_u[hit]
        w = self._unit_weight[hit]
        owner = self._unit_entry[hit]
        best_unit = np.zeros(len(self._entry_ids))
        # A long message is judged on a question's worth of content: what it says beyond that
        # (where, who, since when) neither helps nor hurts.
        effective = min(total, self._long_message_weight)
        np.maximum.at(best_unit, owner, 2.0 * m / (effective + w))
        keyword = np.zeros(len(self._entry_ids))
        is_key = self._unit_is_key[hit]
        # A keyword counts by how completely it appears (squared: half a keyword is weak) and
        # by how much it weighs (a lone common character is not a topic).
        key_strength = (np.minimum(m / w, 1.0) ** 2 * self._unit_specificity[hit]
                        * (m / (m + _KEYWORD_HALF)))
        np.maximum.at(keyword, owner[is_key], key_strength[is_key])
        return _Scores(matched_e / effective, best_unit, keyword, total)

    def _combined(self, normalised: str) -> tuple[np.ndarray | None, np.ndarray]:
        """The 0-100 score of every entry for a normalised text, and the keyword signal."""
        scores = self._score(normalised)
        if scores is None:
            return None, np.zeros(len(self._entry_ids))
        raw = 100.0 * (_W_COVERAGE * np.minimum(scores.coverage, 1.0)
                       + _W_UNIT * np.minimum(scores.best_unit, 1.0)
                       + _W_KEYWORD * scores.keyword)
        # Calibrate to a readable 0-100 scale: a raw 30 (where answers start to be reliably
        # right on held-out questions) reads 50, and 100 stays 100.
        return 100.0 * raw * (1 + _CALIBRATION) / (raw + 100.0 * _CALIBRATION), scores.keyword

    def match(self, text: str, *, prefer: Collection[str] = ()) -> MatchResult:
        """Rank entries for ``text``; entries in ``prefer`` win ties (warnings in force)."""
        # A question fits in its first few hundred characters; the rest of a very long
        # message cannot change what it asks and only costs time.
        query = normalise(text[: _MATCH_CHARS * 2])[:_MATCH_CHARS]
        lang = detect_language(text[: _MATCH_CHARS * 2])
        urgent = assess(query, text[: _MATCH_CHARS * 2]).urgent
        if _EMPTY.match(query):
            return MatchResult(text, lang, urgent, "none", (), "empty")
        if not urgent and _is_small_talk(query):
            return MatchResult(text, lang, urgent, "none", (), "small_talk")
        combined, keyword = self._combined(query)
        if combined is None:
            return MatchResult(text, lang, urgent, "none", (), "low_score")
        keep = min(len(combined), max(self.max_candidates, 8))
        top = np.argsort(-combined, kind="stable")[:keep]
        ranked = [(self._entry_ids[i], float(combined[i]), float(keyword[i]))
                  for i in top if combined[i] > 0]
        ranked.sort(key=lambda r: (-r[1], r[0]))
        ranked, preferred = _prefer(ranked, prefer)
        if not urgent and _FORECAST.search(query) and not _ADVICE.search(query):
            return MatchResult(text, lang, urgent, "none", (), "off_topic")
        if (not urgent and _OFF_TOPIC.search(query)
                and (not ranked or ranked[0][1] < _OFF_TOPIC_BAR)):
            return MatchResult(text, lang, urgent, "none", (), "off_topic")
        candidates = tuple(Candidate(i, round(min(s, 100.0), 1)) for i, s, _ in ranked
                           if s >= _LIST_FLOOR)[: self.max_candidates]
        decision, reason = self._decide(candidates, urgent, preferred)
        return MatchResult(text, lang, urgent, decision, candidates, reason)

    def _decide(self, candidates: tuple[Candidate, ...], urgent: bool,
                preferred: bool) -> tuple[Decision, str]:
        if not candidates:
            return "none", "low_score"
        top = candidates[0].score
        others = [c.score for c in candidates[1:]]
        # A preference (a warning in force) settles a near tie; otherwise the lead must be clear.
        runner_up = 0.0 if preferred or not others else max(others)
        if urgent and top >= _URGENT_FLOOR and top - runner_up >= _MARGIN:
            # The numbers come first anyway; the best topic's advice beats a "did you mean".
            return "answer", "match"
        if top >= self.answer_threshold:
            lead = top - runner_up
            if lead >= _MARGIN or (top >= self.answer_threshold + _CLEAR_LEAD
                                   and lead >= _MARGIN / 2):
                return "answer", "match"
            return "suggest", "ambiguous"
        if top >= self.suggest_threshold:
            return "suggest", "low_score"
        return "none", "low_score"


def _prefer(ranked: list[tuple[str, float, float]],
            prefer: Collection[str]) -> tuple[list[tuple[str, float, float]], bool]:
    """Move a preferred entry ahead of better-scored ones it is tied with (within _TIE).

    Returns the new order and whether a preference decided the top place.
    """
    if not prefer or not ranked:
        return ranked, False
    best = ranked[0][1]
    tied = [r for r in ranked if best - r[1] <= _TIE]
    chosen = [r for r in tied if r[0] in prefer]
    if not chosen:
        return ranked, False
    lead = chosen[0]
    return [lead, *(r for r in ranked if r is not lead)], True


def _is_small_talk(normalised: str) -> bool:
    """Greetings, thanks and chit-chat with at most one stray content word ("讲个笑话")."""
    rest = _SMALL_TALK.sub(" ", normalised)
    if rest == normalised:
        return False
    words = [w for w in latin_words(rest) if w not in EN_STOPWORDS and len(w) > 1]
    chars = [c for run in cjk_runs(rest) for c in run if c not in ZH_STOPWORDS]
    content = len(words) + len(chars)
    removed = len(normalised.replace(" ", "")) - len(rest.replace(" ", ""))
    return content == 0 or (content == 1 and removed >= len(rest.replace(" ", "")))


_SENTENCE_END = re.compile(r"[。！？!?；;\n]+|(?<=[a-z])\.\s")


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]
