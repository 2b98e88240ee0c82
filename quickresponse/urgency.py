"""Recognise a message that describes an emergency happening now.

An urgent reply puts 110/119/120 first, so the detector leans towards recall: a resident in
danger who is not recognised loses minutes. It still must not fire on the far more common
preparation and knowledge questions ("how do I escape a house fire", "如果被洪水围困了怎么办").

The signal is built from three kinds of cue, found in the normalised text:

* a distress call ("救命", "help me", "SOS") — urgent on its own unless clearly hypothetical;
* a situation statement: something dangerous described as happening ("着火了", "被困在",
  "煤气味很重", "is on fire", "not breathing", "blood is soaking");
* the framing: hypothetical or knowledge-question shapes ("如果", "万一", "的话", "what should I
  do if", "how do I", "能不能", "有什么症状") against present-tense markers ("现在", "正在", "快",
  "right now", "!!").

Pinyin-input typos (着伙了 for 着火了) are caught by matching the Chinese statements on their
pinyin as well, and English typos (trappd, colapsed) by correcting words to the cue vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from quickresponse.textnorm import normalise, pinyin

# ---- Chinese ---------------------------------------------------------------------------------

_ZH_DISTRESS_PHRASES = (
    "救命", "救救我", "救救他", "救救她", "救救孩子", "快来人", "来人啊", "快救人", "快叫救护车",
    "快打120", "快打119", "快打110", "快报警", "帮帮我",
    # A resident in a suicidal crisis is an emergency too: the reply leads with 120/110.
    "不想活了", "我想自杀", "想自杀", "我想死", "活不下去了", "想轻生",
)

# Situation statements, written as a resident in the middle of it would: most end in 了 or
# describe a state ("全是烟", "出不去"). Plain topic nouns ("煤气味", "溺水") are not statements.
_ZH_SITUATION_PHRASES = (
    # fire and smoke
    "着火了", "起火了", "失火了", "烧起来了", "烧着了", "点着了", "火越来越大", "火很大", "火好大",
    "浇不灭", "扑不灭", "灭不了", "冒烟了", "在冒烟", "冒黑烟", "全是烟", "都是烟", "好多烟",
    "烟很大", "烟太大", "着火啦", "烧起来啦", "爆炸了", "家里着火", "屋里着火", "楼下着火",
    "楼上着火", "厨房着火", "隔壁着火", "正在烧", "门很烫", "门柄很热", "门把手很烫",
    # trapped
    "被困了", "困住了", "被困在", "困在", "出不去", "出不来", "逃不出", "下不去", "卡在电梯",
    "关在电梯", "电梯卡住", "电梯卡了", "电梯卡在", "电梯停了", "电梯掉", "电梯里出不",
    "困在电梯", "里面困了", "出不到",
    # water
    "进水了", "水漫进", "水涨到", "水已经", "水越来越深", "水越来越大", "淹到", "淹没了", "被冲走",
    "冲走了", "水位上涨", "水在涨", "水还在涨", "水一直在涨", "水涨得很快", "水越涨越高",
    "溺水了", "掉水里", "掉进水里", "掉到水里", "掉进河", "掉进湖",
    "掉河里", "掉湖里", "落水了", "沉下去", "在水里挣扎", "还在挣扎", "掉进冰", "冰面裂", "掉冰窟",
    "有人溺水", "有人落水",
    # gas and poisoning
    "煤气味很重", "燃气味很重", "煤气味好重", "燃气味好重", "煤气味很大", "燃气味很大",
    "一股煤气味", "一股燃气味", "一股臭鸡蛋味", "有煤气味", "有燃气味", "闻到煤气味了",
    "闻到燃气味了", "煤气泄漏了", "燃气泄漏了", "漏气了", "嘶嘶响", "中毒了", "头晕想吐",
    "头疼想吐", "头痛想吐", "晕乎乎",
    # body
    "晕倒了", "昏倒了", "晕过去了", "昏过去了", "倒地", "倒下了", "不省人事", "没意识", "没有意识",
    "没知觉", "没有知觉", "失去知觉",
    "叫不醒", "没反应", "没呼吸", "没有呼吸", "没气了", "没脉搏", "没有脉搏", "没心跳", "没有心跳",
    "心跳停", "喘不上气", "喘不过气", "上不来气", "呼吸困难", "抽搐", "口吐白沫", "大出血",
    "流血不止", "血止不住", "止不住血", "血流不止", "一直流血", "血流了", "好多血", "流了很多血",
    "骨头露出来", "摔倒了起不来", "浑身发烫", "说胡话", "噎住了", "卡住喉咙",
    # electricity
    "触电了", "被电了", "电到了", "趴在电线上", "碰到电线", "电线掉下来", "电线断了",
    "被电击", "电倒了",
    # collapse, earthquake, mudslide
    "楼在晃", "房子在晃", "晃得厉害", "摇得厉害", "正在震",
    "塌了", "倒塌了", "压在下面", "压住了", "埋在", "被埋", "被压", "有人在喊", "有人被困",
    "泥石流来了", "山洪来了", "滚下来", "滑坡了", "冲下来", "塌方了",
)

# Conditional framing: the resident is asking ahead of time, whatever else the message says.
_ZH_CONDITIONAL = re.compile(r"如果|万一|要是|假如|假设|的话|以防|预防|防止|平时|提前")
# Knowledge-question framing: not urgent unless the resident is in it ("我", "现在", "快").
_ZH_QUESTION = re.compile(
    r"第一步|该做什么|该怎么|应该怎么|应该做|怎么做|怎么处理|怎么救|怎么逃|怎么急救|如何|能不能|能否|可不可以"
    r"|可以吗|要不要|是不是|会不会|有什么|有哪些|什么症状|注意什么|注意事项|以后|之后|过后|区别|正常吗"
    r"|哪个|哪里|往哪|看到有人|发现有人|遇到|碰上|怎么办|怎么求救|如何求救|还是|吗$|吗 |么$"
    r"|见到有人|怎么帮|怎么让|怎么告诉|怎么联系|怎么呼救|震后|灾后")
_ZH_NOW = re.compile(r"现在|正在|快点|快来|急急|急死|紧急|好危险|怎么办啊|怎么办怎么办")
_ZH_FIRST_PERSON = re.compile(r"我|咱|这里|这边")

# ---- English ---------------------------------------------------------------------------------

# "help me with my homework", "I need help choosing a mask": help with a task is no distress.
_EN_DISTRESS = re.compile(
    r"\b(help (me|us|please)|please help|someone help|somebody help|sos|mayday"
    r"|call (an|the) ambulance|send (help|an ambulance|someone)|we need help|i need help"
    r"|need help now|kill myself|end my life|want to die|do not want to live|going to jump)\b"
    r"(?!( me| us)? (with|to|find|understand|choose|choosing|pick|write|learn|fix|make|decide"
    r"|plan)\b)")

_EN_SITUATION = re.compile(
    r"\b("
    # fire and smoke
    r"(is|are|s) on fire|caught fire|catching fire|there is (a )?fire|fire in (my|our|the) "
    r"|(flat|apartment|house|home|kitchen|room|building|car|bike|battery) is burning"
    r"|smoke (is )?(everywhere|coming|pouring|filling)|full of smoke|thick smoke"
    r"|can not see for smoke"
    r"|flames"
    # trapped
    r"|(we are|i am|they are|he is|she is|are|is|am|got|we re|i m) (trapped|stuck|stranded)"
    r"|trapped|stranded|can not get out|cannot get out|no way out"
    r"|stuck in (a|the|an) (lift|elevator)|(lift|elevator) (is )?stuck"
    # water
    r"|water is (rising|coming in|up to|pouring in)|pouring into|rising fast|is underwater"
    r"|are underwater|under water"
    r"|(up to|reached) (my|our|the) (knee|waist|chest|neck|door|window)"
    r"|(is|are|am|s) drowning|(someone|somebody|kid|child|man|woman|boy|girl) drowning"
    r"|in the water|fell (in|into|through)|swept away|being swept|went under"
    # gas and poisoning
    r"|(i|we) (can )?smell gas|smells? (of|like) gas|strong (gas )?smell|gas (is )?leaking|hissing"
    r"|feel(ing)? faint|splitting headache|headaches?( and| with)? (dizzy|nausea|vomit)"
    # body
    r"|collapsed|passed out|fainted|unconscious|not breathing|stopped breathing|can not breathe"
    r"|cannot breathe|struggling to breathe|no pulse|not responding|unresponsive|choking"
    r"|having a (seizure|heart attack|fit)|seizure|heart attack|turning blue|not moving"
    r"|(will|can) not wake( up)?"
    r"|(is|are) sinking|(is|are) in the (river|lake|sea|canal|reservoir|pond)"
    r"|bleeding (heavily|badly|a lot|everywhere|won)"
    r"|blood (is )?(everywhere|soaking|pouring|spurting|gushing)"
    r"|will not stop bleeding|lot of blood|losing blood|cut (my|his|her|their) \w+ badly"
    r"|skin is burning hot|burning hot|broke (my|his|her) (leg|arm)"
    # electricity
    r"|electrocuted|got (a|an) (electric )?shock|being shocked|touching (a|the) (live )?wire"
    r"|(wire|line|cable)s? (is |are )?(down|sparking)"
    # collapse, earthquake, mudslide
    r"|buried|building (has )?collapsed|house (has )?collapsed|roof (has )?collapsed|crushed"
    r"|(rock|rocks|mud|stones|debris) (are |is )?(sliding|falling|coming down|rolling)"
    r"|mudslide is|landslide is"
    r")")

_EN_CONDITIONAL = re.compile(r"\b(if|what if|in case|suppose|supposing|whether)\b")
_EN_QUESTION = re.compile(
    r"\b(before|prepare|preparing|ever|usually|tips|advice|when there is|during a|should i"
    r"|should we|should you|how do|how does|how to|how can|how should|how long|how much|how many"
    r"|what should|what do|what to do|is it safe|is it ok|can i|can you|can we|what is|what are"
    r"|what does|after|difference|prevent|prevention|avoid|safety|someone who|a person who)\b")
_EN_NOW = re.compile(r"\b(right now|now|still|since|currently|at the moment|hurry|quick|quickly"
                     r"|urgent|asap|as soon as possible)\b")
# "I" and "we" inside a question ("how do I", "can we", "how should I help") are generic, not
# a resident in it.
_EN_FIRST_PERSON = re.compile(
    r"\b(i am|we are|my|our|here|(?<!do )(?<!should )(?<!can )(?<!could )(?<!would )(?<!shall )"
    r"(i|we) (?!do\b|should\b|can\b|could\b|would\b|will\b|know\b"
    r"|tell\b|want\b|need to\b|have to\b|must\b|get\b)\w+)\b")
# A story that has ended ("幸好有人及时扑灭了", "luckily nobody was hurt") is told afterwards.
_ZH_OVER = re.compile(r"幸好|好在|幸亏|还好没|扑灭了|已经灭了|已经没事|没事了|救出来了|已经出来了")
_EN_OVER = re.compile(r"\b(luckily|thankfully|fortunately|no one was hurt|nobody was hurt"
                      r"|was put out|were rescued|got out safely|(is|are|am) (fine|ok|okay) now"
                      r"|yesterday|last (night|week|month|year)|\w+ ago|the other day)\b")

# Cue words English typos are corrected to (trappd -> trapped).
_EN_CUE_WORDS = (
    "fire", "smoke", "burning", "flames", "trapped", "stuck", "stranded", "collapsed",
    "unconscious",
    "breathing", "breathe", "drowning", "bleeding", "blood", "electrocuted", "shock", "fainted",
    "passed", "pulse", "responding", "unresponsive", "choking", "seizure", "buried", "underwater",
    "rising", "help", "emergency", "ambulance", "headache", "headaches", "faint", "leaking",
    "sliding", "falling", "swept", "soaking", "pouring", "everywhere", "stopped", "crushed",
)


@dataclass(frozen=True)
class Urgency:
    urgent: bool
    cues: tuple[str, ...] = ()
    # When urgent: every phrase that states the emergency (distress calls and situation
    # statements, as written), which names the danger better than the rest of the message.
    statements: tuple[str, ...] = ()


def _pinyin_key(text: str) -> str:
    """Space-separated first readings of each character, with sentinel spaces at both ends."""
    return " " + " ".join(pinyin(ch)[0] if "\u3400" <= ch <= "\ufaff" else ch for ch in text
                          if not ch.isspace()) + " "


def _phrase_matcher(phrases: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A regex over the characters and one over their pinyin, for typo-tolerant phrase search."""
    by_chars = re.compile("|".join(map(re.escape, phrases)))
    # Two-character phrases are too easily homophones of everyday words (倒地 / 到底).
    keys = sorted({_pinyin_key(p)[1:-1] for p in phrases if len(p) >= 3 or p == "救命"},
                  key=len, reverse=True)
    by_sound = re.compile("(?<= )(" + "|".join(map(re.escape, keys)) + ")(?= )")
    return by_chars, by_sound


_ZH_SITUATION = _phrase_matcher(_ZH_SITUATION_PHRASES)
_ZH_DISTRESS = _phrase_matcher(_ZH_DISTRESS_PHRASES)
_CJK = re.compile("[\u3400-\u9fff]")


def _find_phrase(matcher: tuple[re.Pattern[str], re.Pattern[str]], text: str,
                 sound: str) -> re.Match[str] | None:
    return matcher[0].search(text) or (matcher[1].search(sound) if sound else None)


@lru_cache(maxsize=4096)
def _correct_english(word: str) -> str:
    if len(word) < 5 or word in _EN_CUE_WORDS:
        return word
    best = process.extractOne(word, _EN_CUE_WORDS, scorer=fuzz.ratio, score_cutoff=84)
    return best[0] if best else word


def assess(normalised: str, raw: str = "") -> Urgency:
    """Decide whether the (normalised) message describes an emergency happening now.

    ``raw`` is the message as typed, for the marks normalisation drops ("!!").
    """
    text = normalised
    if not text:
        return Urgency(False)
    sound = _pinyin_key(text) if _CJK.search(text) else ""
    # English cue words are corrected for typos (colapsed -> collapsed) before matching.
    fixed = " ".join(_correct_english(w) if w.isalpha() else w for w in text.split())
    found = {
        "conditional": _ZH_CONDITIONAL.search(text) or _EN_CONDITIONAL.search(fixed),
        "distress": _find_phrase(_ZH_DISTRESS, text, sound) or _EN_DISTRESS.search(fixed),
        "situation": _find_phrase(_ZH_SITUATION, text, sound) or _EN_SITUATION.search(fixed),
        "question": _ZH_QUESTION.search(text) or _EN_QUESTION.search(fixed),
        # "现在没事了" and "he is fine now" say the danger is over, not that it is happening.
        "now": _ZH_NOW.search(_ZH_OVER.sub(" ", text)) or _EN_NOW.search(_EN_OVER.sub(" ", fixed)),
        "first_person": _ZH_FIRST_PERSON.search(text) or _EN_FIRST_PERSON.search(fixed),
        "over": _ZH_OVER.search(text) or _EN_OVER.search(fixed),
    }
    cues = tuple(f"{name}:{m.group().strip()}" for name, m in found.items() if m)
    exclaims = raw.count("!") + raw.count("\uff01") >= 2
    if found["conditional"]:
        urgent = False
    elif found["distress"]:
        urgent = True
    elif not found["situation"] or (found["over"] and not found["now"]):
        urgent = False
    elif found["question"]:
        # "有人触电了第一步该做什么" and "地铁站进水了怎么办" ask for knowledge; "我家着火了
        # 怎么办" and "着火了 怎么办!!" are happening.
        urgent = bool(found["now"] or found["first_person"] or exclaims)
    else:
        urgent = True
    statements: tuple[str, ...] = ()
    if urgent:
        # Pinyin matches (typed slips) are left out: the phrase is not in the text as matched.
        statements = tuple(
            m.group().strip() for pattern, where in (
                (_ZH_DISTRESS[0], text), (_ZH_SITUATION[0], text),
                (_EN_DISTRESS, fixed), (_EN_SITUATION, fixed))
            for m in pattern.finditer(where))
    return Urgency(urgent, cues, statements)


def is_urgent(text: str, raw: str = "") -> bool:
    """True when ``text`` (normalised or not) describes an emergency happening now."""
    return assess(normalise(text), raw or text).urgent
