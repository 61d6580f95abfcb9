"""The secretary's overview (/console/overview) after a request was handled and rated: its
figures, charts and tables, and the table she downloads for Excel."""

from __future__ import annotations

import codecs

import pytest
from playwright.async_api import Locator

from tests.browser.pages import BROWSER, LAPTOP, PHONE, Site, expect, shot, wider_than_screen

pytestmark = BROWSER


async def lines_of(cell: Locator) -> int:
    """How many lines the cell's text takes on screen."""
    return int(
        await cell.evaluate(
            "e => { const r = document.createRange(); r.selectNodeContents(e);"
            " return r.getClientRects().length; }"
        )
    )


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
async def test_the_overview_counts_a_rated_request_and_downloads_as_a_table_for_excel(
    site: Site, width: int
) -> None:
    await site.rated_request("满意")

    overview = await site.overview(width)

    await expect(overview.page.locator("#overview-scope")).to_contain_text("共1件求助")
    await expect(overview.figure("居民满意")).to_contain_text("100%")
    await expect(overview.figure("第一次有人回复")).to_contain_text("不到1分钟")
    await expect(overview.figure("现在在办").locator(".figure-value")).to_have_text("0")
    grids = overview.page.locator("#grid-table tbody tr", has_text="3号楼")
    await expect(grids.locator("td")).to_have_text(["0", "0", "1", "0"])
    members = overview.page.locator("#member-table tbody tr", has_text="王建国")
    await expect(members.locator("td").last).to_have_text("1")
    # A phone's narrow tables wrap their long headings, never a grid's or a member's name.
    for name in ("3号楼", "王建国", "刘桂兰"):
        assert await lines_of(overview.page.locator(".overview-table tbody th", has_text=name)) == 1
    for chart in ("grids", "weeks", "satisfaction"):
        await expect(overview.page.locator(f"#chart-{chart} svg")).to_be_visible()
    await expect(overview.page.locator("#chart-satisfaction svg")).to_contain_text("满意")
    assert await wider_than_screen(overview.page) == []
    await shot(overview.page, "overview")

    table = await overview.download_csv()
    assert table.startswith(codecs.BOM_UTF8)
    assert "3号楼" in table.decode("utf-8-sig")
    await expect(overview.page.locator("#ok-banner")).to_contain_text("表格已下载")
