"""Photos and voice clips residents send through the webchat: what may come in, and keeping
them. WeChat keeps its own media and sends us an id; the webchat's come to us, so we keep them
in the database (every worker, on any machine, reads the same), under a random name, as they
came: nobody transcribes a clip, a person listens to it.

What a file is comes from its first bytes, not from what the browser says it is; the two must
agree on photo or voice. Who may fetch one is decided by the ticket its message went to
(`bot.web.api`); `bot.retention` erases them with the words of their conversation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import sessionmaker

from bot.core.chat import Media, MessageKind
from bot.db.models import MediaFile, Message

# A photo the page has already made smaller is a few hundred KB; one sent as the camera took
# it may be several MB. A minute of speech is under 1 MB in any format a browser records.
MAX_BYTES = {"image": 5 * 1024 * 1024, "voice": 2 * 1024 * 1024}
MAX_UPLOAD = max(MAX_BYTES.values())
URL_PREFIX = "/api/media/"


@dataclass(frozen=True)
class Sniffed:
    kind: MessageKind
    content_type: str


class EmptyUpload(ValueError):
    pass


class TooLarge(ValueError):
    pass


class UnsupportedMedia(ValueError):
    """Not a photo or voice clip we keep (or not what the browser said it was)."""


def _sniff(data: bytes) -> Sniffed | None:
    if data.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Sniffed("image", "image/webp")
    # What MediaRecorder makes: WebM (Chrome, Edge), Ogg (Firefox), MP4 (Safari).
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("voice", "audio/webm")
    if data.startswith(b"OggS"):
        return Sniffed("voice", "audio/ogg")
    if data[4:8] == b"ftyp":
        return Sniffed("voice", "audio/mp4")
    return None


def check(data: bytes, declared: str) -> Sniffed:
    """What the upload is; raises `EmptyUpload`, `UnsupportedMedia` or `TooLarge` (for its
    kind)."""
    if not data:
        raise EmptyUpload("empty upload")
    sniffed = _sniff(data)
    family = declared.split("/", 1)[0]
    if sniffed is None or {"image": "image", "voice": "audio"}[sniffed.kind] != family:
        raise UnsupportedMedia(f"{declared or 'no type'} upload is not a photo or voice clip")
    if len(data) > MAX_BYTES[sniffed.kind]:
        raise TooLarge(f"{sniffed.kind} of {len(data)} bytes is over the limit")
    return sniffed


async def keep(sessions: sessionmaker, sniffed: Sniffed, data: bytes) -> Media:
    """Store the file; the message that carries it names it by the returned `Media`."""
    token = secrets.token_urlsafe(18)
    async with sessions() as session, session.begin():
        session.add(
            MediaFile(token=token, content_type=sniffed.content_type, size=len(data), data=data)
        )
    return Media(media_id=token, url=URL_PREFIX + token, format=sniffed.content_type)


async def attach(sessions: sessionmaker, media: Media, message_id: int | None) -> None:
    """The file belongs to its message now; None: the message was a resend already stored
    (with its own file), so this copy goes."""
    async with sessions() as session, session.begin():
        if message_id is None:
            await session.execute(delete(MediaFile).where(MediaFile.token == media.media_id))
        else:
            await session.execute(
                update(MediaFile)
                .where(MediaFile.token == media.media_id)
                .values(message_id=message_id)
            )


async def media_file(session: AsyncSession, token: str) -> tuple[MediaFile, int] | None:
    """The file and the ticket its message went to; None for a token nobody issued, or while
    its message went to no ticket."""
    row = (
        await session.execute(
            select(MediaFile, Message.ticket_id)
            .join(Message, Message.id == MediaFile.message_id)
            .where(MediaFile.token == token, Message.ticket_id.is_not(None))
        )
    ).first()
    return None if row is None else (row[0], row[1])
