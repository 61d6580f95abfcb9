"""Who may do what: every role against every action, in one table.

A member helps the residents of their grids; the secretary (书记) answers for the whole
branch of her community and sees its audit log and overview (概况); an operator (模型运营)
improves the district's one model from masked texts and never sees a ticket or a phone; an
admin keeps the service (models, audit, accounts) for every community and holds no tickets
either; the district (街道) reads every community's tickets, members, audit log and overview
and changes nothing. Routes name the action they need (`bot.web.api.actor`)."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    TICKETS = "tickets"  # read the tickets offered or assigned to oneself
    HOLD = "hold"  # claim, reply, visit, resolve, merge; be offered or handed a ticket
    SEE_ALL = "see_all"  # every ticket of the branch, not only one's grids
    DISTRICT = "district"  # every community of the district, not only one's own
    PHONE = "phone"  # reveal a resident's full phone number (audited)
    MEMBERS = "members"  # the list of members and who is on duty
    POSSIBLE = "possible"  # decide on messages that may be requests
    CORRECT = "correct"  # correct a ticket's category (feeds the review queue)
    REVIEW = "review"  # the review queue of masked texts
    MODELS = "models"  # train, evaluate, activate and roll back models
    AUDIT = "audit"  # the audit log (安全记录)
    OVERVIEW = "overview"  # the figures residents feel: first reply, resolved, satisfaction


_HELPER = {
    Action.TICKETS,
    Action.HOLD,
    Action.PHONE,
    Action.MEMBERS,
    Action.POSSIBLE,
    Action.CORRECT,
}

PERMISSIONS: dict[str, frozenset[Action]] = {
    "member": frozenset(_HELPER),
    "secretary": frozenset({*_HELPER, Action.SEE_ALL, Action.AUDIT, Action.OVERVIEW}),
    "operator": frozenset({Action.REVIEW, Action.MODELS}),
    "admin": frozenset(
        {Action.REVIEW, Action.MODELS, Action.AUDIT, Action.MEMBERS, Action.DISTRICT}
    ),
    # Reads, never acts: no claim, reply, phone or decision.
    "district": frozenset(
        {
            Action.TICKETS,
            Action.SEE_ALL,
            Action.MEMBERS,
            Action.AUDIT,
            Action.OVERVIEW,
            Action.DISTRICT,
        }
    ),
}
ROLES = tuple(PERMISSIONS)
ROLE_LABELS = {
    "member": "网格员",
    "secretary": "书记",
    "operator": "模型运营",
    "admin": "管理员",
    "district": "街道",
}


def allowed(role: str, action: Action) -> bool:
    return action in PERMISSIONS.get(role, frozenset())


def roles_with(action: Action) -> tuple[str, ...]:
    """The roles that may take `action` (e.g. `HOLD`: the people tickets can go to)."""
    return tuple(role for role in ROLES if allowed(role, action))
