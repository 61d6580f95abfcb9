"""Masking of phone and ID numbers for logs, API payloads and exports."""

from __future__ import annotations

import logging
import re

# Mainland mobile numbers, optionally written with spaces or dashes (138 0013 8000).
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
# 18-digit resident ID numbers (last character may be X).
_ID_CARD = re.compile(r"(?<![\dXx])(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", phone)


def mask_text(text: str) -> str:
    """Mask every ID and phone number inside free text."""
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


class MaskingFilter(logging.Filter):
    """Log filter that masks phone and ID numbers in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
