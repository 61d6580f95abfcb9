"""The command line a community's administrator uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bot(db: str, *args: str, models_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_DATABASE_URL": db}
    if models_dir is not None:
        env["BOT_MODELS_DIR"] = str(models_dir)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_grids_and_members_are_added_listed_and_given_tokens(empty_database_url: str) -> None:
    db = empty_database_url
    assert bot(db, "db", "upgrade").returncode == 0
    assert bot(db, "grids", "add", "--name", "5号楼", "--code", "b5").returncode == 0
    added = bot(db, "members", "add", "--name", "周敏", "--grid", "5号楼", "--skills", "维修,医疗")
    assert added.returncode == 0, added.stderr
    secretary = bot(
        db, "members", "add", "--name", "吴书记", "--role", "secretary",
        "--hours", "mon-fri 08:00-18:00",
    )  # fmt: skip
    assert secretary.returncode == 0, secretary.stderr

    listed = bot(db, "members", "list").stdout
    assert "周敏\tmember\t5号楼\t维修,医疗\t随时" in listed
    assert "吴书记\tsecretary\t-\t-\t周一 08:00-18:00，周二 08:00-18:00" in listed

    assert bot(db, "members", "pause", "周敏").returncode == 0
    assert "周敏\tmember\t5号楼\t维修,医疗\t暂停接单" in bot(db, "members", "list").stdout
    assert bot(db, "members", "resume", "周敏").returncode == 0
    assert bot(db, "members", "hours", "周敏", "sat 09:00-12:00").returncode == 0
    assert "周敏\tmember\t5号楼\t维修,医疗\t周六 09:00-12:00" in bot(db, "members", "list").stdout
    bad_hours = bot(db, "members", "hours", "周敏", "weekends")
    assert bad_hours.returncode == 2 and "mon-fri 08:00-18:00" in bad_hours.stderr

    token = bot(db, "members", "token", "周敏")
    assert token.returncode == 0 and len(token.stdout.strip()) >= 40


def test_mistakes_are_explained_not_tracebacks(empty_database_url: str) -> None:
    db = empty_database_url
    unknown_grid = bot(db, "members", "add", "--name", "周敏", "--grid", "火星")
    assert unknown_grid.returncode == 2
    assert "no grid named '火星'" in unknown_grid.stderr and "Traceback" not in unknown_grid.stderr
    assert bot(db, "members", "token", "nobody").returncode == 2
    bad_role = bot(db, "members", "add", "--name", "x", "--role", "king")
    assert bad_role.returncode == 2


def test_ops_activates_lists_and_explains_a_missing_rollback(
    tmp_path: Path, empty_database_url: str, trained_model: Path
) -> None:
    db = empty_database_url
    models = tmp_path / "models"
    models.mkdir()
    (models / "first.tar.gz").symlink_to(trained_model)
    activated = bot(db, "ops", "activate", "first", "--by", "周晓燕", models_dir=models)
    assert activated.returncode == 0, activated.stderr
    listed = bot(db, "ops", "models", models_dir=models).stdout
    assert listed.startswith("* first.tar.gz") and "activated by 周晓燕" in listed
    nothing = bot(db, "ops", "rollback", models_dir=models)
    assert nothing.returncode == 2 and "no earlier model" in nothing.stderr


def test_communities_hold_their_grids_and_members(empty_database_url: str) -> None:
    db = empty_database_url
    added = bot(db, "communities", "add", "--name", "东湖社区", "--code", "donghu")
    assert added.returncode == 0, added.stderr
    east = bot(db, "grids", "add", "--name", "东湖1号楼", "--code", "dh1", "--community", "donghu")
    assert east.returncode == 0 and "added to 东湖社区" in east.stdout
    assert bot(db, "grids", "add", "--name", "5号楼", "--code", "b5").returncode == 0
    assert bot(db, "members", "add", "--name", "赵东", "--grid", "东湖1号楼").returncode == 0
    mixed = bot(db, "members", "add", "--name", "钱湖", "--grid", "5号楼", "--community", "donghu")
    assert mixed.returncode == 2 and "5号楼 are not in 东湖社区" in mixed.stderr
    unknown = bot(db, "grids", "add", "--name", "6号楼", "--code", "b6", "--community", "xihu")
    assert unknown.returncode == 2 and "no community with code 'xihu'" in unknown.stderr

    listed = bot(db, "communities", "list").stdout.splitlines()
    assert listed == [
        "* default\t默认社区\t1 grid(s)\t0 member(s)",
        "  donghu\t东湖社区\t1 grid(s)\t1 member(s)",
    ]
    donghu = bot(db, "members", "list", "--community", "donghu").stdout
    assert donghu.strip() == "赵东\tmember\t东湖1号楼\t-\t随时\t东湖社区"
