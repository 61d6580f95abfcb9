"""The markdown cards the WeCom group robot posts in the party members' work group.

One card per new ticket, or one digest card when too many wait (`bot.channels.notify` decides
which). Resident-written text is masked and cannot format the card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.categories import CATEGORY_LABELS
from bot.db.models import Ticket
from bot.privacy import mask_phone, mask_text

EXCERPT_CHARS = 30

# Characters that WeCom markdown would read as formatting (or as a <font> tag) when they come
# from a resident; their full-width twins look the same to a reader and format nothing.
_MARKDOWN_SAFE = str.maketrans({"<": "＜", ">": "＞", "[": "［", "]": "］", "*": "＊", "`": "｀"})
_WHITESPACE = re.compile(r"\s+")


def ticket_card(ticket: Ticket, console_url: str) -> str:
    """A short markdown card for the work group; phone and ID numbers are masked."""
    resident = ticket.resident
    name = _inline(resident.name or "") if resident is not None else ""
    phone = ticket.contact_phone()
    lines = [
        _title(ticket),
        f"> 居民：{name or '居民'}",
        f"> 电话：{_masked_phone(str(phone)) if phone else '未留'}",
        f"> 诉求：{_excerpt(ticket.text or '')}",
        f"[打开工单]({ticket_link(console_url, ticket.id)})",
    ]
    return "\n".join(lines)


def ticket_link(console_url: str, ticket_id: int | None) -> str:
    """The console addresses a ticket by its hash (`#t=ID`, see console.js)."""
    root = console_url.split("#", 1)[0]
    return root if ticket_id is None else f"{root}#t={ticket_id}"


def _title(ticket: Ticket) -> str:
    label = CATEGORY_LABELS.get(ticket.category, ticket.category)
    grid = _inline(ticket.grid.name) if ticket.grid is not None else ""
    grid = grid or "未定网格"
    if ticket.category == "urgent":
        # The grid's members are asked first whether it is (bot/handoff/urgency.py).
        label = "可能紧急" if ticket.possibly_urgent else label
        return f'**新求助** · <font color="warning">{label}</font> · **{grid}**'
    return f"**新求助 · {label} · {grid}**"


def _excerpt(text: str) -> str:
    # Mask before cutting: a number cut in half would no longer look like one to mask_text.
    text = _inline(text)
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def _inline(text: str) -> str:
    """Resident-written text made safe for one markdown line."""
    return _WHITESPACE.sub(" ", mask_text(text)).strip().translate(_MARKDOWN_SAFE)


def _masked_phone(phone: str) -> str:
    masked = mask_phone(phone) or ""
    if masked != phone:
        return masked.translate(_MARKDOWN_SAFE)
    # Not a mobile number mask_phone knows (a landline, a typo): show only its last 4 digits.
    digits = sum(c.isdigit() for c in phone)
    shown = 0
    out = []
    for char in reversed(phone):
        if char.isdigit():
            shown += 1
            out.append(char if shown <= 4 and digits > 4 else "*")
        else:
            out.append(char)
    return "".join(reversed(out)).translate(_MARKDOWN_SAFE)


@dataclass(frozen=True)
class Backlog:
    count: int
    last_id: int
    urgent: int


def digest_card(backlog: Backlog, console_url: str) -> str:
    urgent = (
        f'，其中<font color="warning">紧急 {backlog.urgent} 个</font>' if backlog.urgent else ""
    )
    return (
        f"**{backlog.count} 个新求助在排队**{urgent}\n"
        f"求助太多，卡片来不及一条条发。请打开[控制台]({console_url})，先处理紧急的。"
    )
