"""The pages' scripts are plain ES modules, no build step (bot/web/static). One import of a
name a module no longer exports stops the whole page before any of it runs, so: every import
resolves to a file the server serves as JavaScript and to a name that file exports, and each
page preloads exactly the modules its entry pulls in."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.helpers import Service

ENTRIES = {
    "/console/": "console.js",
    "/console/overview": "overview.js",
    "/ops/review": "ops.js",
    "/webchat/": "webchat.js",
}

MODULE_SCRIPT = re.compile(r'<script type="module" src="/static/([\w.-]+)"></script>')
PRELOAD = re.compile(r'<link rel="modulepreload" href="/static/([\w.-]+)">')
IMPORT = re.compile(r"^import \{([^}]*)\} from '\./([\w.-]+)';", re.MULTILINE)
EXPORT_LIST = re.compile(r"^export \{([^}]*)\};", re.MULTILINE)
EXPORT_DECLARATION = re.compile(r"^export (?:async )?(?:function|const|let|class) ([\w$]+)", re.M)


def names(listed: str) -> set[str]:
    return {name.strip() for name in listed.split(",") if name.strip()}


def exported(source: str) -> set[str]:
    found = set(EXPORT_DECLARATION.findall(source))
    for listed in EXPORT_LIST.findall(source):
        found |= names(listed)
    return found


def imported(source: str) -> Iterator[tuple[str, set[str]]]:
    for listed, module in IMPORT.findall(source):
        yield module, names(listed)


@pytest.mark.parametrize("page", ENTRIES)
async def test_every_import_is_served_and_exported(service: Service, page: str) -> None:
    html = await (await service.client.get(page)).text()
    assert MODULE_SCRIPT.findall(html) == [ENTRIES[page]]
    sources: dict[str, str] = {}
    waiting = [ENTRIES[page]]
    while waiting:
        module = waiting.pop()
        if module in sources:
            continue
        resp = await service.client.get(f"/static/{module}")
        assert resp.status == 200, module
        assert resp.content_type in ("text/javascript", "application/javascript"), module
        sources[module] = await resp.text()
        waiting += [target for target, _ in imported(sources[module])]
    for module, source in sources.items():
        assert not re.search(r"^import\b(?! \{[^}]*\} from '\./)", source, re.M), module
        for target, wanted in imported(source):
            missing = wanted - exported(sources[target])
            assert not missing, f"{module} imports {sorted(missing)} that {target} does not export"
    assert sorted(PRELOAD.findall(html)) == sorted(set(sources) - {ENTRIES[page]})


async def test_the_console_service_worker_is_served_from_the_console_path(
    service: Service,
) -> None:
    """Urgent requests show as system notifications through a service worker; its scope is the
    directory it is served from, so it must come from /console/ itself, as JavaScript."""
    resp = await service.client.get("/console/sw.js")
    assert resp.status == 200
    assert resp.content_type == "text/javascript"
    assert "notificationclick" in await resp.text()
    # The page registers the worker at that address.
    alerts = await (await service.client.get("/static/console-alerts.js")).text()
    assert "'/console/sw.js'" in alerts
