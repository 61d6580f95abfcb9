"""Prometheus metrics for what matters to a resident: how fast a person answers, how much is
resolved. One registry per app, served at GET /metrics."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

# From "a neighbour answered at once" to "half a day".
RESPONSE_BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    messages: Counter
    tickets_opened: Counter
    tickets_resolved: Counter
    first_response: Histogram
    escalations: Counter
    ratings: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            messages=Counter(
                "bot_inbound_messages",
                "Residents' messages stored (duplicates excluded)",
                ["channel"],
                registry=registry,
            ),
            tickets_opened=Counter(
                "bot_tickets_opened", "Requests handed to a person", ["category"], registry=registry
            ),
            tickets_resolved=Counter(
                "bot_tickets_resolved", "Requests resolved", ["category"], registry=registry
            ),
            first_response=Histogram(
                "bot_first_response_seconds",
                "Time from a request to a person's first reply",
                ["category"],
                buckets=RESPONSE_BUCKETS,
                registry=registry,
            ),
            escalations=Counter(
                "bot_escalations",
                "Requests nobody claimed in time, by the step they went to",
                ["level"],
                registry=registry,
            ),
            ratings=Counter(
                "bot_ratings",
                "Residents' answers to 'how did it go'",
                ["rating"],
                registry=registry,
            ),
        )

    def render(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response
