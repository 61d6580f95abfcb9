"""Demo data: two grids, four party members, a branch secretary and an operator, all with
console logins."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.engine import create_engine, create_session_factory
from bot.db.models import Grid, Member, new_invite
from bot.handoff.roles import ROLE_LABELS
from bot.settings import Settings
from bot.web.auth import hash_password

DEMO_PASSWORD = "123456"

GRIDS = [
    ("3号楼", "b3", "三号楼,3栋,3幢"),
    ("东村", "dongcun", "东村组"),
]

# name, role, grids, skills
MEMBERS = [
    ("王建国", "member", ["3号楼"], "维修,调解"),
    ("李秀英", "member", ["3号楼"], "医疗,助餐"),
    ("张志强", "member", ["东村"], "维修,调解"),
    ("刘桂兰", "member", ["东村"], "医疗,助餐"),
    ("陈红梅", "secretary", ["3号楼", "东村"], ""),
    # Reviews what the model got wrong and retrains it (/ops/review, /ops/models).
    ("周晓燕", "operator", [], ""),
]


class RealMembers(Exception):
    """The database has members of its own: demo accounts with a known password do not
    belong there."""


async def seed(settings: Settings, force: bool = False) -> str:
    engine = create_engine(settings.database_url)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            demo_names = [name for name, *_ in MEMBERS]
            others = await session.scalars(
                select(Member.name).where(Member.name.not_in(demo_names))
            )
            real = others.all()
            if real and not force:
                raise RealMembers(
                    f"this database has members of its own ({', '.join(real[:3])}…); demo "
                    f"accounts share the password {DEMO_PASSWORD}. Use --force to seed anyway."
                )
            grids: dict[str, Grid] = {}
            for name, code, aliases in GRIDS:
                grid = await session.scalar(select(Grid).where(Grid.name == name))
                if grid is None:
                    grid = Grid(name=name, code=code, aliases=aliases, invite=new_invite())
                    session.add(grid)
                grids[name] = grid
            for name, role, grid_names, skills in MEMBERS:
                if await session.scalar(select(Member).where(Member.name == name)):
                    continue
                session.add(
                    Member(
                        name=name,
                        role=role,
                        skills=skills,
                        grids=[grids[g] for g in grid_names],
                        password_hash=hash_password(DEMO_PASSWORD),
                    )
                )
    finally:
        await engine.dispose()
    base = settings.public_url
    rooms = "\n".join(
        f"  {name}邻里群 {base}/webchat/?room={grid.invite}" for name, grid in grids.items()
    )
    logins = "\n".join(
        f"  {name:<4} {ROLE_LABELS[role]} {'、'.join(g)}" for name, role, g, _ in MEMBERS
    )
    return (
        f"居民聊天  {base}/webchat/\n{rooms}\n"
        f"党员控制台 {base}/console/  (密码都是 {DEMO_PASSWORD})\n{logins}\n"
        f"模型运营   {base}/ops/review  {base}/ops/models"
    )
