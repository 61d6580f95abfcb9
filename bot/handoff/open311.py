"""What the district's city systems may read about requests (Open311 GeoReport v2, the read
side; `bot.web.open311` is its HTTP shape): each request category as a service, each ticket as
a service request that carries nobody's personal data.

Only named columns are selected, never a `Ticket`, so nothing personal can reach the web layer
from here: not the resident's name, phone, words (which may hold a name, a phone number, a
room number or an illness), photos or address as they wrote it, and not who helped. A place is
named down to its grid, a building or a village group, never a household."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.core.categories import CATEGORY_LABELS, UNCLASSIFIED
from bot.db.models import Community, Grid, Ticket
from bot.handoff.schedule import LOCAL
from bot.handoff.states import OPEN_STATUSES, STATUS_LABELS, Status

# The specification's default and most: a city system narrows its window for more.
MAX_REQUESTS = 1000


@dataclass(frozen=True)
class Service:
    code: str
    description: str
    # Comma separated, as the specification has them.
    keywords: str
    group: str
    # What the community does about such a request: a request's service_notice.
    notice: str

    @property
    def name(self) -> str:
        return CATEGORY_LABELS[self.code]

    def fields(self) -> dict[str, Any]:
        """The specification's service, its fields in its order."""
        return {
            "service_code": self.code,
            "service_name": self.name,
            "description": self.description,
            "metadata": False,
            "type": "realtime",
            "keywords": self.keywords,
            "group": self.group,
        }


SERVICES = {
    service.code: service
    for service in (
        Service(
            "repair",
            "家里或楼里的东西坏了：水管漏水、灯不亮、门锁、电梯、停水停电。",
            "漏水, 水管, 电灯, 门锁, 电梯, 停水, 停电",
            "生活服务",
            "网格员上门查看，能修的当场修，修不了的联系物业或师傅。",
        ),
        Service(
            "canteen",
            "老年助餐：订餐、送餐、助餐点的事。",
            "订餐, 送餐, 助餐点, 老年食堂",
            "生活服务",
            "社区助餐点安排订餐或送餐上门。",
        ),
        Service(
            "medical",
            "约家庭医生、量血压、配药、陪同看病。",
            "家庭医生, 血压, 配药, 陪诊",
            "健康服务",
            "联系家庭医生或由党员陪同就医；危急时请先拨打120。",
        ),
        Service(
            "complaint",
            "噪音、垃圾、占道、邻里纠纷等需要协调的事。",
            "噪音, 垃圾, 占道, 邻里纠纷",
            "社区治理",
            "网格员了解情况，找相关的人协调解决。",
        ),
        Service(
            "urgent",
            "有人摔倒、急病、着火、闻到煤气味等紧急情况。",
            "摔倒, 急病, 着火, 煤气",
            "紧急求助",
            "立即通知在岗党员赶到；危及生命请先拨打120或119。",
        ),
        Service(
            UNCLASSIFIED,
            "其他需要社区帮忙的事。",
            "其他, 求助",
            "其他",
            "社区书记了解情况后安排合适的人。",
        ),
    )
}


@dataclass(frozen=True)
class Search:
    """Which requests: made within [start, end], of these services (none: all), open or
    closed (None: both), of one community (None: the whole district). Ids, when given,
    override everything but the community, as the specification says."""

    start: datetime | None = None
    end: datetime | None = None
    service_codes: frozenset[str] = frozenset()
    open: bool | None = None
    community_id: int | None = None
    ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class PublicRequest:
    id: int
    category: str
    status: Status
    # A neighbour's report merged into this incident's ticket.
    merged_into: int | None
    requested_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    community: str
    grid: str | None
    grid_code: str | None

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    def fields(self) -> dict[str, Any]:
        """The specification's service request, its fields in its order; what we never give
        (the resident's words as description, photos, a point on the map) stays null."""
        service = SERVICES[self.category]
        notes = STATUS_LABELS[self.status]
        if self.merged_into is not None:
            notes += f"；与工单#{self.merged_into}是同一件事"
        # A closed request's update is when it was closed (resolved, for a city system).
        updated = self.updated_at if self.open else (self.resolved_at or self.updated_at)
        place = [self.grid, self.community] if self.grid else [self.community]
        # The grid's team answers for it; unplaced, the community's secretary does.
        agency = f"{self.community} {self.grid}网格" if self.grid else self.community
        return {
            "service_request_id": str(self.id),
            "status": "open" if self.open else "closed",
            "status_notes": notes,
            "service_name": service.name,
            "service_code": service.code,
            "description": None,
            "agency_responsible": agency,
            "service_notice": service.notice,
            "requested_datetime": w3(self.requested_at),
            "updated_datetime": w3(updated),
            "expected_datetime": None,
            "address": ", ".join(place),
            "address_id": self.grid_code,
            "zipcode": None,
            "lat": None,
            "long": None,
            "media_url": None,
        }


def w3(moment: datetime) -> str:
    """A moment as the specification writes it, in Beijing time: 2026-11-27T10:00:00+08:00."""
    return moment.astimezone(LOCAL).isoformat(timespec="seconds")


# Only these columns ever leave the database here.
_COLUMNS = (
    Ticket.id,
    Ticket.category,
    Ticket.status,
    Ticket.incident_id,
    Ticket.created_at,
    Ticket.updated_at,
    Ticket.resolved_at,
    Community.name,
    Grid.name,
    Grid.code,
)


def _public(row: Any) -> PublicRequest:
    return PublicRequest(row[0], row[1], Status(row[2]), *row[3:])


async def community_id(sessions: sessionmaker, code: str) -> int | None:
    """The community a city system names by its code (its jurisdiction_id)."""
    async with sessions() as session:
        return await session.scalar(select(Community.id).where(Community.code == code))


async def find_requests(sessions: sessionmaker, search: Search) -> list[PublicRequest]:
    """Newest first, at most `MAX_REQUESTS`."""
    query = (
        select(*_COLUMNS)
        .join(Community, Ticket.community_id == Community.id)
        .outerjoin(Grid, Ticket.grid_id == Grid.id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(MAX_REQUESTS)
    )
    if search.community_id is not None:
        query = query.where(Ticket.community_id == search.community_id)
    if search.ids:
        query = query.where(Ticket.id.in_(search.ids))
    else:
        if search.start is not None:
            query = query.where(Ticket.created_at >= search.start)
        if search.end is not None:
            query = query.where(Ticket.created_at <= search.end)
        if search.service_codes:
            query = query.where(Ticket.category.in_(search.service_codes))
        if search.open is not None:
            is_open = Ticket.status.in_(OPEN_STATUSES)
            query = query.where(is_open if search.open else ~is_open)
    async with sessions() as session:
        return [_public(row) for row in (await session.execute(query)).all()]


async def find_request(
    sessions: sessionmaker, request_id: int, community: int | None
) -> PublicRequest | None:
    found = await find_requests(
        sessions, Search(community_id=community, ids=frozenset({request_id}))
    )
    return found[0] if found else None
