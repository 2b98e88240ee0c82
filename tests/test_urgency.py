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


# Emergencies described in words the first rules missed, each with the preparation or knowledge
# question on the same topic that must stay calm (the framing rules above decide those: a
# conditional, or a question without the resident in it).
CONCEPTS = {
    "strong gas smell": (
        ["家里好大阵煤气味", "厨房煤气味特别重", "一进门就闻到好浓的燃气味", "屋企好大陣煤氣味",
         "楼道里燃气味越来越浓", "满屋都是煤气味",
         "there's a really strong smell of gas in my flat", "the whole house reeks of gas",
         "the gas smell is overpowering in the hallway"],
        ["如果闻到很重的煤气味怎么办", "煤气味很重怎么办",
         "what should I do if the gas smell is strong"]),
    "water pouring in": (
        ["雨水正在往地下车库里灌", "水从门缝灌进来了", "大水涌进来了 一楼全湿了",
         "下水道倒灌了 水漫到客厅", "啲水湧晒入嚟", "水入緊屋",
         "water is flooding in through the garage door", "water's gushing in under the back door",
         "the basement is flooding fast"],
        ["如果地下车库进水怎么办", "怎么防止下水道倒灌", "海水倒灌是什么意思",
         "冷风一直往屋里灌进来", "what to do if water is flooding into the basement",
         "how to stop water coming into the garage"]),
    "flash-flood signs": (
        ["我们在河边露营 河水突然变浑了", "上游传来轰隆声 我们还在溪边", "河水暴涨 我们在河滩上",
         "條河突然變濁 仲有轟隆聲",
         "we're camping by the river and it suddenly turned muddy",
         "there's a roaring sound coming from upstream and we're in the canyon",
         "the creek is suddenly rising and we are on the gravel bar"],
        ["山洪来之前有什么征兆", "河水突然变浑说明什么 有什么征兆",
         "what are the warning signs of a flash flood like a roaring sound",
         "my stomach is rumbling, we are hiking in the valley"]),
    "burns": (
        ["我烫伤了 手上起了大水泡", "孩子被开水烫了", "老公炒菜烧伤了手臂",
         "我淥親隻手 起咗好大粒水泡",
         "I got burned by hot oil", "my toddler just scalded himself with tea",
         "my husband burned his arm on the oven", "I spilled boiling water on my arm"],
        ["烧伤了怎么处理", "烫伤了应该怎么办", "烫伤后起水泡要不要挑破", "走了一天路 脚上起了水泡",
         "how do I treat a burn", "how to treat a child who got burned",
         "what to do if someone got scalded", "I burned the toast again",
         "hiking all day and I have huge blisters on my feet"]),
    "carbon monoxide": (
        ["我头好晕想吐 家里开着热水器洗澡", "一家人头很晕 屋里烧着煤炉", "爸爸在车库里 头很晕 恶心",
         "頭好暈 想嘔 屋企開緊炭爐",
         "I feel dizzy and keep throwing up, we have a gas heater on",
         "my kids are vomiting and we used the generator indoors",
         "we're all nauseous and have headaches, the coal stove is burning"],
        ["用煤炉取暖会不会头晕", "一氧化碳中毒会头晕恶心吗", "车库停车费太贵 真头疼",
         "can a gas heater make you dizzy",
         "what are the symptoms of carbon monoxide poisoning like dizziness",
         "the garage door is giving me a headache"]),
    "traffic accident": (
        ["前面出车祸了 有人倒在地上流血", "我爸被车撞了", "一辆电动车把老人撞倒了",
         "佢俾車撞親 流緊血",
         "前面两车相撞 有人受伤",
         "my son was hit by a car outside the school",
         "there's been a car crash and the driver is bleeding",
         "a cyclist got knocked down by a van and isn't moving"],
        ["出车祸了先做什么", "被车撞了怎么处理", "两部电影撞车了", "那个主播直播翻车了",
         "我的车被撞了 保险怎么赔", "what to do if someone is hit by a car",
         "first aid for people injured in a car crash",
         "crash course in first aid for injured people"]),
    "building shaking": (
        ["楼在摇 我们在二十楼", "地在晃 灯也在晃", "房子在抖 怎么回事", "棟樓喺度搖緊",
         "the building is shaking!!", "everything is shaking and things are falling off shelves",
         "the floor is shaking under us", "our whole house is shaking right now"],
        ["what to do if the building shakes", "如果楼在摇应该往哪跑", "地震的时候房子会晃吗",
         "is it normal for the building to sway in the wind", "工地在震动施工 好吵"]),
    "battery smoking or popping": (
        ["手机电池冒烟了", "电动车电池鼓包冒烟", "充电宝噼啪响 还发烫", "個電池冒煙",
         "my laptop battery is smoking", "the power bank is popping and hissing",
         "the battery is swollen and hot on my desk", "my e-bike battery is popping"],
        ["电池冒烟怎么办", "为什么充电宝会鼓包冒烟", "why do lithium batteries start smoking",
         "my phone is popping off with messages"]),
    "live wire, person lying there": (
        ["我老公碰了电线倒在地上", "工人摸了电线 躺在地上不动", "佢掂咗電線 瞓咗喺地下",
         "my dad touched a live wire and is lying on the floor",
         "he grabbed the cable and now he's lying on the ground"],
        ["what happens if you touch a live wire", "如果有人碰了电线倒在地上怎么办",
         "把剩饭倒在地上了",
         "the dog is lying on the floor"]),
    "going under": (
        ["孩子在水里一直往下沉", "佢喺水度一路沉落去", "孩子在游泳池里一直往下沉",
         "the boy keeps going under in the lake", "my friend is going under in the river"],
        ["溺水的人为什么会往下沉", "我的心一直往下沉",
         "how can you tell if someone is going under while swimming"]),
    "heatstroke": (
        ["爷爷晒太阳后神志不清", "他浑身滚烫 不出汗", "阿婆神志不清 成身滾燙",
         "my grandad is confused and really hot after gardening",
         "he stopped sweating and his skin is hot and red"],
        ["中暑神志不清怎么急救", "今天好热 我都不出汗",
         "what are the signs of heatstroke like not sweating",
         "why am I not sweating in hot weather", "I'm confused about hot water bottles"]),
}


@pytest.mark.parametrize(("concept", "message"), [
    (concept, message) for concept, (now, _) in CONCEPTS.items() for message in now])
def test_more_emergencies_happening_now_are_urgent(concept: str, message: str) -> None:
    assert is_urgent(message), (concept, assess(normalise(message), message).cues)


@pytest.mark.parametrize(("concept", "message"), [
    (concept, message) for concept, (_, ahead) in CONCEPTS.items() for message in ahead])
def test_the_questions_next_to_them_are_not_urgent(concept: str, message: str) -> None:
    assert not is_urgent(message), (concept, assess(normalise(message), message).cues)


def test_a_sign_needs_its_context() -> None:
    # Dizzy with no stove, a roar with no river, blisters with no burn, a crash with nobody hurt.
    assert not is_urgent("我头好晕想吐")
    assert is_urgent("我头好晕想吐 屋里烧着煤炉")
    assert not is_urgent("the neighbours are making a roaring sound")
    assert is_urgent("we are in the gorge and there is a roaring sound")
    assert not is_urgent("走路走到脚起了大水泡")
    assert is_urgent("被热油溅到 起了大水泡")
    assert not is_urgent("the car crashed into a wall")
    assert is_urgent("the car crashed into a wall and the driver is unconscious")


def test_the_phrases_stating_a_paired_sign_name_both_halves() -> None:
    statements = assess(normalise("一家人头很晕 屋里烧着煤炉")).statements
    assert "头很晕" in statements and "煤炉" in statements
    statements = assess(normalise("my kids are vomiting and the generator is indoors")).statements
    assert "vomiting" in statements and "generator" in statements


def test_once_tells_a_story_but_not_once_the_fire_is_out() -> None:
    assert not is_urgent("my kitchen caught fire once, how do I prevent it")
    assert not is_urgent("it caught fire once when the battery was charging")
    assert not is_urgent("我家曾经着火了 老房子怎么防火")
    assert is_urgent("our kitchen caught fire, once the fire is out should we leave")
    assert is_urgent("the pan caught fire once again!!")
    assert is_urgent("the flat is on fire, get out at once")


def test_laughter_does_not_hide_an_emergency() -> None:
    # A joke getting the numbers first costs little; a nervous "lol" must not lose them.
    assert is_urgent("my house is on fire lol what do i do")
    assert is_urgent("我家厨房着火了哈哈哈 怎么办")
    assert is_urgent("help me lol my house is on fire")


def test_just_now_places_the_resident_in_it() -> None:
    # "刚刚" (just now) is happening now: a question about it is urgent.
    assert is_urgent("刚刚回到家 煤气味很重 怎么办")
    assert is_urgent("啱啱返到屋企好大陣煤氣味，點算")
    assert not is_urgent("煤气味很重的时候应该怎么处理")


def test_cut_off_by_water_or_storm_and_bleeding_are_urgent() -> None:
    assert is_urgent("we're in chest-deep water and can't reach the kerb")
    assert is_urgent("we are on the roof, the street has become a river")
    assert is_urgent("on an open hill, thunder right over us and nowhere to hide")
    assert is_urgent("他手被玻璃划开了 血一直往外冒")
    assert not is_urgent("what should you do if you are surrounded by water")
    assert not is_urgent("can we shelter on the roof when it floods")


def test_rising_water_and_close_lightning_told_calmly_are_urgent() -> None:
    assert is_urgent("the hallway smells really strong of gas and the baby is asleep")
    assert is_urgent("water coming down the stairs into our basement, it's up to my knees")
    assert is_urgent("lightning striking really close to the ridge and my hair is standing up")
    assert is_urgent("车库在进水 水到膝盖了 我还在下面")
    assert is_urgent("余震又来了 我们还在楼里")


def test_a_figure_of_speech_is_no_flood() -> None:
    assert not is_urgent("这周被工作淹没了 好累")
    assert not is_urgent("i'm drowning in emails at work today")
    assert is_urgent("洪水淹没了一楼 我们在二楼出不去")


def test_what_is_going_on_now_is_urgent_even_as_a_question() -> None:
    assert is_urgent("地震了 楼在晃 我在五楼 怎么办")
    assert is_urgent("the cellar is filling up fast and grandpa is still down there")
    assert is_urgent("water coming in through the doors, engine's dead, we're under the bridge")
    assert is_urgent("gas smell really strong on our landing, should i get everyone out")
    assert is_urgent("whole building shaking hard right now, 18th floor")
    assert is_urgent("楼道里的电动车电池爆火了 黑烟涌进屋里")
    # ... but "when it shakes" and "if it shakes" ask ahead of time.
    assert not is_urgent("楼在晃的时候应该躲在哪里")
    assert not is_urgent("如果楼在晃怎么办")
    assert not is_urgent("how do i stop rain water coming in under the door")


@pytest.mark.parametrize("message", [
    "water at my chest, should i break the car window now?",
    "stuck in elevatr between floors with my son, lights went out",
    "pan of oil just caught fire, flames up to the hood, what do i throw on it",
    "water pouring down the ramp into the garage and we're down here",
    "corridor full of black smoke, fire alarm going, we're on 23",
    "power just went out and dad is on a home oxygen machine",
    "whole family throwing up an hour after dinner, grandma can barely stand",
    "my neighbour says he is going to end it tonight",
    "hail like golf balls and we're on the bike path with no cover",
    "car slid off the road into a ditch, snowing hard",
    "院子里的水已经没过门槛流进屋了 怎么办",
    "家里停电了 我妈的呼吸机电池只能撑一小时",
    "刚进门就闻到很重的煤气味 灯要不要开",
    "阳台的花架被风吹得快掉下来了 下面都是人",
])
def test_emergencies_told_calmly_or_as_a_question_from_inside_are_urgent(message: str) -> None:
    assert is_urgent(message)


@pytest.mark.parametrize("message", [
    "my inbox is on fire after the holidays",
    "our team's morale has been under water since the reorg",
    "前两天小区停电了一整天 我妈用制氧机 以后再遇到要怎么应对",
    "my grandmother got heatstroke last summer, how do we keep her safe this year",
    "what signs tell us the water upstream is about to come down",
])
def test_figures_of_speech_and_past_stories_are_not_urgent(message: str) -> None:
    assert not is_urgent(message)


def test_words_the_rules_use_are_not_corrected_into_other_cues() -> None:
    # The typo corrector once turned shaking and smoking into soaking.
    assert "situation:building is shaking" in assess(normalise("the building is shaking")).cues
    assert is_urgent("the charger is smoking")
