"""Text normalisation for matching: width, case, punctuation, scripts, dialect and text-speak.

Residents type on phones: full-width letters and digits, traditional characters, Cantonese, emoji,
repeated punctuation, text-speak ("shud u"), mixed Chinese and English. Everything the matcher
compares goes through :func:`normalise` once, so the knowledge base and the message are folded the
same way. :func:`normalise` is idempotent: folding a folded text changes nothing.

The analysis helpers below it (:func:`english_words`, :func:`cjk_runs`, :func:`pinyin`) turn a
normalised text into the units the matcher indexes.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import zhconv

log = logging.getLogger(__name__)

_CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_CLASS}]")
_CJK_RUN = re.compile(f"[{_CJK_CLASS}]+")
# Anything that is not a letter, digit or CJK ideograph becomes a space.
_NON_WORD = re.compile(f"[^\\w{_CJK_CLASS}]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9]*|[0-9]+[a-z]*")
MAX_INPUT_CHARS = 4096

# Cantonese written forms to Mandarin, applied to simplified text, longest key first. Only
# unambiguous dialect words: 系 or 点 alone are also Mandarin and are left alone. No value
# contains a key, so a second pass changes nothing.
_CANTONESE = {
    "唔该": "谢谢", "多谢": "谢谢", "唔识": "不会", "唔好": "不要", "唔系": "不是", "唔": "不",
    "咗": "了", "嘅": "的", "冇": "没", "喺": "在", "嚟": "来", "啲": "些", "咁": "这么",
    "点样": "怎样", "点算": "怎么办", "点解": "为什么", "点办": "怎么办", "乜嘢": "什么",
    "咩": "什么", "佢": "他", "哋": "们", "嘢": "东西", "睇": "看", "畀": "给", "攞": "拿",
    "揾": "找", "屋企": "家里", "边度": "哪里", "边个": "谁", "呢度": "这里", "呢个": "这个",
    "入面": "里面", "而家": "现在", "依家": "现在", "琴日": "昨天", "听日": "明天",
    "落雨": "下雨",
    "落雪": "下雪", "水浸": "水淹", "晕低": "晕倒", "跌低": "摔倒", "升降机": "电梯", "𨋢": "电梯",
    "揸车": "开车", "泊车": "停车", "啱啱": "刚刚", "冚": "盖", "攰": "累", "返屋": "回家",
    "救命呀": "救命", "救命啊": "救命",
    # zhconv folds 嗰 and 𨋢 into these before the table is applied.
    "𠮶": "那", "𠮶阵时": "的时候", "𠮶阵": "的时候", "𠮶时": "那时", "䢂": "电梯",
    # Grammar: questions, aspect, place and time words.
    "有冇": "有没有", "冇咗": "没有", "浸咗": "淹了", "晕咗": "晕倒了", "困咗喺": "困在",
    "困咗": "困住了",
    "跌咗落": "掉进", "跌落": "掉进", "哽亲": "噎住了", "唞唔到气": "喘不过气", "唞气": "呼吸",
    "味好劲": "味很重", "冇晒": "全没了", "咗喺": "在", "喺度": "在", "喺边": "在哪",
    "使唔使": "要不要", "唔使": "不用", "得唔得": "行不行", "系咪": "是不是", "系唔系": "是不是",
    "识唔识": "会不会", "食唔食得": "能不能吃", "饮唔饮得": "能不能喝", "乜": "什么",
    "啖样": "这样", "几时": "什么时候", "几多": "多少", "几耐": "多久", "边间": "哪间",
    "边处": "哪里",
    "呢啲": "这些", "呢排": "最近", "𠵱家": "现在", "宜家": "现在", "今日": "今天", "㖊日": "昨天",
    "寻日": "昨天", "成日": "总是", "成晚": "整晚", "成家人": "全家人", "成栋": "整栋",
    "成条": "整条", "好彩": "幸好", "即刻": "立刻", "快啲": "快点", "早啲": "早点",
    "落紧": "正在下", "嚟紧": "快来了", "烧紧": "正在烧", "漏紧": "正在漏", "震紧": "正在震",
    "摇紧": "正在摇", "涨紧": "正在涨", "浸紧": "正在淹", "入紧": "正在进",
    # Verbs.
    "入水": "进水", "入嚟": "进来", "入去": "进去", "返屋企": "回家", "返嚟": "回来",
    "返去": "回去", "返工": "上班", "返学": "上学", "出街": "出门", "行山": "爬山",
    "行路": "走路", "行唔到": "走不了", "行唔郁": "走不动", "匿埋": "躲起来", "匿喺": "躲在",
    "熄总掣": "关总闸", "熄掣": "关开关", "点呀": "怎么样", "点啊": "怎么样", "俾": "被",
    "闩": "关", "揿": "按", "冧": "倒", "瞓": "睡", "企喺": "站在", "唔好郁": "不要动",
    "郁唔到": "动不了", "顶唔顺": "受不了", "食咗": "吃了", "食完": "吃完", "食得": "能吃",
    "饮咗": "喝了", "饮得": "能喝", "识游水": "会游泳", "游水": "游泳", "倾下偈": "聊聊天",
    "倾偈": "聊天", "倾下": "聊聊", "唔该晒": "谢谢", "多谢晒": "谢谢",
    # Feelings and the body; "X亲" is hurt by X.
    "好惊": "很害怕", "发恶梦": "做噩梦", "恶梦": "噩梦", "好冻": "很冷", "咁冻": "这么冷",
    "冻亲": "着凉", "热亲": "中暑", "好焗": "很闷热", "电亲": "触电", "整亲": "弄伤",
    "跌亲": "摔伤", "烫亲": "烫伤", "渌亲": "烫伤", "辣亲": "烫伤", "撞亲": "撞伤",
    "𠝹亲": "割伤", "切亲": "切伤", "心外压": "胸外按压", "心口": "胸口", "肚屙": "拉肚子",
    "肚疴": "拉肚子", "屙": "拉", "肚痛": "肚子痛", "食错": "吃错", "食坏": "吃坏",
    # Things, people and weather.
    "雪柜": "冰箱", "冷气": "空调", "热水炉": "热水器", "煤气炉": "燃气灶", "石油气": "液化气",
    "火水": "煤油", "插苏": "插头", "拖板": "插线板", "电掣": "开关", "总掣": "总闸",
    "水喉": "水龙头", "冲凉": "洗澡", "白车": "救护车", "差佬": "警察", "急症室": "急诊室",
    "细路仔": "小孩", "细路": "小孩", "灭火筒": "灭火器", "警钟": "警铃", "宽频": "宽带",
    "机械人": "机器人", "遇溺": "溺水",
    "火烛": "着火", "打大风": "刮大风", "打风": "刮台风", "行雷": "打雷", "落大雨": "下大雨",
    "落暴雨": "下暴雨",
    "落冰雹": "下冰雹", "落楼": "下楼", "落车": "下车", "山泥倾泻": "山体滑坡",
}
# Taiwan and Hong Kong words for what the knowledge base says in mainland words (zhconv changes
# the script, not the vocabulary): 瓦斯 is 燃气, 土石流 is 泥石流, 志工 is 志愿者.
_REGIONAL = {
    "瓦斯": "燃气", "外泄": "泄漏", "人孔盖": "井盖", "土石流": "泥石流", "坍方": "塌方",
    "简讯": "短信",
    "捷运": "地铁", "机车": "摩托车", "电单车": "摩托车", "计程车": "出租车", "的士": "出租车",
    "跳电": "跳闸", "电扶梯": "扶梯", "志工": "志愿者", "防灾包": "应急包", "避难包": "应急包",
    "行动电源": "充电宝", "延长线": "插线板", "区公所": "街道办", "里长": "居委会",
    "手提电话": "手机", "电动单车": "电动自行车", "单车": "自行车", "屋苑": "小区", "屋邨": "小区",
    "管理处": "物业", "看更": "保安", "街坊": "邻居", "长者": "老人", "伤残人士": "残疾人",
    "风球": "台风信号",
}
_DIALECT = {**_CANTONESE, **_REGIONAL}
# Traditional-only dialect forms that zhconv would fold into an ambiguous simplified character
# (係 -> 系 as in 联系), so they are mapped before conversion.
_CANTONESE_TRADITIONAL = {"係唔係": "是不是", "係咪": "是不是", "係": "是"}
# The look-ahead lets the search skip at once past characters that start no form.
_DIALECT_RE = re.compile(
    "(?=[" + "".join(sorted({re.escape(key[0]) for key in _DIALECT})) + "])(?:"
    + "|".join(sorted(map(re.escape, _DIALECT), key=len, reverse=True)) + ")")
# Words that are Cantonese only before or after certain characters: 点 before a verb is "how"
# (点用, 点报警) but not in 一点, 几点, 地点 or 点火; 仲 is "still" but not in 仲裁 or 仲夏.
_CANTONESE_CONTEXT = (
    ("点", re.compile(
        "(?<![0-9零一二两三四五六七八九十几半钟地重特优缺终起焦观景早晚快慢多少有差要标据热])"
        "点(?=[做用帮处整搞去走逃救报申知看睇止医洗消保防准找揾收储出返回行避躲应求]|小心)"),
     "怎么"),
    ("仲", re.compile("(?<![伯昆])仲(?![裁夏秋春冬介])"), "还"),
)
_CANTONESE_TRAD_RE = re.compile(
    "|".join(sorted(map(re.escape, _CANTONESE_TRADITIONAL), key=len, reverse=True)))

# English contractions are expanded before punctuation is dropped ("can't" -> "can not").
_CONTRACTIONS = [
    (re.compile(r"\b(can)'t\b"), r"\1 not"), (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not"), (re.compile(r"\b(\w+)'re\b"), r"\1 are"),
    (re.compile(r"\bi'm\b"), "i am"), (re.compile(r"\b(\w+)'ve\b"), r"\1 have"),
    (re.compile(r"\b(\w+)'ll\b"), r"\1 will"), (re.compile(r"\b(\w+)'d\b"), r"\1 would"),
    (re.compile(r"\b(it|that|there|what|he|she|who|where)'s\b"), r"\1 is"),
]
# Text-speak and apostrophe-less contractions, word for word. No value is a key.
_TEXT_SPEAK = {
    "u": "you", "ur": "your", "r": "are", "ya": "you", "shud": "should", "shld": "should",
    "wud": "would", "cud": "could", "wat": "what", "wot": "what", "thru": "through",
    "realy": "really", "pls": "please", "plz": "please", "coz": "because", "cuz": "because",
    "bc": "because", "b4": "before", "2day": "today", "2morrow": "tomorrow", "tmr": "tomorrow",
    "tmrw": "tomorrow", "abt": "about", "wanna": "want to", "gonna": "going to", "gotta": "got to",
    "cant": "can not", "dont": "do not", "doesnt": "does not", "didnt": "did not",
    "isnt": "is not", "arent": "are not", "wont": "will not", "im": "i am", "ive": "i have",
    "youre": "you are", "theyre": "they are", "theres": "there is", "whats": "what is",
    "hes": "he is", "shes": "she is", "thats": "that is", "wasnt": "was not",
    "couldnt": "could not",
    "shouldnt": "should not", "wouldnt": "would not", "havent": "have not", "hasnt": "has not",
    "n": "and", "w": "with", "ppl": "people", "msg": "message", "asap": "as soon as possible",
    "pic": "picture", "okay": "ok",
}
# A letter joined to a word by a hyphen is one word: e-bike and ebike, e-scooter and escooter.
_LETTER_COMPOUND = re.compile("(?<![\\w'\u2010-\u2013-])([a-z])[\u2010-\u2013-](?=[a-z]{3})")
_DASHES = re.compile("[\u2010-\u2013]")
# Latin letters with accents (café, pinyin with tone marks) are compared without them.
_ACCENTED = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")
# Marks typed for an apostrophe (‘ ’ ʼ `) are one.
_APOSTROPHES = str.maketrans("\u2018\u2019\u02bc`", "'" * 4)
_TEXT_SPEAK_RE = re.compile(r"\b(" + "|".join(map(re.escape, _TEXT_SPEAK)) + r")\b")


@lru_cache(maxsize=4096)
def to_simplified(text: str) -> str:
    """Traditional to simplified characters, exactly as ``zhconv.convert(text, "zh-cn")``.

    zhconv walks the text a character at a time in Python, looking for the longest phrase at
    each one. A phrase can only start in a stretch of characters that occur in some phrase; a
    character outside such stretches converts on its own (``str.translate``), and each stretch
    goes through zhconv once per process (they repeat endlessly).
    """
    if not _CJK.search(text):
        return text
    singles, stretches = _script_tables()
    found = stretches.findall(text)
    if not found:
        return text.translate(singles)
    # The stretches and the text between them (split finds what findall found), put back in
    # turn: a whole knowledge base at once has tens of thousands of stretches.
    out: list[str] = [""] * (2 * len(found) + 1)
    out[0::2] = [between.translate(singles) for between in stretches.split(text)]
    out[1::2] = [_CONVERTED.get(stretch) or _convert_stretch(stretch) for stretch in found]
    return "".join(out)


_CONVERTED: dict[str, str] = {}
_CACHE_LIMIT = 100_000


def _convert_stretch(stretch: str) -> str:
    converted: str = zhconv.convert(stretch, "zh-cn")
    if len(_CONVERTED) < _CACHE_LIMIT:
        _CONVERTED[stretch] = converted
    return converted


@lru_cache(maxsize=1)
def _script_tables() -> tuple[dict[int, str], re.Pattern[str]]:
    """zhconv's one-character conversions, and a pattern for stretches of two or more
    characters that occur in its phrases (where a phrase may match)."""
    table = zhconv.zhconv.getdict("zh-cn")
    singles = {ord(key): value for key, value in table.items() if len(key) == 1}
    in_phrases = sorted({ch for key in table if len(key) > 1 for ch in key})
    return singles, re.compile("[" + "".join(map(re.escape, in_phrases)) + "]{2,}")


def _fold_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    if not text.isprintable():
        text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    text = text.lower()
    if not text.isascii() and _ACCENTED.search(text):
        text = _ACCENTED.sub(_without_accent, text)
    text = text.translate(_APOSTROPHES)
    if "'" in text:
        for pattern, repl in _CONTRACTIONS:
            text = pattern.sub(repl, text)
    if _CJK.search(text):
        text = _CANTONESE_TRAD_RE.sub(lambda m: _CANTONESE_TRADITIONAL[m.group()], text)
        text = _fold_dialect(to_simplified(text))
    if "-" in text or _DASHES.search(text):
        text = _LETTER_COMPOUND.sub(r"\1", text)
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    text = _TEXT_SPEAK_RE.sub(lambda m: _TEXT_SPEAK[m.group()], text)
    return _SPACES.sub(" ", text).strip()


def _without_accent(found: re.Match[str]) -> str:
    decomposed = unicodedata.normalize("NFKD", found.group())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise(text: str) -> str:
    """Fold ``text`` for comparison: width, case, script, Cantonese, text-speak, punctuation."""
    text = text[:MAX_INPUT_CHARS]
    if text.isascii() and _is_plain(text):
        # Most English messages: one pass of the few steps that apply, settled at once.
        return _fold_plain([text])[0]
    folded = _fold_once(text)
    # Unicode case mapping and compatibility folding do not always commute for exotic
    # characters; folding until nothing changes makes normalise idempotent.
    for _ in range(3):
        again = _fold_once(folded)
        if again == folded:
            break
        folded = again
    return folded


def normalise_many(texts: Iterable[str]) -> list[str]:
    """:func:`normalise` of each text, folding every distinct space-separated piece only once.

    A knowledge base repeats the same words thousands of times. Every folding step works within
    the pieces between two plain spaces (no replacement and no Unicode composition reaches
    across one, and a space folds to a space), so a text folds to its folded pieces joined by
    spaces. Two exceptions take the whole-text path: text past the length cap, and characters
    beyond the Basic Multilingual Plane, which the script conversion touches only in a text
    that also has a common Chinese character.
    """
    texts = list(texts)
    if not texts:
        return []
    joined = "\n".join(texts)
    # One look at all of them finds whether any text needs a closer one.
    if (joined.count("\n") == len(texts) - 1 and not _BEYOND_BMP.search(joined)
            and max(map(len, texts)) <= MAX_INPUT_CHARS):
        return _normalise_lines(joined)
    out = [normalise(text) if (len(text) > MAX_INPUT_CHARS or "\n" in text
                               or _BEYOND_BMP.search(text)) else None for text in texts]
    batch = [i for i, folded in enumerate(out) if folded is None]
    if batch:
        for i, line in zip(batch, _normalise_lines("\n".join(texts[i] for i in batch)),
                           strict=True):
            out[i] = line
    return out  # type: ignore[return-value]


_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")


def _normalise_lines(joined: str) -> list[str]:
    """:func:`normalise` of each line of ``joined``, a piece at a time (see normalise_many)."""
    lines = joined.split("\n")
    # Most lines are of one of two kinds that fold as a whole, like their pieces: plain ASCII
    # (_is_plain, written out here: this runs once per line of a whole knowledge base), and
    # common Chinese characters and digits. The rest (kind 2) are cut. The lines are moved
    # about as a numpy array of objects, without a Python loop over them.
    chinese = _CHINESE_DIGITS.fullmatch
    kinds = np.array([0 if line.isascii() and line.isprintable() and "'" not in line
                      and "`" not in line else 1 if chinese(line) else 2 for line in lines],
                     dtype=np.int8)
    out = _objects(lines)
    for kind, fold in ((0, _fold_plain), (1, _fold_chinese_texts)):
        numbers = np.flatnonzero(kinds == kind)
        if len(numbers):
            out[numbers] = _objects(fold(out[numbers].tolist()))
    mixed = np.flatnonzero(kinds == 2)
    if not len(mixed):
        return out.tolist()  # type: ignore[no-any-return]
    # Cut at every space (a line break becomes a piece of its own), fold each distinct piece
    # once, and put the folded pieces back in place in one join; empty ones drop out.
    pieces = "\n".join(out[mixed].tolist()).replace("\n", " \n ").split(" ")
    folded = _normalise_pieces(set(pieces))
    folded["\n"] = "\n"
    rejoined = " ".join(filter(None, map(folded.__getitem__, pieces))).split("\n")
    out[mixed] = _objects([line.strip(" ") for line in rejoined])
    return out.tolist()  # type: ignore[no-any-return]


def _objects(texts: list[str]) -> np.ndarray:
    """The texts as a numpy array of the same str objects (never numpy's own strings)."""
    array = np.empty(len(texts), dtype=object)
    array[:] = texts
    return array


def _normalise_pieces(pieces: Iterable[str]) -> dict[str, str]:
    """:func:`normalise` of each piece (text without spaces), cheaply for the common kinds."""
    out: dict[str, str] = {}
    chinese: list[str] = []
    plain: list[str] = []
    for piece in pieces:
        if piece.isascii() and piece.isalnum():
            # Letters and digits only: folding is lower case and text-speak, and the text-speak
            # replacements are themselves already folded.
            lowered = piece.lower()
            out[piece] = _TEXT_SPEAK.get(lowered, lowered)
        elif _CHINESE_DIGITS.fullmatch(piece):
            chinese.append(piece)
        elif piece.isascii() and _is_plain(piece):
            plain.append(piece)
        else:
            out[piece] = normalise(piece)
    if plain:
        out.update(zip(plain, _fold_plain(plain), strict=True))
    if chinese:
        out.update(zip(chinese, _fold_chinese_texts(chinese), strict=True))
    return out


def _is_plain(ascii_text: str) -> bool:
    """Whether an ASCII text folds as :func:`_fold_plain` folds it: printable, and without the
    apostrophes of contractions (' and `, which folding reads as one)."""
    return ascii_text.isprintable() and "'" not in ascii_text and "`" not in ascii_text


def _fold_plain(texts: list[str]) -> list[str]:
    """:func:`normalise` of plain ASCII texts (:func:`_is_plain`): lower case, marks to
    spaces and text-speak, and once is enough: what comes out is folded already.

    After lower case, the letter compounds and marks (str.translate), a text is words of
    letters and digits between spaces, and text-speak replaces whole words: a word at a time,
    split and joined in C, rather than regular expressions over millions of characters.
    """
    lowered = "\n".join(texts).lower().split("\n")
    for number, text in enumerate(lowered):
        if "-" in text:
            lowered[number] = _LETTER_COMPOUND.sub(r"\1", text)
    get = _TEXT_SPEAK.get
    return [" ".join(map(get, words, words)) for words in map(
        str.split, "\n".join(lowered).translate(_ASCII_MARKS).split("\n"))]


# Every ASCII character that is not a letter, a digit or a line break, and the underscore,
# becomes a space (_NON_WORD on ASCII text, then the underscore).
_ASCII_MARKS = {code: " " for code in range(128)
                if not chr(code).isalnum() and chr(code) != "\n"}


def _fold_chinese_texts(texts: list[str]) -> list[str]:
    """:func:`normalise` of texts of common Chinese characters and digits only.

    Width, case, marks and English steps change nothing, so folding is the script and dialect
    conversion, done for all of them at once (a newline is in no replacement). Where a second
    fold would change the first, or the first leaves anything but Chinese characters, the text
    takes the whole path.
    """
    once = _fold_chinese("\n".join(texts))
    twice = _fold_chinese(once)
    return [first if first == second and _CHINESE_DIGITS.fullmatch(first) else normalise(text)
            for text, first, second in zip(texts, once.split("\n"), twice.split("\n"),
                                            strict=True)]


# Common Chinese characters and ASCII digits (住20楼, 打119): width, case, marks and the English
# steps leave both alone.
_CHINESE_DIGITS = re.compile("[\u3400-\u4dbf\u4e00-\u9fff0-9]+")


def _fold_chinese(text: str) -> str:
    text = _CANTONESE_TRAD_RE.sub(lambda m: _CANTONESE_TRADITIONAL[m.group()], text)
    return _fold_dialect(to_simplified(text))


def _fold_dialect(simplified: str) -> str:
    """Cantonese, Taiwan and Hong Kong written forms to mainland Mandarin, in simplified text."""
    text = _DIALECT_RE.sub(lambda m: _DIALECT[m.group()], simplified)
    for char, pattern, mandarin in _CANTONESE_CONTEXT:
        if char in text:
            text = pattern.sub(mandarin, text)
    return text


def detect_language(text: str, default: str = "zh") -> str:
    """``zh`` when Chinese characters carry the message, ``en`` for Latin words, else default."""
    cjk = len(_CJK.findall(text))
    latin_words = len(re.findall(r"[a-zA-Z]{2,}", text))
    if cjk == 0 and latin_words == 0:
        return default
    # One Chinese character carries about as much as one English word: a few English words in
    # a Chinese sentence ("evacuation的时候要带什么") keep it Chinese.
    return "zh" if cjk >= latin_words else "en"


# Direction overrides, embeddings and isolates, direction marks, zero-width spaces and stray
# byte-order marks: invisible, never needed in Chinese or English, and able to make a text read
# differently than it was typed. Zero-width (non-)joiners stay: emoji sequences need them.
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_user_text(text: str, limit: int) -> str:
    """Strip control characters and surrounding space from free text a user sends; cut to limit."""
    text = unicodedata.normalize("NFC", _INVISIBLE.sub("", text))
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Co")
    )
    # A cut can end on a space; what is kept never ends on one (cleaning is idempotent).
    return text.strip()[:limit].rstrip()


# ---- analysis of normalised text -------------------------------------------------------------

EN_STOPWORDS = frozenset("""
a an the is are am was were be been being do does did done doing i me my mine myself we us our
ours you your yours he him his she her hers it its they them their this that these those what
which who whom whose how when where why should would could can will shall may might must to of
in on at by for with about from into onto as and or but if then so than too very just also there
here have has had having get gets got getting not no yes any some all please tell know want need
one ones thing things way ok hi hey hello thanks thank really still now out up off go
""".split())

# Function characters and words that say nothing about the topic. Single characters here get no
# weight as unigrams; n-grams made only of them get none either.
ZH_STOPWORDS = frozenset("""
已 的 了 吗 呢 吧 啊 呀 哦 嗯 么 嘛 哈 啦 喔 哇 我 你 您 他 她 它 们
是 在 有 和 与 及 或 就 都 也 还 又 要 会 能 可 该 把 被 给 让 对
从 向 到 这 那 哪 个 些 一 下 上 里 中 去 来 说 想 怎 么 什 啥 咋
如 何 为 很 太 好 多 少 几 请 问 谁 吧 得 地 着 过 以 之 其 此 各
每 做 办 样 种 自 己 时 候 应 需 可以 怎么 怎么办 怎样 什么 如何 哪里
哪儿 为什么 时候 应该 需要 请问 一下 我们 你们 他们 这个 那个 这样 那样
是不是 有没有 能不能 可不可以 要不要 会不会 一个 现在 已经 的话 还是 或者
就是 但是 因为 所以 然后 还有
㗎 㖞 啩 嘞 喇 啰 吖 咋 噃 咧 啫 嗱
""".split())


def cjk_runs(normalised: str) -> list[str]:
    """The maximal runs of Chinese characters in a normalised text."""
    return _CJK_RUN.findall(normalised)


def latin_words(normalised: str) -> list[str]:
    """Latin-script words and numbers in a normalised text, in order."""
    return _LATIN_WORD.findall(normalised)


# Words that no suffix rule brings together: irregular verbs (the water "went down" / "has gone
# down"), irregular plurals, British and American spellings, and the few everyday synonyms
# residents and the knowledge base use for one thing (lift / elevator, quake / earthquake).
# Applied in :func:`stem`, not in :func:`normalise`: the urgency cues read the tense ("caught
# fire", "fell in").
_WORD_FORMS = {
    "went": "go", "goes": "go", "gone": "go", "going": "go", "fell": "fall", "fallen": "fall",
    "caught": "catch",
    "broke": "break", "broken": "break", "froze": "freeze", "frozen": "freeze", "blew": "blow",
    "blown": "blow", "swept": "sweep", "burnt": "burn", "ran": "run", "took": "take",
    "taken": "take", "ate": "eat", "eaten": "eat", "drank": "drink",
    "drunk": "drink", "bitten": "bite", "shook": "shake", "shaken": "shake", "lost": "lose",
    "felt": "feel", "kept": "keep", "slept": "sleep", "swam": "swim", "swum": "swim",
    "sank": "sink", "sunk": "sink", "risen": "rise", "struck": "strike", "fled": "flee",
    "threw": "throw", "thrown": "throw", "drove": "drive", "driven": "drive", "rode": "ride",
    "ridden": "ride", "torn": "tear", "bled": "bleed", "built": "build", "bought": "buy",
    "brought": "bring", "told": "tell", "said": "say", "seen": "see", "woke": "wake",
    "woken": "wake", "hid": "hide", "hidden": "hide", "dug": "dig", "stung": "sting",
    "swollen": "swell", "spilt": "spill", "spoilt": "spoil",
    "children": "child", "kid": "child", "kids": "child", "men": "man", "women": "woman",
    "feet": "foot", "teeth": "tooth", "mice": "mouse",
    "neighbor": "neighbour", "neighborhood": "neighbourhood", "color": "colour",
    "center": "centre", "liter": "litre", "meter": "metre", "practice": "practise",
    "defense": "defence", "mold": "mould", "sidewalk": "pavement", "faucet": "tap",
    "flashlight": "torch", "refrigerator": "fridge", "cellphone": "phone", "mom": "mum",
    "mommy": "mum", "mummy": "mum", "mother": "mum", "dad": "father", "daddy": "father",
    "grandma": "grandmother", "granny": "grandmother", "grandpa": "grandfather",
    "grandad": "grandfather", "granddad": "grandfather", "lift": "elevator",
    "apartment": "flat", "electricity": "power",
    "escooter": "ebike", "tremor": "quake", "diarrhea": "diarrhoea", "tinned": "tin",
    "canned": "tin", "cans": "tin",
    "fireman": "firefighter", "firemen": "firefighter", "prep": "prepare",
}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stemmer: plural, -ing, -ed, -ly and a final e, so 'floods', 'flooded'
    and 'flooding' meet 'flood', 'charging' meets 'charge' and 'safely' meets 'safe'; irregular
    and variant forms meet theirs ('went' and 'gone' meet 'go', 'lifts' meets 'elevators')."""
    form = _WORD_FORMS.get(word)
    if form is not None:
        return _light_stem(form)
    stemmed = _light_stem(word)
    form = _WORD_FORMS.get(stemmed)
    return stemmed if form is None else _light_stem(form)


_SUFFIXES = (("ies", "y"), ("sses", "ss"), ("ness", ""), ("ings", ""), ("ing", ""), ("ed", ""),
             ("ly", ""), ("es", ""), ("s", ""))
_ANY_SUFFIX = tuple(suffix for suffix, _ in _SUFFIXES)


def _light_stem(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    # Most words end in none of the suffixes: one look says so.
    for suffix, repl in _SUFFIXES if word.endswith(_ANY_SUFFIX) else ():
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            if suffix == "ed" and word.endswith("eed"):
                break
            if suffix == "ly" and word.endswith(("ily", "ply", "bly", "rly", "lly")):
                break  # family, supply, assembly, early: not adverbs of a shorter word
            if suffix == "es" and not word.endswith(("sses", "xes", "ches", "shes", "oes")):
                continue
            word = word[: len(word) - len(suffix)] + repl
            # "trapped" -> "trapp" -> "trap"; but not "fall" or "kiss".
            if suffix in ("ing", "ed", "ings") and len(word) >= 4 and word[-1] == word[-2] \
                    and word[-1] not in "lsz":
                word = word[:-1]
            break
    if len(word) > 3 and word.endswith("e") and not word.endswith(("ee", "ie", "ye")):
        word = word[:-1]
    return word


def english_words(normalised: str) -> list[str]:
    """Stemmed content words (no stop words) of a normalised text."""
    return [s for s in map(content_stem, latin_words(normalised)) if s is not None]


@lru_cache(maxsize=65536)
def content_stem(word: str) -> str | None:
    """The stem of a content word; None for a stop word, also an inflected one ('goes',
    'thanks', 'needs')."""
    if word in EN_STOPWORDS or (len(word) < 2 and not word.isdigit()):
        return None
    stemmed = stem(word)
    return None if stemmed in EN_STOPWORDS else stemmed


# Fuzzy pinyin as phone input methods offer it: speakers who merge zh/z, ch/c, sh/s and the
# -ng finals type the wrong one of each pair.
_FUZZY_PINYIN = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("ang", "an"), ("eng", "en"),
                 ("ing", "in"))
_TONE_MARKS = str.maketrans("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm")


@lru_cache(maxsize=1)
def _pinyin_table() -> dict[int, str]:
    """pypinyin's readings of single characters (code point -> "zhuó,zhe,...").

    Importing the pypinyin package also loads its phrase dictionary, most of a second at every
    start of every process, for phrases the matcher never asks about; the character table is a
    module of its own and is loaded alone.
    """
    loaded = sys.modules.get("pypinyin.pinyin_dict")
    if loaded is not None:
        return loaded.pinyin_dict  # type: ignore[no-any-return]
    package = importlib.util.find_spec("pypinyin")
    if package is not None and package.origin:
        source = Path(package.origin).with_name("pinyin_dict.py")
        spec = importlib.util.spec_from_file_location("pypinyin.pinyin_dict", source)
        if spec is not None and spec.loader is not None and source.is_file():
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.pinyin_dict  # type: ignore[no-any-return]
    from pypinyin.pinyin_dict import pinyin_dict  # a layout this loader does not know

    return pinyin_dict


@lru_cache(maxsize=16384)
def pinyin(char: str) -> tuple[str, ...]:
    """The toneless, fuzzy-folded readings of one Chinese character (at most two), so that
    homophone typos from pinyin input (着伙 for 着火, 地镇 for 地震) read the same."""
    raw = _pinyin_table().get(ord(char))
    if not raw:
        return (char,)
    readings: list[str] = []
    for reading in raw.split(","):
        syllable = reading.translate(_TONE_MARKS)
        for long, short in _FUZZY_PINYIN:
            if syllable.startswith(long) and long in ("zh", "ch", "sh"):
                syllable = short + syllable[len(long):]
            elif syllable.endswith(long) and long not in ("zh", "ch", "sh"):
                syllable = syllable[: -len(long)] + short
        if syllable not in readings:
            readings.append(syllable)
        if len(readings) == 2:
            break
    return tuple(readings)


def gram_code(gram: str) -> int:
    """Two or three Chinese characters (Basic Multilingual Plane) as one integer, 16 bits each."""
    code = 0
    for ch in gram:
        code = (code << 16) | ord(ch)
    return code


class ZhWords:
    """Two- and three-character Chinese words with their corpus frequency (jieba's dictionary).

    Kept as sorted arrays of :func:`gram_code` codes rather than a dict of a quarter of a million
    strings (which takes a tenth of a second to build at every start): :meth:`frequencies` looks
    up many n-grams at once, and ``in``, ``get`` and ``[]`` serve single words.
    """

    def __init__(self, codes: dict[int, np.ndarray], counts: dict[int, np.ndarray]) -> None:
        self._codes = codes
        self._counts = counts
        self._is_word: dict[int, bool] = {}

    def are_words(self, codes: list[int], n: int) -> list[bool]:
        """Whether each n-character gram code is a word: for the few dozen grams of a message,
        remembered from message to message (grams repeat) and looked up together when new."""
        known = self._is_word
        new = [c for c in codes if c not in known]
        if new:
            found = (self.frequencies(np.array(new, dtype=np.int64), n) > 0).tolist()
            if len(known) < 200_000:
                known.update(zip(new, found, strict=True))
            else:
                return (self.frequencies(np.array(codes, dtype=np.int64), n) > 0).tolist()
        return [known[c] for c in codes]

    def frequencies(self, codes: np.ndarray, n: int) -> np.ndarray:
        """The frequency of each n-character gram code, 0 for a gram that is not a word."""
        table = self._codes.get(n)
        if table is None or not len(table) or not len(codes):
            return np.zeros(len(codes), dtype=np.int64)
        at = np.minimum(np.searchsorted(table, codes), len(table) - 1)
        return np.where(table[at] == codes, self._counts[n][at], 0)

    def get(self, word: str, default: int | None = None) -> int | None:
        table = self._codes.get(len(word))
        if table is None or not len(table) or max(word) >= "\U00010000":
            return default
        code = gram_code(word)
        at = int(np.searchsorted(table, code))
        if at < len(table) and int(table[at]) == code:
            return int(self._counts[len(word)][at])
        return default

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.get(word) is not None

    def __getitem__(self, word: str) -> int:
        count = self.get(word)
        if count is None:
            raise KeyError(word)
        return count

    def __len__(self) -> int:
        return sum(len(c) for c in self._codes.values())


_WORDS_FORMAT = 1


@lru_cache(maxsize=1)
def zh_word_frequencies() -> ZhWords:
    """jieba's two- and three-character words and their frequencies, loaded once per process.

    The matcher uses it to tell a real word it does not index (点击) from a pinyin slip (着伙).
    Parsing the dictionary takes a quarter of a second, at the start of every process; the
    result is kept in the user's cache directory, keyed by the dictionary file, and read back in
    a few milliseconds. Without a writable cache it is parsed every time.
    """
    jieba = importlib.util.find_spec("jieba")
    if jieba is None or not jieba.origin:
        return ZhWords({}, {})
    source = Path(jieba.origin).with_name("dict.txt")
    try:
        stat = source.stat()
    except OSError:
        return ZhWords({}, {})
    cache = _cache_dir() / f"zh-words-{_WORDS_FORMAT}-{stat.st_size}-{stat.st_mtime_ns}.npz"
    try:
        with np.load(cache) as saved:
            return ZhWords({n: saved[f"codes{n}"] for n in (2, 3)},
                           {n: saved[f"counts{n}"] for n in (2, 3)})
    except (OSError, ValueError, KeyError, EOFError):
        pass  # not cached yet, or a damaged file: parse and write it anew
    words = _parse_word_dictionary(source.read_text(encoding="utf-8"))
    _save_quietly(cache, words)
    return words


def _parse_word_dictionary(text: str) -> ZhWords:
    parts = text.split()  # "word frequency tag" on every line
    words, counts = parts[0::3], parts[1::3]
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    codes_by_n: dict[int, np.ndarray] = {}
    counts_by_n: dict[int, np.ndarray] = {}
    for n in (2, 3):
        chosen = np.flatnonzero(lengths == n).tolist()
        chars = np.frombuffer("".join(words[i] for i in chosen).encode("utf-32-le"),
                              dtype=np.uint32).reshape(-1, n).astype(np.int64)
        # Only Chinese characters are ever looked up (words such as "A股" never are).
        chinese = np.all(is_cjk_code(chars), axis=1)
        code = np.zeros(len(chars), dtype=np.int64)
        for k in range(n):
            code = (code << 16) | chars[:, k]
        frequency = np.array([int(counts[i]) for i in chosen], dtype=np.int64)
        code, frequency = code[chinese], frequency[chinese]
        order = np.argsort(code, kind="stable")
        codes_by_n[n], counts_by_n[n] = code[order], frequency[order]
    return ZhWords(codes_by_n, counts_by_n)


def is_cjk_code(codes: np.ndarray) -> np.ndarray:
    """Whether each code point is a Chinese character as :func:`cjk_runs` finds them."""
    return (((codes >= 0x3400) & (codes <= 0x4DBF)) | ((codes >= 0x4E00) & (codes <= 0x9FFF))
            | ((codes >= 0xF900) & (codes <= 0xFAFF)))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "quickresponse"


def _save_quietly(path: Path, words: ZhWords) -> None:
    """Write the parsed table for the next process; a read-only home just means no cache."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed into place: a process starting meanwhile never reads half.
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as file:
            tmp = Path(file.name)
            np.savez(file, **{f"codes{n}": words._codes[n] for n in (2, 3)},
                     **{f"counts{n}": words._counts[n] for n in (2, 3)})
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("word table not cached: %s", exc)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
