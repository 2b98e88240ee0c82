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
keyword is plainly in the message. In an urgent message the phrases that state the emergency
("collapsed", "not breathing", "被困在") count half as much again as the rest, which is mostly
where and who; its clear best topic is answered from a lower score (the numbers to call come
first either way).

Speed
-----
Features are integers (:mod:`quickresponse.features`), computed for the whole knowledge base in
a few array operations over the distinct texts (entries share titles and keywords, and a text
that several units share is featurised and posted once). The index is a set of compressed sparse
lists: feature -> texts, feature -> entries, text -> entries. Per message the work is a handful of
array operations over those lists (numpy ``bincount``), never a Python loop over all units or all
features, so it scales to thousands of entries; the homophone check looks closely only at the
few windows of a message that sound like a word the knowledge base uses.
"""

from __future__ import annotations

import gc
import importlib
import math
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import product
from types import ModuleType
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from quickresponse.features import (
    C1,
    C2,
    C3,
    KIND_SHIFT,
    KIND_WEIGHT,
    READING_BITS,
    READINGS,
    Features,
    Vocabulary,
    W,
    bigram_key,
    chinese_features,
    chinese_features_of,
    chinese_key,
    distinct,
    kind_of,
    member,
    pack_sound,
    word_key,
)
from quickresponse.knowledge import Entry, KnowledgeBase
from quickresponse.textnorm import (
    EN_STOPWORDS,
    ZH_STOPWORDS,
    cjk_runs,
    content_stem,
    detect_language,
    latin_words,
    normalise,
    normalise_many,
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

_UNIT_TITLE, _UNIT_EXAMPLE, _UNIT_KEYWORD = 0, 1, 2
# An entry's units in groups: (language, kind), in this order.
_UNIT_GROUPS = tuple((lang, kind) for lang in ("zh", "en")
                     for kind in (_UNIT_TITLE, _UNIT_EXAMPLE, _UNIT_KEYWORD))
# An English word unknown to the knowledge base is corrected to an indexed word this similar.
_TYPO_MIN_RATIO = 80.0
_TYPO_MIN_LEN = 5
_TYPO_MAX_LEN = 24
# A word as typed is also compared with the words as the knowledge base spells them: this many
# letters at least, the same first letter (slips rarely hit it), and one edit, a swap of two
# neighbours included (fier, hosue, drivng), or two from this length on.
_SPELLING_MIN_LEN = 4
_SPELLING_TWO_EDITS = 8
# Entries kept in each per-matcher memo (typo corrections, homophone fixes).
_CACHE_SIZE = 50_000
# A typed Chinese word is taken for a slip of a homophone this many times more common.
_SLIP_ODDS = 5
# Chinese text longer than this (characters) is featurised and checked for slips with array
# operations; shorter text, most messages, a character at a time, which is cheaper there.
_ARRAYS_FROM = 48


# ---- out of scope ------------------------------------------------------------------------------

# Greetings, thanks, questions about the bot itself and chit-chat. A message made only of these
# (and stop words) is small talk.
_SMALL_TALK = re.compile(
    r"你好|您好|哈喽|嗨|在吗|在不在|有人吗|早上好|早安|中午好|下午好|晚上好|晚安|谢谢|多谢|感谢|谢了"
    r"|再见|拜拜|好的|好吧|嗯+|哈+|呵+|嘿+|你是谁|你是机器人|机器人|你是人|真人|人工|客服|你叫什么|名字"
    r"|你几岁|你会什么|你能做什么|你能干什么|(讲|说)?(个|一个)?(笑话|故事)|聊天|聊聊|无聊|测试|收到"
    r"|知道了|明白|没事|不用了|厉害|辛苦了|帮助|菜单|开始|啊+|哦+|噢+|呃+|唉+|诶+|喂+|ok"
    r"|早晨|几点了|现在几点|(今天|明天|昨天)?是?(星期几|礼拜几|几月几号|几号)|吃饭了吗|吃饭没|吃了饭未"
    r"|吃了饭没|吃了吗"
    r"|\b(hi+|hello+|hey+|yo|hiya|howdy|good (morning|afternoon|evening|night|day)|thanks?"
    r"|thank you|thx|ty|cheers|bye+|goodbye|see you|ok|cool|great|nice|lol+|lmao|haha+|hehe+"
    r"|test|testing|who are you|what are you|are you (a |an )?(bot|robot|human|real|ai|machine"
    r"|person)|chatgpt|gpt|siri|your name|tell me a joke|a joke|joke|help|menu|start|how are you"
    r"|what can you do|never ?mind|nvm|nothing|bored|hmm+|um+|uh+|yes|no|sure|please|so much"
    r"|very much|a lot|again|there|everyone|guys|bot|what time is it|what is the time"
    r"|what day is it|what is the date|how old are you|where are you from|are you there)\b")

# Questions about city services that are not disasters: paperwork, fines, bills, transport
# timetables, shopping, school places, entertainment. 12345 and official apps answer those.
_OFF_TOPIC = re.compile(
    r"护照|签证|居住证|暂住证|户口|落户|身份证|社保|医保卡|公积金|个税|所得税|纳税|报税|退税|罚款|违章"
    r"|驾照|驾驶证|车牌|摇号|入学|学区|招生|上小学|上幼儿园|入园|转学|学费|结婚证|离婚|营业执照|快递"
    r"|推荐\S{0,6}(餐厅|饭店|美食|火锅|好吃)|好吃的|酒店预订|订酒店|机票|火车票|高铁票|车票"
    r"|公交线路|坐几路|几路车|首班车|末班车|打车|滴滴|红包|点击链接|优惠券|彩票|股票|理财|贷款|房价"
    r"|租房|押金|物业|噪音|扰民|手机卡|电话卡|话费|充值|缴费|宽带|电影|游戏|唱歌|球赛|足球赛|篮球赛"
    r"|旅游攻略|景点|门票|购物|网购|退款|找工作|招聘|工资|怎么办理|如何办理|去哪办|在哪办|营业时间"
    r"|几点开门|几点关门|收车|运营时间|好玩|股市|股价|大盘|上证|深证|恒指|恒生|比特币|汇率"
    r"|苹果手机|iphone"
    r"|\b(passport|visa|residence permit|hukou|social (security|insurance)|income tax|tax|taxes"
    r"|parking (fine|ticket)|traffic (fine|ticket)|speeding|driving licen[cs]e|licen[cs]e plate"
    r"|school (enrol\w*|admission|registration|place|fees)|kindergarten|restaurant|hotel"
    r"|book a hotel|flight|train ticket|bus (route|number|schedule|go)|which bus|subway (map|hours"
    r"|schedule)|metro (map|hours|schedule)|taxi (fare|app|rank)|(call|book|get|order) a taxi|didi"
    r"|sim card|phone (plan|credit|bill)|top up"
    r"|mobile data|wifi|bank|exchange money|currency|stocks|lottery|movie|film|song|music"
    r"|(football|basketball) (match|game|team|score|scores|results|tickets)|tourist|sightseeing"
    r"|shopping|the rent|pay rent"
    r"|rental|deposit|marriage|divorce|recipes?"
    r"|noisy|opening hours|jobs?|salary|refund|parcel|delivery (fee|time|status|tracking)"
    r"|stock market|share price|bitcoin"
    r"|crypto|exchange rate|iphone)\b")

# Questions the safety advice does not answer, however many topic words they hold: prices,
# brands and shops (便宜的电动车, 灭火器多少钱), bills and fees (停车费, 电费余额), insurance
# products, songs and shows, sport results, homework, exam and trivia questions (台风名字是谁取的,
# 沙尘暴怎么形成的), translations, jokes, pets, relationships and office talk. They are out of
# scope unless an entry matches very strongly.
_NOT_ADVICE = re.compile(
    # prices, brands and shops
    r"便宜|最平|性价比|多少钱|价格|价钱|京东|淘宝|拼多多|哪个牌子|什么牌子|抵买|值得买|网上买|省电|省钱"
    # bills, fees and insurance products
    r"|停车费|电费|水费|燃气费|暖气费|物业费|余额|车险|寿险|旅游险|旅行险"
    # songs, shows, sport, school, trivia, language
    r"|这首歌|歌词|谁唱|电视剧|综艺|小说|比分|写作业|家庭作业|作业题|功课|论文|考试|高考|物理题|数学题"
    r"|谁(取|起|发明|命名)的|名字是谁|名字由谁|怎么形成|如何形成|形成的|成因|这个词|英文怎么说"
    r"|英语怎么说|怎么翻译|笑话"
    # pets, relationships, excuses
    r"|兽医|宠物医院|鱼缸|脾气|男朋友|女朋友|谈恋爱|找借口|借口|网红|人气火爆|烤串|才旺"
    r"|\b(cheap|cheaper|cheapest|bargain|price|prices|how much (is|are|does|do) .{1,30} cost"
    r"|which brand|best brand|worth buying"
    r"|travel insurance|car insurance|life insurance|health insurance"
    r"|lyrics|album|tv (show|series)|game|games|won the|who won|meme|memes|character"
    r"|characters|homework|essay|exam question|exam paper|exams|hard to pass|quiz|who names"
    r"|named after|fire up|\d+ (yuan|rmb|kuai)"
    r"|how (is|are) (a |an )?\w+ formed|history of|how do you say|translate|translation|jokes?"
    r"|vet|vets|veterinary|sales|motivate|kpi|minecraft|frostpunk|roblox|in the game|repot"
    r"|repotting|houseplant)\b")

# Forecast questions ("明天会下雨吗", "will it snow this weekend") name a weather hazard but ask
# for a forecast, not for safety advice; unless they also ask what to do, they are out of scope.
_FORECAST = re.compile(
    r"天气预报|天气怎么样|天气如何|(今天|明天|后天|这周|周末|下周|今晚|明早|这几天|最近|未来)\S{0,8}"
    r"(天气|下雨吗|下雨不|下雪吗|下雪不|会不会下|会下雨|会下雪|气温|温度|几度|多少度|冷不冷|热不热"
    r"|会不会(下|刮|有)?\S{0,2}(雨|雪|风|冰雹|雾霾|沙尘|冷|热)|有(暴雨|大风|台风|冰雹|雾霾|沙尘暴?)吗"
    r"|(很|好)?(冷|热)吗|空气(质量)?(怎么样|好吗|好不好))"
    r"|\b(weather (forecast|today|tomorrow|this week|this weekend|like|be|in)|what is the weather"
    r"|how is the weather|will it (rain|snow|storm|be (hot|cold|windy|stormy))"
    r"|is it going to (rain|snow|storm|be (hot|cold|windy|stormy))"
    r"|will there be (a |an )?(typhoon|storm|rainstorm|sandstorm|snowstorm|hail)"
    r"|air quality (today|tomorrow|this week)"
    r"|temperature (today|tomorrow|this week)|how (hot|cold) (will it be|is it going to be))\b")
# A sick or hurt animal is a question for a vet, whatever disease or injury it names.
_ANIMAL = re.compile(
    r"(狗|猫|宠物|鹦鹉|兔子|仓鼠)\S{0,3}(发烧|生病|感冒|拉肚子|腹泻|呕吐|吐了|不吃|咳嗽|中暑|受伤)"
    r"|\b(dog|cat|puppy|kitten|pet|hamster|rabbit|parrot)s? (has|is|got|keeps|will not|seems)"
    r" (a |an )?(fever|sick|ill|vomit\w*|diarrh\w*|cough\w*|not eating|injured|hurt)")
# Sums: "12345 + 1", "2 plus 2", "99乘以99等于多少" (a hotline number in a sum is not a call
# for it). Signs are read in the message as typed (folding drops them); "-" and "/" are left
# out, being in phone numbers and lists of numbers (010-12345, 110/119).
_SUM_SIGNS = re.compile(r"\d\s*[+*×÷=＋＝]\s*\d")
_SUM_WORDS = re.compile(
    r"\d+ ?(plus|minus|times|divided by|multiplied by|加上?|减去?|乘以?|除以) ?\d+|等于(几|多少)"
    r"|\bequals?\b")
_ADVICE = re.compile(
    r"怎么(?!样)|如何|注意|准备|应该|要不要|要\S{0,4}吗|能不能|可以|安全|危险|防|躲|带什么|预警"
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


# In an urgent message, the features of the phrases stating the emergency count this much more.
_STATEMENT_EXTRA = 0.5
# Weights of the three signals in the final score (they sum to 1).
_W_COVERAGE, _W_UNIT, _W_KEYWORD = 0.40, 0.30, 0.30
# A message that names another city service is answered only on a match this strong
# ("小区物业不处理门口积水" still gets the hazard report).
_OFF_TOPIC_BAR = 80.0
# ... and a message that asks for prices, fees, songs or trivia (_NOT_ADVICE) below this.
_NOT_ADVICE_BAR = 90.0
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

    def __init__(self, grams: Iterable[tuple[str, int]], seen: Collection[int]) -> None:
        """``grams``: dictionary words the index holds, with their frequency; ``seen``: every
        c2/c3 feature of the knowledge base (units and answers)."""
        self._words = zh_word_frequencies()
        self._seen = seen
        by_sound: dict[tuple[int, ...], list[str]] = {}
        # Most common first; equally common ones in a fixed order, whatever the entry order.
        for gram, _ in sorted(grams, key=lambda g: (-g[1], g[0])):
            for key in READINGS.sound_keys(gram):
                by_sound.setdefault(key, []).append(gram)
        self._by_sound = by_sound
        # The sounds as integers, per length, to pick out the few windows of a message that
        # sound like a knowledge-base word in one array operation.
        self._sounds = {n: np.array(sorted(pack_sound(k) for k in by_sound if len(k) == n),
                                    dtype=np.int64) for n in (2, 3)}
        self._cache: dict[str, str] = {}

    def correct(self, run: str) -> str:
        cached = self._cache.get(run)
        if cached is not None:
            return cached
        chars = list(run)
        for n in (3, 2):
            start = 0
            # Windows are fixed left to right, each seeing the fixes before it.
            while (fixed_at := self._fix_next(chars, n, start)) is not None:
                start = fixed_at + 1
        corrected = "".join(chars)
        if len(self._cache) < _CACHE_SIZE:
            self._cache[run] = corrected
        return corrected

    def _fix_next(self, chars: list[str], n: int, start: int) -> int | None:
        """Fix the first slip of ``n`` characters from ``start`` on; where it was, or None."""
        for i in self._sound_alike(chars, n, start):
            fixed = self._fix_window(chars, i, n)
            if fixed is not None:
                chars[i:i + n] = fixed
                return i
        return None

    def _sound_alike(self, chars: list[str], n: int, start: int) -> list[int]:
        """Where a window of ``n`` characters, from ``start`` on, sounds like an indexed word."""
        if len(chars) - start > _ARRAYS_FROM:
            return self._sound_alike_arrays(chars, n, start)
        by_sound = self._by_sound
        readings = [READINGS.of_char(ch) for ch in chars[start:]]
        return [start + i for i in range(len(readings) - n + 1)
                if any(key in by_sound for key in product(*readings[i:i + n]))]

    def _sound_alike_arrays(self, chars: list[str], n: int, start: int) -> list[int]:
        """:meth:`_sound_alike` in array operations, for long runs."""
        sounds = self._sounds[n]
        windows = len(chars) - start - n + 1
        if windows <= 0 or not len(sounds):
            return []
        first, second, count = READINGS.of(
            np.fromiter(map(ord, chars[start:]), dtype=np.int64, count=len(chars) - start))
        # Every combination of readings of every window at once: axis k of ``code`` chooses
        # the first or second reading of the window's k-th character.
        code = np.zeros((1,) * n + (windows,), dtype=np.int64)
        present = np.ones((1,) * n + (windows,), dtype=bool)
        for k in range(n):
            shape = (1,) * k + (2,) + (1,) * (n - k - 1) + (windows,)
            readings = np.stack((first[k:k + windows], np.maximum(second[k:k + windows], 0)))
            has = np.stack((np.ones(windows, dtype=bool), count[k:k + windows] == 2))
            code = (code << READING_BITS) | readings.reshape(shape)
            present = present & has.reshape(shape)
        alike = (present & member(sounds, code.reshape(-1)).reshape(code.shape)).reshape(
            -1, windows).any(axis=0)
        return (np.flatnonzero(alike) + start).tolist()

    def _fix_window(self, chars: list[str], i: int, n: int) -> str | None:
        typed = "".join(chars[i:i + n])
        # Function words, and anything the knowledge base writes itself, are not slips.
        if typed in ZH_STOPWORDS or chinese_key(typed) in self._seen:
            return None
        typed_count = self._words.get(typed)
        if typed_count is not None and n == 3:
            return None
        for key in READINGS.sound_keys(typed):
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
        """Whether chars[j] makes a word with one or two neighbours outside the window (烟冲上来
        is 烟 + 冲上来, not a slip of 烟囱)."""
        pairs, triples = [], []
        if j == start and j > 0:
            pairs.append(chars[j - 1] + chars[j])
            triples.append("".join(chars[max(j - 2, 0):j + 1]))
        if j == start + n - 1 and j + 1 < len(chars):
            pairs.append(chars[j] + chars[j + 1])
            triples.append("".join(chars[j:j + 3]))
        return (any(p in ZH_STOPWORDS or p in self._words or chinese_key(p) in self._seen
                    for p in pairs)
                or any(len(t) == 3 and t in self._words for t in triples))


def _numpy_multiarray() -> ModuleType | None:
    """numpy's C core module (``numpy._core`` from numpy 2, ``numpy.core`` before)."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_NUMPY_MULTIARRAY = _numpy_multiarray()


@contextmanager
def _build_conditions() -> Iterator[None]:
    """What the index build runs under, put back as it was afterwards.

    * Python's cyclic garbage collector is paused: building makes millions of short-lived
      strings and lists, none of them in reference cycles; the collector would walk all of them
      again and again (a fifth of the build time for ten thousand entries).
    * numpy does not ask the kernel for transparent huge pages: it does for every large array,
      and where the kernel then compacts memory on the spot (``defrag`` set to ``madvise``, the
      common default), the build's hundreds of megabytes of short-lived arrays spent more time
      in the kernel than in numpy (10,000 entries: 4.4-4.6 s with the advice, 3.9 s without).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    set_advice = getattr(_NUMPY_MULTIARRAY, "_set_madvise_hugepage", None)
    advised = set_advice(False) if set_advice is not None else None
    try:
        yield
    finally:
        if set_advice is not None:
            set_advice(bool(advised))
        if was_enabled:
            gc.enable()


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices start..start+length-1 of every (start, length), one after the other."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total)


@dataclass(frozen=True)
class _Lists:
    """Sorted lists of integers, one per row (compressed sparse rows)."""

    pointers: np.ndarray
    values: np.ndarray

    @staticmethod
    def of_pairs(rows: np.ndarray, values: np.ndarray, n_rows: int, n_values: int) -> _Lists:
        """Each row's distinct values, from (row, value) pairs in any order with repeats."""
        bits = max(n_values - 1, 1).bit_length()
        pairs = distinct((rows << bits) | values)
        return _Lists(_pointers(pairs >> bits, n_rows), pairs & ((1 << bits) - 1))

    def join(self, other: _Lists) -> _Lists:
        """Each row's list followed by the same row of ``other``."""
        pointers = self.pointers + other.pointers
        values = np.empty(len(self.values) + len(other.values), dtype=self.values.dtype)
        for lists, before in ((self, 0), (other, np.diff(self.pointers))):
            lengths = np.diff(lists.pointers)
            values[_ranges(pointers[:-1] + before, lengths)] = lists.values
        return _Lists(pointers, values)

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lists of ``rows`` one after the other, and the length of each."""
        starts = self.pointers[rows]
        lengths = self.pointers[rows + 1] - starts
        return self.values[_ranges(starts, lengths)], lengths


class _Owners:
    """Which entries each text belongs to: most texts belong to one entry (an array says which);
    the rest (a title or keyword several entries share) have lists."""

    def __init__(self, docs: np.ndarray, entries: np.ndarray, n_docs: int, n_entries: int) -> None:
        lists = _Lists.of_pairs(docs, entries, n_docs, n_entries)
        counts = np.diff(lists.pointers)
        alone = counts == 1
        self._single = np.full(n_docs, -1, dtype=np.int64)
        self._single[alone] = lists.values[lists.pointers[:-1][alone]]
        self._shared = counts > 1
        self._any_shared = bool(self._shared.any())
        self._lists = lists

    def pairs(self, rows: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each (row, doc) pair as (row, entry) pairs, one per entry of the doc."""
        owner = self._single[docs]
        alone = owner >= 0
        if not self._any_shared:
            return rows[alone], owner[alone]
        shared = np.flatnonzero(self._shared[docs])
        holders, lengths = self._lists.gather(docs[shared])
        return (np.concatenate((rows[alone], np.repeat(rows[shared], lengths))),
                np.concatenate((owner[alone], holders)))

    def best(self, docs: np.ndarray, values: np.ndarray, n_entries: int) -> np.ndarray:
        """Per entry, the largest of ``values`` over its ``docs`` (0 where none; ``values`` are
        never negative)."""
        out = np.zeros(n_entries)
        owner = self._single[docs]
        alone = owner >= 0
        np.maximum.at(out, owner[alone], values[alone])
        if self._any_shared:
            shared = np.flatnonzero(self._shared[docs])
            if len(shared):
                holders, lengths = self._lists.gather(docs[shared])
                np.maximum.at(out, holders, np.repeat(values[shared], lengths))
        return out


def _pointers(sorted_rows: np.ndarray, n_rows: int) -> np.ndarray:
    pointers = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(sorted_rows, minlength=n_rows), out=pointers[1:])
    return pointers


def _dictionary_words(keys: np.ndarray, kinds: np.ndarray) -> list[tuple[str, int]]:
    """The c2/c3 features among ``keys`` that are dictionary words, as text, with frequency."""
    words = zh_word_frequencies()
    out: list[tuple[str, int]] = []
    for n in (2, 3):
        codes = keys[kinds == n] & ((1 << KIND_SHIFT) - 1)
        counts = words.frequencies(codes, n)
        for code, count in zip(codes[counts > 0].tolist(), counts[counts > 0].tolist(),
                               strict=True):
            out.append(("".join(chr((code >> (16 * (n - 1 - k))) & 0xFFFF) for k in range(n)),
                        count))
    return out


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
        with _build_conditions():
            self._build(list(kb))

    # -- index -----------------------------------------------------------------------------------

    def _build(self, entries: list[Entry]) -> None:
        """Index every unit (title, example question, keyword) by its features, as arrays.

        Work is per distinct text, not per unit: a text that several entries share (clones of a
        topic, a keyword used twice) is featurised and posted once and points at its entries.
        """
        self._entry_ids = [e.id for e in entries]
        n_entries = len(entries)
        unit_text: list[str] = []
        # Units come in groups (an entry's examples in one language, ...): the size of each
        # group, and each group's entry, kind and language are repeated over it afterwards.
        group_size: list[int] = []
        for entry in entries:
            for texts in self._unit_groups(entry):
                count = len(unit_text)
                unit_text.extend(texts)
                group_size.append(len(unit_text) - count)
        sizes = np.array(group_size, dtype=np.int64)
        groups = len(_UNIT_GROUPS)
        unit_entry = np.repeat(np.arange(len(sizes), dtype=np.int64) // groups, sizes)
        unit_is_key = np.repeat(np.tile(
            [kind != _UNIT_EXAMPLE for _, kind in _UNIT_GROUPS], n_entries), sizes)
        unit_is_chinese = np.repeat(np.tile(
            [lang == "zh" for lang, _ in _UNIT_GROUPS], n_entries), sizes)
        # The answers only provide background statistics, which a sample gives as well: a
        # city-sized knowledge base samples every n-th entry's answers to bound start-up time.
        stride = max(1, n_entries // _BACKGROUND_ENTRIES)
        answers = [entry.answer.get(lang, "") for entry in entries[::stride]
                   for lang in ("zh", "en")]
        # Entries may share an answer: each is cut into sentences once.
        cut = {answer: _sentences(answer) for answer in dict.fromkeys(answers)}
        sentences = [sentence for answer in answers for sentence in cut[answer]]
        # Texts as typed, then as folded: several typed forms may fold to one text (a "doc").
        raw = list(dict.fromkeys([*unit_text, *sentences]))
        folded = normalise_many(raw)
        docs = list(dict.fromkeys(folded))
        doc_number = dict(zip(docs, range(len(docs)), strict=True))
        doc_of = dict(zip(raw, map(doc_number.__getitem__, folded), strict=True))
        n_docs = len(docs)
        vocabulary = Vocabulary()
        # Most texts of a knowledge base are English (ASCII): only the others have Chinese.
        chinese_docs = np.array([i for i, text in enumerate(docs) if not text.isascii()],
                                dtype=np.int64)
        chinese = chinese_features("\n".join([docs[i] for i in chinese_docs.tolist()]))
        pairs = Features.concat(
            [Features(chinese_docs[chinese.doc], chinese.key, chinese.value),
             vocabulary.english_features("\n".join(docs))]).merged()

        # A unit with no features (an empty title) is no unit at all.
        units_doc = np.fromiter(map(doc_of.__getitem__, unit_text), dtype=np.int64,
                                count=len(unit_text))
        real = (np.bincount(pairs.doc, minlength=n_docs) > 0)[units_doc]
        units_doc = units_doc[real]
        units_entry = unit_entry[real]
        units_key = unit_is_key[real]
        units_chinese = unit_is_chinese[real]
        sentence_doc = np.fromiter(map(doc_of.__getitem__, sentences), dtype=np.int64,
                                   count=len(sentences))
        in_units = np.bincount(units_doc, minlength=n_docs)

        # Background document frequencies: every unit and every sampled answer sentence.
        # (Rows come ordered by feature, then by text.)
        first_of_key = np.concatenate(([True], pairs.key[1:] != pairs.key[:-1]))
        keys = pairs.key[first_of_key]
        key_of_pair = np.cumsum(first_of_key) - 1
        n_keys = len(keys)
        counted = in_units + np.bincount(sentence_doc, minlength=n_docs)
        df = np.bincount(key_of_pair, weights=counted[pairs.doc], minlength=n_keys)
        n_background = len(units_doc) + len(sentence_doc)
        self._idf_max = math.log((n_background + 1) / 0.5)
        # What a character or word no unit holds weighs, by kind of feature.
        self._unseen_weight = np.zeros(len(KIND_WEIGHT))
        self._unseen_weight[[C1, W]] = KIND_WEIGHT[[C1, W]] * self._idf_max
        weight = KIND_WEIGHT[kind_of(keys)] * np.maximum(
            np.log((n_background + 1) / (df + 0.5)), 0.0)

        # The index proper: features of the units' texts.
        in_index = in_units[pairs.doc] > 0
        doc, key, value = pairs.doc[in_index], key_of_pair[in_index], pairs.value[in_index]
        indexed = np.bincount(key, minlength=n_keys) > 0
        self._owners = _Owners(units_doc, units_entry, n_docs, n_entries)
        self._key_owners = _Owners(units_doc[units_key], units_entry[units_key], n_docs,
                                   n_entries)
        feature_key, feature_entry = self._owners.pairs(key, doc)
        feature_entries = _Lists.of_pairs(feature_key, feature_entry, n_keys, n_entries)
        # One list per feature: the texts that have it, then (numbered after the texts) the
        # entries that have it, so that one gather and one bincount serve both.
        self._postings = _Lists(_pointers(key, n_keys), doc).join(
            _Lists(feature_entries.pointers, n_docs + feature_entries.values))
        # How specific a feature is: 1 for a feature only one entry has, falling towards 0 as
        # more entries share it.
        sharing = np.maximum(np.diff(feature_entries.pointers), 1)
        specificity = np.log1p(n_entries / sharing) / max(math.log1p(n_entries), 1e-12)
        self._keys = keys
        self._indexed = indexed
        # What a message's feature weighs: indexed ones count by specificity too.
        self._key_weight = np.where(indexed, weight * specificity, weight)
        self._doc_weight = np.bincount(doc, weights=self._key_weight[key] * value,
                                       minlength=n_docs)
        # How specific a unit is to its entry: 1 when no other entry shares its features.
        background = np.bincount(doc, weights=weight[key] * value, minlength=n_docs)
        self._doc_specificity = np.divide(self._doc_weight, background,
                                          out=np.zeros(n_docs), where=background > 0)
        self._doc_inverse_weight = np.divide(1.0, self._doc_weight, out=np.zeros(n_docs),
                                             where=self._doc_weight > 0)
        self._n_docs = n_docs
        # A typical question's weight: the median example question of both scripts, or of the
        # message's own script where that is less. English words weigh about half what the
        # Chinese n-grams saying the same weigh, so against the joint figure an English message
        # counted as long only past about two and a half typical English questions, and long,
        # breathless English messages were diluted by all their background. (Chinese messages
        # keep the joint figure the thresholds were tuned with.)
        examples = ~units_key
        overall = float(np.median(self._doc_weight[units_doc[examples]])) if examples.any() else (
            math.inf)
        self._question_weight = {}
        for chinese in (True, False):
            chosen = units_doc[examples & (units_chinese == chinese)]
            own = float(np.median(self._doc_weight[chosen])) if len(chosen) else overall
            self._question_weight[chinese] = min(own, overall)

        kinds = kind_of(keys)
        chinese_grams = (kinds == C2) | (kinds == C3)
        self._homophones = _HomophoneCorrector(
            _dictionary_words(keys[chinese_grams & indexed], kinds[chinese_grams & indexed]),
            set(keys[chinese_grams].tolist()))
        # English vocabulary for typo correction: indexed words, and every word of the answers
        # (a real word the index lacks must not be "corrected" into a topic word).
        self._vocabulary = vocabulary
        word_ids = (keys[(kinds == W) & indexed] & ((1 << KIND_SHIFT) - 1)).tolist()
        self._indexed_words = {vocabulary.words[i] for i in word_ids}
        # How many texts use each indexed word: of two words a slip away, the common one.
        self._word_count = dict(zip((vocabulary.words[i] for i in word_ids),
                                    df[(kinds == W) & indexed].tolist(), strict=True))
        vocab = sorted(w for w in self._indexed_words if w.isalpha())
        self._vocab_by_length: dict[int, tuple[list[str], list[int]]] = {}
        for position, word in enumerate(vocab):
            words, positions = self._vocab_by_length.setdefault(len(word), ([], []))
            words.append(word)
            positions.append(position)
        self._known_words = set(vocabulary.ids)
        self._typo_cache: dict[str, tuple[str, float] | None] = {}
        self._spellings: dict[str, list[str]] = {}
        self._spelling_stem: dict[str, str] = {}
        for token, number in sorted(vocabulary.typed().items()):
            word = vocabulary.words[number]
            if word in self._indexed_words and token.isalpha() and len(token) >= 3:
                self._spellings.setdefault(token[0], []).append(token)
                self._spelling_stem[token] = word
        self._spelling_cache: dict[str, tuple[str, float] | None] = {}

    @staticmethod
    def _unit_groups(entry: Entry) -> tuple[Iterable[str], ...]:
        """The entry's texts in the order of _UNIT_GROUPS."""
        title, examples, keywords = entry.title, entry.examples, entry.keywords
        return ((title.get("zh", ""),), examples.get("zh", ()), keywords.get("zh", ()),
                (title.get("en", ""),), examples.get("en", ()), keywords.get("en", ()))

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
            best: tuple[str, float, int] | None = None
            # The most similar indexed word (the first in the vocabulary on a tie), looked for
            # only among words whose length allows the similarity asked for.
            for length, (words, positions) in self._vocab_by_length.items():
                if 100.0 * (1.0 - abs(length - len(word)) / (length + len(word))) < cutoff:
                    continue
                hit = process.extractOne(word, words, scorer=fuzz.ratio,
                                         score_cutoff=best[1] if best else cutoff)
                if hit is not None and (best is None or hit[1] > best[1] or (
                        hit[1] == best[1] and positions[hit[2]] < best[2])):
                    best = (hit[0], hit[1], positions[hit[2]])
            if best is not None:
                found = (best[0], best[1] / 100.0)
        if len(self._typo_cache) < _CACHE_SIZE:
            self._typo_cache[word] = found
        return found

    def _respell(self, typed: str) -> tuple[str, float] | None:
        """The indexed word a misspelt English word stands for, found by comparing the word as
        typed with the words as the knowledge base spells them, with the similarity (0-1)."""
        if typed in self._spelling_cache:
            return self._spelling_cache[typed]
        found = None
        if (_SPELLING_MIN_LEN <= len(typed) <= _TYPO_MAX_LEN and typed.isalpha()
                and content_stem(typed) not in self._known_words):
            edits = 1 if len(typed) < _SPELLING_TWO_EDITS else 2
            hits = process.extract(typed, self._spellings.get(typed[0], ()), scorer=OSA.distance,
                                   score_cutoff=edits, limit=None)
            if hits:
                fewest = min(hit[1] for hit in hits)
                stems = {self._spelling_stem[hit[0]] for hit in hits if hit[1] == fewest}
                # Of several words as near, the one the knowledge base uses most (gass: gas,
                # not glass); two used as often are a guess either way, so neither.
                counts = sorted(((self._word_count[w], w) for w in stems), reverse=True)
                if len(counts) == 1 or counts[0][0] > counts[1][0]:
                    found = (counts[0][1], 1.0 - fewest / len(typed))
        if len(self._spelling_cache) < _CACHE_SIZE:
            self._spelling_cache[typed] = found
        return found

    def _query_features(self, normalised: str) -> tuple[np.ndarray, np.ndarray]:
        """The message's distinct features and the confidence each was seen with (typo fixes
        count less than 1)."""
        runs = [self._homophones.correct(run) for run in cjk_runs(normalised)]
        typed = [w for w in latin_words(normalised) if content_stem(w) is not None]
        words = [content_stem(w) or w for w in typed]
        confidence = [1.0] * len(words)
        for i, word in enumerate(words):
            if word not in self._indexed_words:
                fixed = self._correct(word) or self._respell(typed[i])
                if fixed is not None:
                    words[i], confidence[i] = fixed
        # Words the knowledge base never uses get numbers of their own, for this message only.
        known = self._vocabulary.ids
        unknown: dict[str, int] = {}
        ids = [known.get(w) if w in known else unknown.setdefault(w, len(known) + len(unknown))
               for w in words]
        features: dict[int, float] = {}
        for i, word_id in enumerate(ids):
            single = word_key(word_id)
            features[single] = max(features.get(single, 0.0), confidence[i])
            if i + 1 < len(ids):
                pair = bigram_key(word_id, ids[i + 1])
                features[pair] = max(features.get(pair, 0.0),
                                     min(confidence[i], confidence[i + 1]))
        if sum(map(len, runs)) <= _ARRAYS_FROM:
            features.update(chinese_features_of(runs))
            return (np.fromiter(features, dtype=np.int64, count=len(features)),
                    np.fromiter(features.values(), dtype=np.float64, count=len(features)))
        chinese = chinese_features("\n".join(runs))
        chinese = Features(np.zeros_like(chinese.doc), chinese.key, chinese.value).merged()
        return (np.concatenate((chinese.key, np.fromiter(features, dtype=np.int64,
                                                         count=len(features)))),
                np.concatenate((chinese.value, np.fromiter(features.values(), dtype=np.float64,
                                                           count=len(features)))))

    def _score(self, normalised: str, statements: Sequence[str] = ()) -> _Scores | None:
        """The signals for every entry; ``statements``: the phrases of an urgent message that
        state the emergency (see :class:`quickresponse.urgency.Urgency`)."""
        keys, shares = self._query_features(normalised)
        if not len(keys) or not len(self._keys):
            return None
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        found = self._keys[at] == keys
        # A word or character that no unit holds is content the knowledge base does not explain
        # (tax, 签证). An n-gram never seen anywhere is usually an accident of two words written
        # side by side (住30楼 -> 是住), so it counts for nothing; a typo within a word is caught
        # by the pinyin and word-correction features instead.
        kinds = kind_of(keys)
        weights = np.where(found, self._key_weight[at], self._unseen_weight[kinds]) * shares
        if statements:
            # In an emergency the words that say what is happening ("collapsed", "no pulse",
            # "被困") name the steps needed; the rest (where, who, who is watching) is
            # background that would otherwise outweigh them in a long, breathless message.
            stated = distinct(self._query_features(normalise(" ".join(statements)))[0])
            weights = np.where(member(stated, keys), weights * (1 + _STATEMENT_EXTRA), weights)
        total = float(weights.sum())
        english = float(weights[kinds >= W].sum())
        known = found & self._indexed[at] & (weights > 0)
        if total <= 0 or not known.any():
            return None
        features, weights = at[known], weights[known]
        holders, lengths = self._postings.gather(features)
        matched = np.bincount(holders, weights=np.repeat(weights, lengths),
                              minlength=self._n_docs + len(self._entry_ids))
        matched_doc, matched_entry = matched[:self._n_docs], matched[self._n_docs:]
        # A long message is judged on a question's worth of content: what it says beyond that
        # (where, who, since when) neither helps nor hurts.
        typical = ((total - english) * self._question_weight[True]
                   + english * self._question_weight[False]) / total
        effective = min(total, _LONG_MESSAGE * typical)
        hit = np.flatnonzero(matched_doc)
        m = matched_doc[hit]
        n_entries = len(self._entry_ids)
        best_unit = self._owners.best(hit, 2.0 * m / (effective + self._doc_weight[hit]),
                                      n_entries)
        # A keyword counts by how completely it appears (squared: half a keyword is weak) and
        # by how much it weighs (a lone common character is not a topic).
        key_strength = (np.minimum(m * self._doc_inverse_weight[hit], 1.0) ** 2
                        * self._doc_specificity[hit] * (m / (m + _KEYWORD_HALF)))
        keyword = self._key_owners.best(hit, key_strength, n_entries)
        return _Scores(matched_entry / effective, best_unit, keyword, total)

    def _combined(self, normalised: str, statements: Sequence[str] = (),
                  ) -> tuple[np.ndarray | None, np.ndarray]:
        """The 0-100 score of every entry for a normalised text, and the keyword signal."""
        scores = self._score(normalised, statements)
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
        urgency = assess(query, text[: _MATCH_CHARS * 2])
        urgent = urgency.urgent
        if _EMPTY.match(query):
            return MatchResult(text, lang, urgent, "none", (), "empty")
        if not urgent and _is_small_talk(query):
            return MatchResult(text, lang, urgent, "none", (), "small_talk")
        combined, keyword = self._combined(query, urgency.statements)
        if combined is None:
            return MatchResult(text, lang, urgent, "none", (), "low_score")
        top = _top(combined, max(self.max_candidates, 8))
        ranked = [(self._entry_ids[i], float(combined[i]), float(keyword[i]))
                  for i in top if combined[i] > 0]
        ranked.sort(key=lambda r: (-r[1], r[0]))
        ranked, preferred = _prefer(ranked, prefer)
        if not urgent and ((_FORECAST.search(query) and not _ADVICE.search(query))
                           or _ANIMAL.search(query) or _SUM_WORDS.search(query)
                           or _SUM_SIGNS.search(text[: _MATCH_CHARS * 2])):
            return MatchResult(text, lang, urgent, "none", (), "off_topic")
        if (not urgent and _OFF_TOPIC.search(query)
                and (not ranked or ranked[0][1] < _OFF_TOPIC_BAR)):
            return MatchResult(text, lang, urgent, "none", (), "off_topic")
        if (not urgent and _NOT_ADVICE.search(query)
                and (not ranked or ranked[0][1] < _NOT_ADVICE_BAR)):
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


# Below this many entries a full sort is cheaper than a partition and its bookkeeping.
_PARTITION_FROM = 1024


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` highest scores, highest first, ties in index order (what a
    stable sort of all of them gives), without sorting all of them."""
    if len(scores) <= max(k, _PARTITION_FROM):
        return np.argsort(-scores, kind="stable")[:k]
    bar = np.partition(scores, len(scores) - k)[len(scores) - k]
    above = np.flatnonzero(scores > bar)
    chosen = np.concatenate((above, np.flatnonzero(scores == bar)[:k - len(above)]))
    return chosen[np.argsort(-scores[chosen], kind="stable")]


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


_ZH_FUNCTION_WORDS = re.compile("|".join(
    sorted((w for w in ZH_STOPWORDS if len(w) > 1 and cjk_runs(w) == [w]), key=len, reverse=True)))


def _is_small_talk(normalised: str) -> bool:
    """Greetings, thanks and chit-chat with at most one stray content word ("讲个笑话")."""
    rest = _SMALL_TALK.sub(" ", normalised)
    if rest == normalised:
        return False
    words = [w for w in latin_words(rest) if w not in EN_STOPWORDS and len(w) > 1]
    # Function words of several characters (是不是, 有没有) say nothing either.
    chars = [c for run in cjk_runs(_ZH_FUNCTION_WORDS.sub(" ", rest)) for c in run
             if c not in ZH_STOPWORDS]
    content = len(words) + len(chars)
    removed = len(normalised.replace(" ", "")) - len(rest.replace(" ", ""))
    return content == 0 or (content == 1 and removed >= len(rest.replace(" ", "")))


_SENTENCE_END = re.compile(r"[。！？!?；;\n]+|(?<=[a-z])\.\s")


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]
