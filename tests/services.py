"""Whether PostgreSQL and Redis answer, for `make test-pg` to run the suite on them or say why
it does not.

    python -m tests.services DATABASE_URL REDIS_URL
exits 0 when both answer, 1 (with the reason on stderr) when either does not.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg
from redis import asyncio as aioredis
from sqlalchemy.engine import make_url

TIMEOUT_S = 3.0


async def _postgresql(url: str) -> None:
    # asyncpg takes the URL without SQLAlchemy's driver name.
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, timeout=TIMEOUT_S)
    await connection.close()


async def _redis(url: str) -> None:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S)
    try:
        await client.ping()
    finally:
        await client.close()


async def unanswered(database_url: str, redis_url: str) -> list[str]:
    reasons = []
    for name, probe in (("PostgreSQL", _postgresql(database_url)), ("Redis", _redis(redis_url))):
        try:
            await probe
        except Exception as e:  # whatever the reason, the service is not there to test on
            reasons.append(f"{name}: {type(e).__name__}: {e}")
    return reasons


if __name__ == "__main__":
    reasons = asyncio.run(unanswered(*sys.argv[1:3]))
    for reason in reasons:
        print(reason, file=sys.stderr)
    sys.exit(1 if reasons else 0)
