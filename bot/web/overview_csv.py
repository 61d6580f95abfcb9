"""The overview as a CSV file a secretary opens in Excel: UTF-8 with a byte order mark (the
caller encodes it so), one section per table, Beijing time, and no cell Excel would run as a
formula. The residents' words in it come masked (`bot.handoff.overview`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from bot.core.categories import CATEGORY_LABELS
from bot.handoff.overview import OVERDUE_AFTER, UNKNOWN_GRID, Overview
from bot.handoff.roles import ROLE_LABELS
from bot.handoff.schedule import LOCAL

Cell = str | int
# A cell starting with one of these is a formula to Excel (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe(cell: Cell) -> Cell:
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def local_time(moment: datetime) -> str:
    return moment.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def minutes(seconds: float | None) -> Cell:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def percent(share: float | None) -> Cell:
    return "" if share is None else f"{share * 100:.1f}%"


def _summary(figures: Overview) -> list[list[Cell]]:
    reply, escalations = figures.first_reply, figures.escalations
    overdue_hours = int(OVERDUE_AFTER.total_seconds() // 3600)
    rows: list[list[Cell]] = [
        ["指标", "数值", "说明"],
        ["求助总数", figures.requests, "这段时间居民提出的求助"],
        ["第一次回复·中位数（分钟）", minutes(reply.median_s), "一半的求助在这么久之内有人回复"],
        ["第一次回复·90%（分钟）", minutes(reply.p90_s), "九成的求助在这么久之内有人回复"],
        ["有人回复过的求助", reply.answered, "上面两个数按这些求助算"],
        ["还在等第一次回复", reply.waiting, "还没办完、也还没人回复的求助"],
    ]
    for share in figures.resolved:
        rows.append(
            [
                f"{share.hours}小时内解决",
                percent(share.share),
                f"满{share.hours}小时的{share.due}件求助里，{share.resolved}件在{share.hours}小时内办好",
            ]
        )
    satisfaction = figures.satisfaction
    rows += [[f"居民评价·{rating}", count, ""] for rating, count in satisfaction.counts.items()]
    rows += [
        ["满意率", percent(satisfaction.satisfied_share), f"{satisfaction.rated}位居民评价过"],
        ["现在在办", figures.open_now, "还没办完的求助"],
        ["现在超时", figures.overdue_now, f"超过{overdue_hours}小时还没办完"],
        ["没人及时认领而升级", escalations.escalated, "转给下一位、书记或全支部"],
        ["党员退回", escalations.handed_back, "接单的党员说接不了"],
        ["全支部都通知了仍没人认领", escalations.unanswered_by_branch, ""],
        ["重新打开", escalations.reopened, "居民说没修好，或者不满意"],
        ["可能需要帮忙·还没人看", figures.unseen_total, "群里或私聊里可能是求助、还没人确认的消息"],
    ]
    return rows


def _grids(figures: Overview) -> list[list[Cell]]:
    rows: list[list[Cell]] = [["网格", "社区", "在办", "超时", "本期求助", "本期升级"]]
    rows += [
        [g.grid, g.community, g.open, g.overdue, g.requests, g.escalated] for g in figures.grids
    ]
    return rows


def _members(figures: Overview) -> list[list[Cell]]:
    rows: list[list[Cell]] = [["党员", "角色", "社区", "网格", "在岗", "在办", "超时", "本期办结"]]
    for m in figures.members:
        duty = "暂停接单" if m.paused else ("在岗" if m.on_duty else "不在岗")
        role = ROLE_LABELS.get(m.role, m.role)
        grids = "、".join(m.grids)
        rows.append([m.name, role, m.community, grids, duty, m.open, m.overdue, m.resolved])
    return rows


def _weeks(figures: Overview) -> list[list[Cell]]:
    rows: list[list[Cell]] = [["这一周从", *CATEGORY_LABELS.values(), "合计"]]
    for week in figures.weeks:
        day = week.start.astimezone(LOCAL).strftime("%Y-%m-%d")
        rows.append([day, *(week.counts[c] for c in CATEGORY_LABELS), week.total])
    return rows


def _unseen(figures: Overview) -> list[list[Cell]]:
    rows: list[list[Cell]] = [["编号", "时间", "社区", "网格", "内容（可能需要帮忙，还没人看）"]]
    for item in figures.unseen:
        grid = item.grid or UNKNOWN_GRID
        rows.append([item.id, local_time(item.created_at), item.community, grid, item.text])
    return rows


def overview_csv(figures: Overview) -> str:
    period = figures.period
    head: list[list[Cell]] = [
        ["社区概况", figures.scope.name],
        [
            "时间段",
            f"近{period.days}天：{local_time(period.since)} 至 {local_time(period.until)}",
            "北京时间",
        ],
    ]
    tables = (_summary, _grids, _members, _weeks, _unseen)
    sections = [head, *(table(figures) for table in tables)]
    out = io.StringIO()
    writer = csv.writer(out)
    for i, section in enumerate(sections):
        if i:
            writer.writerow([])
        writer.writerows(_safe_rows(section))
    return out.getvalue()


def _safe_rows(rows: Iterable[list[Cell]]) -> Iterable[list[Cell]]:
    return ([safe(cell) for cell in row] for row in rows)
