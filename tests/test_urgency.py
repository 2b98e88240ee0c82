"""Urgent means an emergency happening now: the reply must put 110/119/120 first.

Pairs of messages on the same topic: one from a resident in the middle of it, one asking ahead
of time. The detector must tell them apart, typos and Cantonese included.
"""

from __future__ import annotations

import pytest

from quickresponse.textnorm import normalise
from quickresponse.urgency import assess, is_urgent

HAPPENING_NOW = [
    "I'm trapped, water is rising",
    "my dad collapsed in the kitchen",
    "煤气味很重",
    "着火了",
    "救命",
    "someone is drowning in the canal",
    "电梯困住了有老人喘不上气",
    "there's a fire in my building right now",
    "楼道里冒黑烟了 我们出不去",
    "my baby is choking",
    "we're stuck in the lift and my son has asthma, what should we do",
    "朋友被电到了 现在怎么办",
    "the kitchen is on fire",
    "my neighbour's roof collapsed and someone is buried",
    "I can smell gas really strongly in the stairwell",
    "我家着火了怎么逃",
    "家里着火了 怎么办！！",
    "his leg is bleeding heavily and it won't stop",
    "老婆突然晕倒了 叫不醒",
    "我不想活了",
    "i want to kill myself tonight",
]
TYPOS_AND_DIALECT = [
    "着伙了!!",                   # pinyin slip for 着火了
    "救名啊",                      # 救命
    "my husband colapsed and isnt breathing",
    "im trappd in my car the water is up to the windows",
    "屋企著火呀 救命",             # Cantonese, traditional
    "佢晕低咗 冇咗呼吸",           # he fainted, not breathing
    "電梯困住咗 我哋出唔到",
    "我哋喺𨋢入面困咗成個鐘",      # we have been stuck in the lift for an hour
    "水仲喺度漲 我哋俾水困咗喺二樓",  # water still rising, trapped on the first floor
    "楼在晃 灯也在摇 我们在十二楼",
    "my wife slipped in the bath and now she's not moving",
    "阿爸暈咗 叫極都唔醒",                # dad fainted, won't wake however we call
    "個細路跌咗落水塘 仲喺度掙扎",       # the child fell into the pond, still struggling
    "BB食嘢哽親 唞唔到氣",                # the baby is choking, can't breathe
    "the river is pouring into the ground floor and grandma is still down there",
]
ASKING_AHEAD = [
    "how do I escape a house fire",
    "着火了应该怎么办",
    "what should I do if I smell gas",
    "如果被困电梯怎么办",
    "煤气味",
    "fire safety tips for the kitchen",
    "how to help someone who collapsed",
    "火灾逃生",
    "what is CPR",
    "drowning prevention for kids",
    "有人晕倒了应该怎么急救",
    "help",
    "地下室进水了怎么办",
    "万一家里着火了先拿什么",
    "What to do if your car is stuck in flood water",
    "how long can someone survive trapped in rubble",
    "是不是中毒了有什么症状",
    "被困在电梯里应该按哪个按钮",
    "住在高层 楼里着火了是往下跑还是待在家里",
    "after an earthquake, is it safe to go back inside",
    "what is the suicide prevention hotline number",
    "如果朋友说想自杀 我该怎么劝",
    "how can i help a person who got electrocuted",
    "見到有人遇溺 應該點救佢",
    "地震后被埋在下面怎么让外面的人知道",
    "上个月楼下厨房着火了 幸好消防及时扑灭了 我想知道老房子怎么防火",
    "my uncle collapsed at a wedding last month, thankfully he is fine now, is cpr worth learning",
    "we were trapped in the lift for two hours yesterday, who is responsible for maintenance",
    "can someone help me with a fire drill plan for our office",
]


@pytest.mark.parametrize("message", HAPPENING_NOW + TYPOS_AND_DIALECT)
def test_an_emergency_happening_now_is_urgent(message: str) -> None:
    assert is_urgent(message), assess(normalise(message), message).cues


@pytest.mark.parametrize("message", ASKING_AHEAD)
def test_preparation_and_knowledge_questions_are_not_urgent(message: str) -> None:
    assert not is_urgent(message), assess(normalise(message), message).cues


def test_exclamation_marks_turn_a_question_into_an_emergency() -> None:
    assert not is_urgent("有人触电了怎么办")
    assert is_urgent("有人触电了怎么办!!!")


def test_the_cues_explain_the_decision() -> None:
    result = assess(normalise("如果着火了怎么办"), "如果着火了怎么办")
    assert not result.urgent
    assert any(c.startswith("conditional:") for c in result.cues)
    assert any(c.startswith("situation:") for c in result.cues)


@pytest.mark.parametrize("message", ["", "   ", "🙂", "a" * 5000, "火" * 5000])
def test_odd_input_does_not_crash(message: str) -> None:
    assert isinstance(is_urgent(message), bool)


def test_an_emergency_reports_the_phrases_that_state_it() -> None:
    text = "an old man collapsed in the park, he is not breathing"
    statements = assess(normalise(text)).statements
    assert "collapsed" in statements and "not breathing" in statements
    assert "被困在" in assess(normalise("救命 我们被困在二楼 一楼全是水")).statements


def test_a_question_ahead_of_time_states_no_emergency() -> None:
    assert not assess(normalise("如果被困在电梯里怎么办")).statements
    assert not assess(normalise("what should I do if someone collapsed")).statements
