"""Phone and ID numbers are masked in logs and payloads."""

from __future__ import annotations

import logging

import pytest

from bot.privacy import MaskingFilter, mask_phone, mask_text


def test_phone_numbers_are_masked_in_free_text() -> None:
    text = "我电话13900001234，或者打 138 0013 8000 找我儿子"
    masked = mask_text(text)
    assert "13900001234" not in masked and "0013" not in masked
    assert "139****1234" in masked and "138****8000" in masked
    assert mask_phone("13900001234") == "139****1234"
    assert mask_phone(None) is None


def test_id_numbers_are_masked_and_other_numbers_are_not() -> None:
    masked = mask_text("身份证110101195001011234 住3号楼2单元501 邮编100000")
    assert "110101********1234" in masked
    assert "3号楼2单元501" in masked and "100000" in masked


def test_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.privacy")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.privacy"):
        logger.info("resident wrote %s", "我的电话是13900001234")
    assert "13900001234" not in caplog.text
    assert "139****1234" in caplog.text
