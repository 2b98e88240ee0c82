"""Recognise a message that describes an emergency happening now.

An urgent reply puts 110/119/120 first, so the detector leans towards recall: a resident in
danger who is not recognised loses minutes. It still must not fire on the far more common
preparation and knowledge questions ("how do I escape a house fire", "如果被洪水围困了怎么办").

The signal is built from three kinds of cue, found in the normalised text:

* a distress call ("救命", "help me", "SOS") — urgent on its own unless clearly hypothetical;
* a situation statement: something dangerous described as happening ("着火了", "被困在",
  "煤气味很重", "is on fire", "not breathing", "blood is soaking"), or a sign said together with
  what makes it one (dizzy beside a coal stove, a river turning muddy, a crash and someone hurt);
* the framing: hypothetical or knowledge-question shapes ("如果", "万一", "的话", "what should I
  do if", "how do I", "能不能", "有什么症状") against present-tense markers ("现在", "正在", "快",
  "right now", "!!"). Laughter ("lol", "哈哈") does not count against urgency: "my boss is on
  fire today lol" getting the fire numbers first costs little, a frightened teenager's "my
  house is on fire lol" going without them could cost a life.

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
    # water pouring in now (Cantonese 入紧 is 正在进; 灌进来 without water is a draught: _ZH_PAIRS)
    "水冲进来", "水灌进", "水涌进", "水往里", "水正在进", "正在进水", "一直进水", "不停进水",
    "不断进水", "水漫进来",
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
    "血一直往外冒", "往外冒血", "血一直流", "四周都是水", "困在屋顶", "在屋顶上等",
    "在进水", "到膝盖了", "到腰了", "浸到腰", "我还在下面", "余震又来了", "手脚发麻", "一直吐",
    "黑烟涌", "浓烟涌", "烟涌进", "烟冲进", "没过门槛", "流进屋", "进屋了", "门把手烫", "门烫",
    "门很热", "门推不开", "车门打不开", "车门推不开", "水到车窗", "闪电离我很近", "没地方躲",
    "周围没有房子", "马上撤离", "要漫了", "漫过来了", "到大腿", "到胸口", "到脖子",
    "砸下来了", "快掉下来了", "要掉下来了", "摇摇欲坠", "开始进水", "还在里面", "好虚弱",
    "站不稳", "站不起来",
    "骨头露出来", "摔倒了起不来", "浑身发烫", "说胡话", "噎住了", "卡住喉咙",
    "躺在地上不动", "趴在地上不动", "倒在血泊",
    # heatstroke signs
    "神志不清", "意识模糊", "意识不清", "浑身滚烫", "全身滚烫", "身上滚烫", "身体滚烫", "浑身滚热",
    "全身发烫", "皮肤滚烫",
    # traffic (撞车了 and 翻车了 are also everyday slang: a clash, a flop)
    "出车祸了", "发生车祸了", "车翻了",
    # electricity
    "触电了", "被电了", "电到了", "趴在电线上", "碰到电线", "电线掉下来", "电线断了",
    "被电击", "电倒了", "碰了电线", "摸了电线", "摸到电线", "抓着电线", "抓住电线", "掂了电线",
    "掂到电线", "碰到了电线",
    # collapse, earthquake, mudslide
    "楼在晃", "房子在晃", "晃得厉害", "摇得厉害", "正在震",
    "塌了", "倒塌了", "压在下面", "压住了", "埋在", "被埋", "被压", "有人在喊", "有人被困",
    "泥石流来了", "山洪来了", "滚下来", "滑坡了", "冲下来", "塌方了",
)

# Statement families too varied for a phrase list, matched on the characters only (their pinyin
# would be homophones of everyday words: 烫伤了 / 躺上了). The normalised text has spaces for
# punctuation, so [^ ] stays within one clause.
_ZH_GAS_NAMES = "煤气|燃气|天然气|液化气"
_ZH_GAS = f"(?:{_ZH_GAS_NAMES}|臭鸡蛋)的?(?:味道|气味|味)"
_ZH_SHAKING = "(?:摇晃|晃动|震动|抖动|颤动|摇|晃|抖|震|颤)"
_ZH_SITUATION_FAMILIES = re.compile(
    # a strong gas smell: 好大阵煤气味, 煤气味特别重, 满屋都是燃气味
    f"(?:好大|很大|一大|好浓|很浓|特别浓|超浓|超级浓|好重|很重|特别重|超重|超级重|浓浓|浓烈|浓重"
    f"|刺鼻|呛人)(?:的|阵|股|一阵|一股)*{_ZH_GAS}"
    f"|{_ZH_GAS}(?:也|还|都|真的?)?(?:很|好|特别|超级|超|太|非常|真|越来越|巨|十分|相当)"
    f"(?:重|浓|大|冲|刺鼻|呛)"
    f"|(?:满屋|全屋|到处|整个屋|整个家)[^ ]{{0,3}}{_ZH_GAS}"
    # a building shaking now: 楼在摇, 地在晃, 房子在抖 (地 and 屋 alone only with 在: 地震了)
    f"|(?:楼|楼房|大楼|房子|房间|屋子|屋|(?<![工场草土田陆基园耕空各本当外内高绿湿营])地|地面|地板"
    f"|墙|墙壁|床|天花板|吊灯|灯|柜子|窗户|桌子|东西)(?:也|都|还)?"
    f"(?:在|正在|一直在|不停地?|开始|突然|剧烈地?|猛烈地?)+{_ZH_SHAKING}"
    f"|(?:楼|楼房|大楼|房子|房间|屋子|地面|地板|墙壁|天花板|柜子|窗户){_ZH_SHAKING}"
    f"(?:起来|个不停|得好厉害|得很厉害|得好犀利)"
    # burns: 烧伤了, 被开水烫了, 烫伤只手 (Cantonese 烫亲), 起了个大水泡
    "|烧伤了|烫伤了|灼伤了|被烧伤|被烫伤|被烫了|被开水烫|被热水烫|被热油烫|被油烫|被火烧伤|烫到了"
    "|(?:烫伤|烧伤|灼伤)(?:了|只|个|到)?(?:手|脚|脸|腿|胳膊|手臂|背|胸|头|眼)"
    "|烫[^ ]{0,3}(?:起泡|水泡)"
    # a battery or plug smoking or popping: 电池冒烟, 鼓包冒烟, 插座噼啪响
    "|(?:电池|电瓶|充电宝|锂电|电芯|电动车|电动自行车|平衡车|滑板车|手机|充电器|插座|插线板|插头"
    "|电线|笔记本|电脑|移动电源)[^ ]{0,6}?(?:冒烟|冒火|爆火|起火|着火|噼啪|噼里啪啦|劈啪|劈里啪啦"
    "|啪啪响|嘶嘶"
    "|滋滋响|打火花|冒火花|烧焦味|鼓包[^ ]{0,4}(?:冒烟|发烫|很烫|好烫|烫手|响))"
    "|(?:电池|电瓶|充电宝|锂电|电芯)[^ ]{0,4}?(?:爆了|炸了|爆炸了)"
    # hit by a vehicle: 被车撞了, 被电动车撞倒, 撞倒了人
    "|被[^ ]{0,4}车[^ ]{0,2}(?:撞|碾|压|刮倒)|被撞倒|被撞伤|撞到人了|撞了人|撞伤了人"
    "|车撞人了|撞倒了(?:人|一个|个|一位|位|老人|小孩|孩子|行人|他|她|我)|车[^ ]{0,4}撞倒了"
    # someone lying on the ground (not 把水倒在地上, pouring, nor 瓶子倒在地上)
    "|(?:人|他|她|我|爸|妈|爷|奶|婆|公|孩子|儿子|妻子|男子|女子|儿|女|友|事|居|傅|哥|姐|弟|妹|叔"
    "|姨|舅|伯|宝|生|工)"
    "倒在(?:地上|地下|地板|路上|马路)"
    "|倒在(?:地上|地下|地板|路上|马路)[^ ]{0,2}(?:不动|起不来|没反应|没意识|抽|流血|昏|叫不醒|一动)"
    "|一动不动(?!地)")
# Statements that need two things said: a sign and where it is happening. The sign must be
# stated, not what something can cause ("会头晕", "导致恶心").
_ZH_NOT_STATED = "(?<![会能])(?<!容易)(?<!可能)(?<!导致)(?<!引起)(?<!造成)(?<!让人)(?<!使人)"
_ZH_PAIRS = (
    # carbon monoxide: dizzy or sick beside a stove, heater or engine
    # (头疼 alone is also "a nuisance", so pain needs an intensity word)
    (re.compile(_ZH_NOT_STATED + "(?:头(?:好|很|特别|有点|超|非常)?(?:晕|昏)|头(?:好|很|特别|超"
                "|非常)(?:痛|疼)|晕晕|晕乎|想吐|想呕|恶心|作呕|呕吐|吐了|呕了|浑身无力|四肢无力"
                "|昏昏沉沉)"),
     re.compile("热水器|煤炉|炉子|火炉|暖炉|炭炉|炭火|烧炭|炭盆|木炭|煤球|蜂窝煤|烤火|取暖器"
                "|燃气灶|煤气灶|发电机|车库|壁炉|一氧化碳|煤气中毒|燃气中毒")),
    # water pouring in: 往地下车库里灌, 涌进来, 倒灌 (Cantonese 湧晒入嚟); wind 灌进来 too
    (re.compile("往[^ ]{0,6}?里面?(?:灌|涌)|(?:灌|涌)[^ ]{0,2}进来|倒灌|灌进|涌进"
                "|(?:水|雨)[^ ]{0,4}往[^ ]{0,6}?(?:灌|涌)"),
     re.compile("水|雨|洪|泥浆")),
    # going under (心往下沉 is a feeling)
    (re.compile("往下沉|一直在沉|沉落去|沉了落去|浮不起来|浮不上来|冒不出头|时沉时浮|扑腾"),
     re.compile("水|河|湖|海|池|江|溪|游泳|溺")),
    # burn blisters (not from walking)
    (re.compile("起了[^ ]{0,4}水泡|起水泡|起大水泡|起泡了"),
     re.compile("烫|烧|开水|热水|热油|油溅|火|灼|蒸汽|暖水袋")),
    # flash flood: the river turns muddy, roars or rises all at once
    (re.compile("(?:突然|一下子|忽然)?(?:变浑|变浊|变黄|浑浊|发浑|浑了)|轰隆|隆隆|轰鸣|闷响|巨响"
                "|暴涨|猛涨|突然涨|突然上涨|一下子涨|涨得好快|涨得很快|水位突然"),
     re.compile("河(?![南北])|溪|江边|江水|山沟|水沟|河沟|山谷|峡谷|上游|山洪|山涧|谷底|山里")),
    # heatstroke: not sweating and burning hot or confused
    (re.compile("不出汗|没出汗|没有出汗|没汗|不流汗|没流汗"),
     re.compile("滚烫|发烫|好烫|很烫|烫手|高烧|中暑|神志|糊涂|说胡话|晕倒|晕过去")),
    # a crash with someone hurt
    (re.compile("车祸|撞车|相撞|追尾|翻车"),
     re.compile("受伤|流血|出血|昏迷|一动不动|伤者|伤员|伤得|骨折|卡在车里|困在车里|被卡|压住"
                "|没反应|叫不醒")),
    # a power cut with someone on a breathing machine
    (re.compile("停电|没电|断电|跳闸"), re.compile("呼吸机|制氧机|透析|吸痰器")),
    # someone lying still after touching electricity
    (re.compile("倒在|躺在|睡在|趴在|倒下|昏过去|晕过去|晕倒|不动了|一动不动|没反应"),
     re.compile("电线|电源|插座|电门|电闸|漏电|带电|高压线|电箱")),
)

# Conditional framing: the resident is asking ahead of time, whatever else the message says.
_ZH_CONDITIONAL = re.compile(r"如果|万一|要是|假如|假设|的话|以防|预防|防止|平时|提前")
# Knowledge-question framing: not urgent unless the resident is in it ("我", "现在", "快").
_ZH_QUESTION = re.compile(
    r"第一步|该做什么|该怎么|应该怎么|应该做|怎么做|怎么处理|怎么救|怎么逃|怎么急救|如何|能不能|能否|可不可以"
    r"|可以吗|要不要|是不是|会不会|有什么|有哪些|什么症状|注意什么|注意事项|以后|之后|过后|区别|正常吗"
    r"|哪个|哪里|往哪|看到有人|发现有人|遇到|碰上|怎么办|怎么求救|如何求救|还是|吗$|吗 |么$"
    r"|见到有人|怎么帮|怎么让|怎么告诉|怎么联系|怎么呼救|震后|灾后|为什么|为啥|什么是|什么意思"
    r"|先做什么|要做什么|征兆|前兆|预兆|方法|步骤|常识|知识|指南|须知|多久|多长时间|几分钟")
_ZH_NOW = re.compile(
    r"现在|正在|刚刚|刚才|快点|快来(?!了)|急急|急死|紧急|好危险|怎么办啊|怎么办怎么办"
    # a shaking, rising or burning that is going on (房子在晃, 水在涨)
    r"|在(?:晃|摇|震|抖|涨|冒烟|烧|进水|漏)(?![^ ]{0,2}的时候)"
    # just home, just through the door; a strong smell of gas is smelt now
    r"|已经(?!灭|没事|出来|过去|好了|救出)|刚(?=[进到回下起醒出])"
    f"|(?:好大|很大|好浓|很浓|好重|很重|特别重|特别浓)(?:的|阵|股)*(?:{_ZH_GAS_NAMES})的?"
    r"(?:味道|气味|味)")
_ZH_FIRST_PERSON = re.compile(r"我|咱|这里|这边")

# ---- English ---------------------------------------------------------------------------------

# "help me with my homework", "I need help choosing a mask": help with a task is no distress.
_EN_DISTRESS = re.compile(
    r"\b(help (me|us|please)|please help|someone help|somebody help|sos|mayday"
    r"|call (an|the) ambulance|send (help|an ambulance|someone)|we need help|i need help"
    r"|need help now|kill myself|end my life|want to die|do not want to live|going to jump"
    r"|(going to|wants to|want to) end it|(kill|hurt) (himself|herself|themselves)"
    r"|take (his|her|their) own life)\b"
    r"(?!( me| us)? (with|to|find|understand|choose|choosing|pick|write|learn|fix|make|decide"
    r"|plan)\b)")

# Said by someone smelling it: a situation, and one happening now.
_EN_SMELLS_OF_GAS = r"smells? (really |very |so )?strong(ly)? of gas"
_EN_SITUATION = re.compile(
    r"\b("
    # fire and smoke
    r"(is|are|s) on fire|caught fire|catching fire|there is (a )?fire|fire in (my|our|the) "
    r"|(flat|apartment|house|home|kitchen|room|building|car|bike|battery) is burning"
    r"|smoke (is )?(everywhere|coming|pouring|filling)|full of (black |thick )?smoke|thick smoke"
    r"|door (handle )?(is )?(hot|very hot|warm)"
    r"|can not see for smoke"
    r"|flames"
    # trapped
    r"|(we are|i am|they are|he is|she is|are|is|am|got|we re|i m) (trapped|stuck|stranded)"
    r"|trapped|stranded|can not get out|cannot get out|no way out"
    r"|stuck in (a |the |an )?(lift|elevator)|(lift|elevator) (is )?stuck"
    r"|(in|inside) (a|the) (lift|elevator) for (\d+|an|half|over)"
    # water
    r"|water is (rising|coming in|up to|pouring in)|pouring into|rising fast|is underwater"
    r"|(in|into) (waist|chest|neck)[ -]deep water|water all around (us|me)|surrounded by water"
    r"|(at|over|above|past|up to) (my|our|his|her) (ankles|knees|thighs|waist|chest|neck|shoulders)"
    r"|(still|keeps) (coming up|rising)|(river|water|flood) is coming over"
    r"|(water|river|mud) (is |s )?(pouring|rushing|gushing|streaming) (down|over|into|in)"
    r"|(telling|told) us to (leave|get out|evacuate)( now)?|no cover|swinging loose"
    r"|hair is standing( up)?|striking (really |very )?close"
    r"|(sign|billboard|tree|wall|roof|ceiling|balcony|scaffolding|building|pole|it) (is |s )?about"
    r" to (fall|come down|collapse)|dust (is )?falling|ceiling is (falling|cracking)"
    r"|crack (has )?opened|(in|into) a ditch|slid off the road|can not see (the car|the road"
    r"|anything|a thing)|can (barely|hardly) (stand|breathe|walk)"
    r"|(we are|i am|we re|i m) on the roof|current is pulling|nowhere to hide"
    r"|are underwater|under water"
    r"|(up to|reached) (my|our|the) (knee|waist|chest|neck|door|window)"
    r"|(is|are|am|s) drowning|(someone|somebody|kid|child|man|woman|boy|girl) drowning"
    r"|in the water|fell (in|into|through)|swept away|being swept|went under"
    r"|water (is |s |are |keeps |kept |started |starts |has started )?(still )?(flooding|gushing"
    r"|pouring|rushing|streaming|surging|pushing|coming|seeping|bubbling) (in|into|under"
    r"|through the|up through|up from|up the)"
    # A home filling with water; a public car park flooding is news, not the resident in it.
    r"|(basement|cellar|garage|ground floor|house|home|flat|apartment|kitchen|living room"
    r"|bedroom) (is|s) (now |quickly |still )?(flooding|filling (up )?(with water|fast|quickly))"
    r"|(keeps|kept) (going|slipping) under|(going|slipping) under (the )?water"
    r"|(head|face) (keeps |is |s )?(going|slipping) under"
    # gas and poisoning
    r"|(i|we) (can )?smell gas|smells? (of|like) gas|strong (gas )?smell|gas (is )?leaking|hissing"
    rf"|{_EN_SMELLS_OF_GAS}"
    r"|(reek|reeks|reeking|stink|stinks|stinking) of gas|smelling gas"
    r"|(strong|heavy|overpowering|intense|thick|really bad|awful) (smell of gas|gas smell"
    r"|gas odou?r|smell of rotten eggs|rotten egg smell)"
    r"|gas (smell|odou?r) (is )?(so |really |very |getting )?(strong|bad|heavy|overpowering"
    r"|stronger|everywhere)"
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
    # ("i burned the toast" is cooking)
    r"|(got|been|badly|severely) (burned|burnt|scalded)"
    r"|(was|is|s|he|she|i|we|they|baby|child|just) scalded"
    r"|scalded (my|his|her|him|herself|himself|myself|themselves|their|our)"
    r"|(burned|burnt) (my|his|her|their|our) (hand|hands|arm|arms|leg|legs|face|foot|feet|finger"
    r"|fingers|skin|back|chest|neck)|(burned|burnt) (myself|himself|herself|themselves)"
    r"|(spilled|spilt|poured|knocked) (boiling|hot) (water|oil|tea|coffee|soup) (on|over)"
    r"|(has|got|having|with|suffering from) (a )?(heat ?stroke|sunstroke)"
    r"|(hit|struck|knocked (down|over)|run over|mown down) by (a|an|the) (car|truck|lorry|bus|van"
    r"|motorbike|motorcycle|scooter|vehicle|taxi|cyclist|bike|driver|train|tram)"
    r"|(was|got|been|just) (hit|run over|knocked down|knocked over) (by a|on the (road|street"
    r"|crossing))"
    # electricity
    r"|electrocuted|got (a|an) (electric )?shock|being shocked|touching (a|the) (live )?wire"
    r"|(touched|grabbed|grabbing|holding) (a|the) (live |power |electric |electrical |bare "
    r"|exposed |fallen )?(wire|cable|power line|socket|outlet)"
    r"|(he|she|they|someone|somebody|man|woman|boy|girl|child|kid|baby|toddler|person|dad|daddy"
    r"|father|mum|mom|mother|grandpa|grandad|grandma|granny|grandfather|grandmother|husband|wife"
    r"|son|daughter|friend|neighbour|neighbor|worker|colleague|brother|sister|uncle|aunt|guy"
    r"|lady|driver|cyclist|electrician) (is|are|s) (still |just )?(lying|laid out|sprawled) (on"
    r"|in) the (floor|ground|road|street|pavement|grass|water|bathroom floor|kitchen floor)"
    r"|lying (there )?(motionless|unconscious|lifeless|face down)"
    r"|(wire|line|cable)s? (is |are )?(down|sparking)"
    # collapse, earthquake, mudslide
    r"|buried|building (has )?collapsed|house (has )?collapsed|roof (has )?collapsed|crushed"
    r"|(rock|rocks|mud|stones|debris) (are |is )?(sliding|falling|coming down|rolling)"
    r"|mudslide is|landslide is"
    r"|(building|house|flat|apartment|home|floor|ground|room|walls?|everything|whole (building"
    r"|house|room|place|flat|floor|tower)|bed|windows?|ceiling|furniture|tower|block|earth) (is "
    r"|are |s |keeps |started |starts |has started |began )(violently |really |badly |so |still "
    r"|suddenly )?(shaking|swaying|trembling|rocking|moving|wobbling|shuddering)"
    r"|(building|house|flat|floor|ground|room|everything) (shaking|swaying|trembling|rocking) (hard"
    r"|violently|badly|right now|now)"
    r"|(earthquake|quake|tremor) (is )?(happening|going on|right now)"
    r"|(having|in the middle of) an? (earthquake|quake)|(i|we) (can )?feel (an|the|a) (earthquake"
    r"|quake|tremor)"
    r"|(battery|batteries|phone|laptop|power ?bank|powerbank|charger|ebike|scooter|plug|socket"
    r"|outlet|wire|cable|wiring|extension lead) (is |are |s |started |starts |keeps |has started )"
    r"(now )?(smoking|popping(?! off)|sparking|smouldering|smoldering|crackling|hissing|exploding"
    r"|melting)"
    # a swollen battery alone is for the recycling point; swollen and hot or hissing is not
    r"|(battery|power ?bank|powerbank) (is |has )?(swollen|swelling|bulging|puffed)( up)? and "
    r"(is )?(very |really |so )?(hot|smoking|hissing|popping|smells|smelling|burning|sparking)"
    r")")

_EN_CONDITIONAL = re.compile(r"\b(if|what if|in case|suppose|supposing|whether)\b")
_EN_QUESTION = re.compile(
    r"\b(before|prepare|preparing|ever|usually|tips|advice|when there is|during a|should i"
    r"|should we|should you|how do|how does|how to|how can|how should|how long|how much|how many"
    r"|what should|what do|what to do|is it safe|is it ok|can i|can you|can we|what is|what are"
    r"|what does|after|difference|prevent|prevention|avoid|safety|someone who|a person who|why"
    r"|first aid for|warning signs?|signs of|symptoms of)\b"
    # A question that starts with its verb ("can a heater make you dizzy", "is it normal that").
    r"|^(can|could|does|do|did|is|are|will|would)\b")
_EN_NOW = re.compile(r"\b(right now|now|still|since|currently|at the moment|hurry|quick|quickly"
                     r"|urgent|asap|as soon as possible|get (everyone|everybody|them|us) out"
                     r"|just (caught|collapsed|fell|went|broke|cut|hit|started|began|told|passed"
                     r"|swallowed|stopped)|(strong|heavy|overpowering) (smell of gas|gas smell)"
                     rf"|{_EN_SMELLS_OF_GAS}"
                     r"|(an|one|two|three|\d+|half an) (hour|hours|minutes|mins) after)\b")
# "I" and "we" inside a question ("how do I", "can we", "how should I help") are generic, not
# a resident in it.
_EN_FIRST_PERSON = re.compile(
    r"\b(i am|we are|my|our|here|(?<!do )(?<!should )(?<!can )(?<!could )(?<!would )(?<!shall )"
    r"(i|we) (?!do\b|should\b|can\b|could\b|would\b|will\b|know\b"
    r"|tell\b|want\b|need to\b|have to\b|must\b|get\b)\w+)\b")
# Two things said together: a sign, and the place or cause that makes it an emergency.
_EN_NOT_STATED = (r"(?<!make you )(?<!makes you )(?<!cause )(?<!causes )(?<!lead to )"
                  r"(?<!giving me )(?<!gives me )(?<!give me )(?<!giving me a )(?<!gives me a )")
_EN_PAIRS = (
    # carbon monoxide: dizzy or sick beside a heater, stove or engine
    (re.compile(_EN_NOT_STATED + r"\b(dizzy|dizziness|light ?headed|throwing up|threw up|vomit"
                r"|vomiting|vomited|being sick|been sick|nauseous|nausea|nauseated"
                r"|(feel|feels|feeling) sick"
                r"|headaches?|drowsy|woozy|groggy|can not stay awake)\b"),
     re.compile(r"\b(heater|heaters|stove|coal|generator|charcoal|boiler|furnace|fireplace"
                r"|brazier|gas fire|kerosene|paraffin|wood burner|log burner|engine (is )?running"
                r"|car (is )?running|garage|carbon monoxide|co alarm|co detector|fumes)\b")),
    # flash flood: the river turns muddy, roars or rises all at once
    (re.compile(r"\b((suddenly )?(turned|turning|went|gone|going|got|getting) (muddy|brown)"
                r"|suddenly (muddy|brown)|(roaring|rumbling|thundering) (sound|noise)"
                r"|(roar|rumble|rumbling|roaring) (from |coming from )?(upstream|up the)"
                r"|(river|water|creek|stream) (is |s )?(roaring|rumbling|thundering)"
                r"|rising (fast|quickly|suddenly|so fast)|suddenly ris(en|ing|e)|wall of water"
                r"|(water|river|creek|stream|flood) (is |s )?surging)\b"),
     re.compile(r"\b(river|rivers|creek|stream|brook|valley|canyon|gorge|upstream|riverbank"
                r"|ravine|gully|wadi|riverbed)\b")),
    # heatstroke: confused or not sweating, and hot
    (re.compile(r"\b(confused(?! (about|by|with|why|what|how|which|whether))|disoriented"
                r"|disorientated|delirious|incoherent|not making (any )?sense"
                r"|talking nonsense|slurring|(is|s|are|has|have) (stopped|not|no longer) sweating"
                r"|stopped sweating)\b"),
     re.compile(r"\b(hot|heat|sun|sunstroke|heatstroke|heat stroke|temperature|burning up"
                r"|overheated|overheating|fever|sweltering|scorching|red and dry|dry skin)\b")),
    # burn blisters (not from walking)
    (re.compile(r"\b(big|huge|large|massive) blisters?\b"),
     re.compile(r"\b(burn|burns|burned|burnt|scald|scalded|boiling|hot (water|oil|pan|tea|coffee"
                r"|soup)|stove|steam|oven|iron|fire)\b")),
    # a crash with someone hurt
    (re.compile(r"\b((car|road|traffic|bus|motorbike|motorcycle|bike|head on) (crash|accident"
                r"|collision)|(cars?|bus|truck|van|lorry|taxi|motorbike|motorcycle|we|they|he|she"
                r"|i) (have |has )?crashed|crashed (into|head on)|collision|pile up|overturned"
                r"|flipped over)\b"),
     re.compile(r"\b(hurt|injured|injuries|bleeding|unconscious|trapped|not moving|lying"
                r"|screaming|pinned|can not move|blood)\b")),
    # someone in the water going under
    (re.compile(r"\b(is|s|are|keeps|kept|started|starts) (going|slipping) under\b"),
     re.compile(r"\b(water|river|lake|sea|pool|swim|swimming|canal|pond|reservoir|waves|beach"
                r"|surf|current|flood|ice)\b")),
    # a power cut with someone on a breathing machine
    (re.compile(r"\b(power (just )?(cut|went|is|has gone|s gone) (out|off)|power cut|blackout"
                r"|no power|lost power|power outage)\b"),
     re.compile(r"\b(oxygen (machine|concentrator)|ventilator|respirator|home oxygen|dialysis"
                r"|cpap)\b")),
    # a battery popping, hissing or smoking
    (re.compile(r"\b(smoking|popping|sparking|sparks|crackling|hissing|smouldering|smoldering"
                r"|exploded|exploding|melting)\b"),
     re.compile(r"\b(battery|batteries|power ?bank|powerbank|charger|ebike|escooter|e scooter"
                r"|lithium)\b")),
)
# A story that has ended ("幸好有人及时扑灭了", "luckily nobody was hurt") is told afterwards.
_ZH_OVER = re.compile(r"幸好|好在|幸亏|还好没|扑灭了|已经灭了|已经没事|没事了|救出来了|已经出来了"
                      r"|曾经|有一次(?!性)|有一回|上个?礼拜|上周|上个月|去年|前年|那次|前两天|前几天|上次")
_EN_OVER = re.compile(r"\b(luckily|thankfully|fortunately|no one was hurt|nobody was hurt"
                      r"|was put out|were rescued|got out safely|(is|are|am) (fine|ok|okay) now"
                      r"|yesterday|last (night|week|month|year|summer|winter|spring|autumn|time)"
                      r"|\w+ ago|the other day"
                      # "it caught fire once": on one occasion. "once the fire is out", "at once"
                      # and "once again" are not a past story.
                      r"|(?<!\bat )(?<!\ball at )once(?! (again|more|the|it|its|we|you|i|he|she"
                      r"|they|everyone|everybody|all|my|our|his|her|their|that|this|there|a|an"
                      r"|someone|somebody|people|water|help)\b))\b")

# Cue words English typos are corrected to (trappd -> trapped).
_EN_CUE_WORDS = (
    "fire", "smoke", "burning", "flames", "trapped", "stuck", "stranded", "collapsed",
    "unconscious",
    "breathing", "breathe", "drowning", "bleeding", "blood", "electrocuted", "shock", "fainted",
    "passed", "pulse", "responding", "unresponsive", "choking", "seizure", "buried", "underwater",
    "rising", "help", "emergency", "ambulance", "headache", "headaches", "faint", "leaking",
    "sliding", "falling", "swept", "soaking", "pouring", "everywhere", "stopped", "crushed",
    "scalded", "vomiting", "nauseous", "elevator",
)
# Words the patterns use are never "corrected" into a cue word (shaking is not soaking, smoking
# is not soaking, turning is not burning).
_EN_PATTERN_WORDS = frozenset(re.findall("[a-z]{5,}", " ".join(
    pattern.pattern for pattern in (_EN_DISTRESS, _EN_SITUATION, _EN_CONDITIONAL, _EN_QUESTION,
                                    _EN_NOW, _EN_FIRST_PERSON, _EN_OVER,
                                    *(pattern for pair in _EN_PAIRS for pattern in pair)))))


_METAPHOR = re.compile(
    r"(被)?(工作|作业|邮件|消息|信息|任务|文件|订单|考试)(给)?淹没(了)?"
    r"|\b(flooded|drowning|swamped|buried) (with|in) (work|emails?|messages|calls|orders"
    r"|homework|paperwork|requests)\b"
    r"|\b(inbox|phone|chat|feed|timeline|code|boss|team|market|sales|striker|player) (is|s)"
    r" on fire\b"
    r"|\b(morale|business|company|mortgage|loan|sales|profits?)s? (is |are |has been |have been "
    r"|s )?(under water|underwater|drowning|sinking)\b")


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


_Pairs = tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]


def _pair_matches(pairs: _Pairs, text: str) -> list[re.Match[str]]:
    """The sign and the context of every pair said together in ``text``."""
    found: list[re.Match[str]] = []
    for sign, context in pairs:
        said = sign.search(text)
        where = context.search(text) if said else None
        if said and where:
            found += (said, where)
    return found


def _find_situation(text: str, fixed: str, sound: str) -> re.Match[str] | None:
    return (_find_phrase(_ZH_SITUATION, text, sound) or _ZH_SITUATION_FAMILIES.search(text)
            or next(iter(_pair_matches(_ZH_PAIRS, text)), None) or _EN_SITUATION.search(fixed)
            or next(iter(_pair_matches(_EN_PAIRS, fixed)), None))


@lru_cache(maxsize=4096)
def _correct_english(word: str) -> str:
    if len(word) < 5 or word in _EN_CUE_WORDS or word in _EN_PATTERN_WORDS:
        return word
    best = process.extractOne(word, _EN_CUE_WORDS, scorer=fuzz.ratio, score_cutoff=84)
    return best[0] if best else word


def assess(normalised: str, raw: str = "") -> Urgency:
    """Decide whether the (normalised) message describes an emergency happening now.

    ``raw`` is the message as typed, for the marks normalisation drops ("!!").
    """
    # "被工作淹没了", "flooded with emails": a figure of speech, not water.
    text = _METAPHOR.sub(" ", normalised).strip()
    if not text:
        return Urgency(False)
    sound = _pinyin_key(text) if _CJK.search(text) else ""
    # English cue words are corrected for typos (colapsed -> collapsed) before matching.
    fixed = " ".join(_correct_english(w) if w.isalpha() else w for w in text.split())
    found = {
        "conditional": _ZH_CONDITIONAL.search(text) or _EN_CONDITIONAL.search(fixed),
        "distress": _find_phrase(_ZH_DISTRESS, text, sound) or _EN_DISTRESS.search(fixed),
        "situation": _find_situation(text, fixed, sound),
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
        matches = [m for pattern, where in (
            (_ZH_DISTRESS[0], text), (_ZH_SITUATION[0], text), (_ZH_SITUATION_FAMILIES, text),
            (_EN_DISTRESS, fixed), (_EN_SITUATION, fixed)) for m in pattern.finditer(where)]
        matches += _pair_matches(_ZH_PAIRS, text) + _pair_matches(_EN_PAIRS, fixed)
        statements = tuple(m.group().strip() for m in matches)
    return Urgency(urgent, cues, statements)


def is_urgent(text: str, raw: str = "") -> bool:
    """True when ``text`` (normalised or not) describes an emergency happening now."""
    return assess(normalise(text), raw or text).urgent
