"""`GET /webchat/privacy`: one screen for residents on what is kept, for how long and who sees
it, with the figures this service is configured with (`BOT_RETENTION_DAYS`). docs/privacy.md
is the full account for the people who run it."""

from __future__ import annotations

from aiohttp import web

from bot.typedefs import settings_key

PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
  <title>隐私说明</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/style.css">
</head>
<body class="page-privacy">
  <main class="view privacy">
    <header class="topbar">
      <a id="privacy-back" class="btn-back" href="/webchat/" aria-label="返回聊天">‹</a>
      <h1 class="topbar-title">隐私说明</h1>
      <span class="topbar-spacer"></span>
    </header>
    <section class="privacy-part" aria-labelledby="kept">
      <h2 id="kept">我们记下什么</h2>
      <ul>
        <li>您的称呼，您发的文字、语音、照片和位置，您留的电话和地址。</li>
        <li>谁来帮您、什么时候办好、您的评价。</li>
        <li>不用身份证，也不用下载软件。</li>
      </ul>
    </section>
    <section class="privacy-part" aria-labelledby="how-long">
      <h2 id="how-long">留多久</h2>
      <ul>
        <li id="privacy-retention">{retention}</li>
        <li>只留下不带个人信息的统计：什么事、多久办好、满不满意。</li>
        <li>还没办完的事，会留到办完为止。</li>
      </ul>
    </section>
    <section class="privacy-part" aria-labelledby="who-sees">
      <h2 id="who-sees">谁能看到</h2>
      <ul>
        <li>负责您这个网格的党员志愿者和社区书记。</li>
        <li>您的完整电话要他们点一下才显示，每次查看都有记录。</li>
        <li>在邻里群里，电话和身份证号会被遮住（如 139****5678）。</li>
        <li>帮系统学习的工作人员只看到遮住号码的文字，不知道是谁说的。</li>
      </ul>
    </section>
    <section class="privacy-part" aria-labelledby="yours">
      <h2 id="yours">想看或想删</h2>
      <p>请告诉社区书记：可以把记下的内容都给您看，也可以全部删除。</p>
    </section>
  </main>
</body>
</html>
"""


def notice(retention_days: int) -> str:
    months = round(retention_days / 30)
    about = f"（大约{months}个月）" if months >= 2 else ""
    retention = f"事情办完<strong>{retention_days}天</strong>{about}后，文字、语音和照片自动删除。"
    return PAGE.format(retention=retention)


async def page(request: web.Request) -> web.Response:
    return web.Response(
        text=notice(request.app[settings_key].retention_days), content_type="text/html"
    )
