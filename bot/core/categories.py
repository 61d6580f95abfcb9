"""Request categories: which intents become tickets, and how people read them."""

from __future__ import annotations

REQUEST_INTENTS = ("repair", "canteen", "medical", "complaint", "urgent")
UNCLASSIFIED = "unclassified"
URGENT = "urgent"
# Neighbours chatting: never a ticket by itself (a member may still confirm one as a request).
CHITCHAT = "chitchat"

CATEGORY_LABELS = {
    "repair": "维修",
    "canteen": "助餐",
    "medical": "医疗",
    "complaint": "投诉",
    "urgent": "紧急",
    UNCLASSIFIED: "未分类",
}


def category_for_intent(intent: str) -> str:
    """A request intent is its own category; the fallback and anything else is 未分类."""
    return intent if intent in REQUEST_INTENTS else UNCLASSIFIED
