"""Everything the bot itself says to a resident about a request, and how it reads their answer
to "how did it go". The bot's words are few: who is coming, and nothing else it can avoid."""

from __future__ import annotations

import re
import unicodedata

from bot.core.chat import RATING_CHOICES
from bot.db.models import Member
from bot.handoff.dispatcher import Assignment
from bot.handoff.incidents import SHARED_THINGS

NOBODY_ON_DUTY = "已记下您的事，社区工作人员会尽快在这里回复您。"
CALL_120 = "如有生命危险请立即拨打120"
# When the request names no hazard: the two commonest, someone hurt and gas.
SAFETY = f"{CALL_120}；燃气泄漏请开窗、不要开关电器并拨打119。"
WHOLE_BRANCH = "已请社区所有在岗的志愿者帮忙，第一位有空的会马上联系您。"
THANKS = "谢谢您告诉我们！"
RATING_TOO_LATE = "谢谢您！这件事已经办结了，评价时间过了就不记了。有新的事随时跟我说。"
CALL_INSTEAD = "消息没能送到居民那里，请电话联系{name}：{phone}"
VISIT_INSTEAD = "消息没能送到居民那里，居民没有留电话，请上门或在群里找{name}。"
PHOTO = "[照片]"
VOICE = "[语音]"

SATISFIED, SO_SO, UNSATISFIED = RATING_CHOICES
RATINGS = {
    SATISFIED: (
        "1", "满意", "非常满意", "很满意", "挺满意", "比较满意", "满意的", "好", "很好", "挺好",
        "很好的", "挺好的", "不错",
    ),
    SO_SO: ("2", "一般", "还行", "还可以", "凑合", "一般般"),
    UNSATISFIED: ("3", "不满意", "很不满意", "不太满意", "不好", "差", "太差", "不行", "不怎么样"),
}  # fmt: skip
# "Still leaking", "broken again", "not fixed": a follow-up saying the request is not done.
NOT_FIXED = re.compile(
    r"还是(漏|坏|不行|不亮|不通|不响|没好|没修|没人来|老样子)|又(漏|坏|不行|停|不亮|堵)"
    r"|没(修好|弄好|解决|好|人来)|不管用|还没(修|好|弄|来)|根本没"
)
_NOISE = re.compile(r"[\s\W_]+")
# Said at the end of a spoken answer ("还行吧", "满意啊") without changing it.
_PARTICLES = re.compile(r"[啊呀吧呢啦哦嘛]+$")


# Words that name a problem and nobody's details, so that a line in a group can say which
# problem it answers: shared supplies and facilities (those incidents are recognised by),
# then what goes wrong in a home, meals and health.
PROBLEM_WORDS = (
    *SHARED_THINGS,
    "漏水", "渗水", "漏雨", "水管", "水龙头", "马桶", "热水器", "燃气", "煤气", "门锁", "窗户",
    "空调", "插座", "电线", "灯泡", "午饭", "晚饭", "早饭", "订饭", "送饭", "送餐", "血压",
    "血糖", "配药", "取药", "看病", "体检", "摔倒", "晕倒", "着火", "停车", "异味",
)  # fmt: skip
# When the request names none of them: what kind of request it is.
KIND_OF_REQUEST = {
    "repair": "报修的事",
    "canteen": "订餐的事",
    "medical": "看病的事",
    "complaint": "您反映的事",
    "urgent": "您的求助",
}


# What to do before anyone arrives, for the hazard a request names, first match wins: a
# flooded family told to open the windows for gas would be told nothing useful.
HAZARD_ADVICE = (
    (
        re.compile(r"着火|起火|失火|火灾|冒烟|浓烟|烟雾|火苗|火星|烧起来"),
        "着火请先离开屋子、不要坐电梯，出去后拨打119。",
    ),
    (
        re.compile(r"煤气|燃气|然气|天然气|漏气|气味|报警器|烧炭|一氧化碳"),
        "燃气泄漏或烧炭中毒请开窗，不要开关电器和点火，人先到屋外，再拨打119。",
    ),
    (
        re.compile(r"电梯.{0,6}(困|关|卡)|(困|关|卡)在电梯"),
        "困在电梯里请按警铃，不要扒门，在里面等人来救。",
    ),
    # Before the flood: a burst pipe that floods the flat needs its valve and the power off,
    # not higher ground.
    (
        re.compile(r"水管.{0,4}(爆|裂|崩|断)|爆管|喷水|往外(喷|涌)|总阀"),
        "水管爆了请先关总阀，关不上就拉下电闸，别碰泡了水的插座和电器。",
    ),
    (
        re.compile(r"地震|塌|滑坡|泥石流|山洪|洪水|大水|淹|漫进|进水|墙倒|被埋"),
        "房子危险或水在上涨，请先到高处，远离危墙和电线，有人被困请拨打119。",
    ),
)
# Someone hurt or ill, and nothing else named: the gas advice would only be noise.
HURT = re.compile(
    r"摔|跌|血|晕|昏|叫不醒|胸|心口|喘|呼吸|中风|抽搐|疼|痛|咬|蜇|触电|电到|溺|吃错|吞|中毒"
    r"|没气|烫|撞|压住|压在"
)


def safety_for(text: str) -> str:
    """An emergency's first line: what to do before anyone arrives, for what the request
    names."""
    for pattern, advice in HAZARD_ADVICE:
        if pattern.search(text):
            return f"{CALL_120}；{advice}"
    if HURT.search(text):
        return f"{CALL_120}。"
    return SAFETY


def problem_of(category: str, text: str) -> str:
    """Which problem a line in a group answers ("停水的事"): the first of `PROBLEM_WORDS` the
    request names (the longest where two start together), else its kind. Never the resident's
    own words, which the whole group would read."""
    named = [(text.find(word), -len(word), word) for word in PROBLEM_WORDS if word in text]
    if named:
        return f"{min(named)[2]}的事"
    return KIND_OF_REQUEST.get(category, "您的事")


def coming(who: str, name: str) -> str:
    return f"{who}{name}来帮您，{name}会在这里直接回复您。"


def noted(about: str) -> str:
    """Nobody is on duty to name; `about`, if given, says which request was noted."""
    if not about:
        return NOBODY_ON_DUTY
    return f"{about}已记下，社区工作人员会尽快在这里回复您。"


def who_is_coming(assignment: Assignment, about: str = "") -> str:
    """The one thing the bot says about a request: who will help, by name (in a group, first
    which problem it is about)."""
    member = assignment.member
    if member is None:
        return noted(about)
    if member.role == "secretary":
        return about + coming("已请社区书记", member.name)
    grid = assignment.grid.name if assignment.grid else "社区"
    return about + coming(f"已请{grid}网格员", member.name)


def told(assignment: Assignment) -> str:
    """Everyone told at once, by name (five at most)."""
    names = "、".join(m.name for m in assignment.notified[:5])
    if not names:
        return NOBODY_ON_DUTY
    return f"已通知{names}，第一位赶到的人会马上联系您。"


def urgent_coming(assignment: Assignment, text: str, about: str = "") -> str:
    """An emergency: the safety line for what `text` names first, then everyone who has
    been told."""
    if not assignment.notified:
        return safety_for(text) + noted(about)
    return safety_for(text) + about + told(assignment)


def urgent_confirmed(assignment: Assignment) -> str:
    """A member looked and confirmed it is an emergency: who has been told now."""
    return "已确认是紧急情况，" + told(assignment)


def now_coming(previous: Member | None, assignment: Assignment) -> str:
    """Nobody claimed it in time (or it was handed back): who is coming now, warmly."""
    if assignment.broadcast:
        return WHOLE_BRANCH
    member = assignment.member
    if member is None:
        return told(assignment)
    sorry = f"{previous.name}这会儿走不开，" if previous is not None else ""
    who = "已请社区书记" if member.role == "secretary" else "已请"
    return sorry + coming(who, member.name)


def claimed(member: Member, private: bool) -> str:
    """Someone took the request: by name, so the resident knows who will answer; in a private
    chat with the member's phone, when they chose to give it (a group would read it too)."""
    line = f"{member.name}已经接单，会在这里直接回复您。"
    if private and member.share_phone and member.phone:
        line += f"有急事可以打{member.name}的电话：{member.phone}"
    return line


def joined_incident(member: Member | None, claimed: bool, about: str = "") -> str:
    """A neighbour already reported the same thing: say who is on it."""
    reported = f"邻居也报了{about or '这件事'}，"
    if member is None:
        return reported + NOBODY_ON_DUTY
    if claimed:
        return f"{reported}{member.name}正在处理，有进展会在这里告诉您。"
    return reported + coming("已请", member.name)


def incident_claimed(label: str, member_name: str) -> str:
    return f"{label}已有{member_name}在处理。"


def incident_resolved(label: str) -> str:
    return f"{label}已经处理好了，谢谢大家。"


def survey(member_name: str, note: str = "") -> str:
    """Done: the member's own word on it, if they left one, and the one question."""
    said = f"\n{member_name}说：“{note}”\n" if note else ""
    return f"{member_name}已经把这件事办好了。{said}这次办得怎么样？回复1满意、2一般、3不满意就行。"


def sorry_reopened(secretary: Member | None) -> str:
    if secretary is None:
        return "对不起，没让您满意。" + NOBODY_ON_DUTY
    return "对不起，没让您满意。" + coming("已请社区书记", secretary.name)


def looked_at_again(member: Member | None) -> str:
    if member is None:
        return "好的，" + NOBODY_ON_DUTY
    return f"好的，已请{member.name}再来看看，{member.name}会在这里直接回复您。"


def read_rating(text: str) -> str | None:
    """1/2/3 or 满意/一般/不满意 (typed, tapped or spoken; punctuation, full-width digits and
    a closing 吧 or 啊 allowed)."""
    plain = _PARTICLES.sub("", _NOISE.sub("", unicodedata.normalize("NFKC", text)))
    for rating, answers in RATINGS.items():
        if plain in answers:
            return rating
    return None


def says_not_fixed(text: str) -> bool:
    return NOT_FIXED.search(unicodedata.normalize("NFKC", text)) is not None
