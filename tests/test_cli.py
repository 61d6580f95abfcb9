"""The command line a community's administrator uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bot(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_grids_and_members_are_added_listed_and_given_tokens(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    assert bot(db, "db", "upgrade").returncode == 0
    assert bot(db, "grids", "add", "--name", "5号楼", "--code", "b5").returncode == 0
    added = bot(db, "members", "add", "--name", "周敏", "--grid", "5号楼", "--skills", "维修,医疗")
    assert added.returncode == 0, added.stderr
    secretary = bot(db, "members", "add", "--name", "吴书记", "--role", "secretary")
    assert secretary.returncode == 0

    listed = bot(db, "members", "list").stdout
    assert "周敏\tmember\t5号楼\t维修,医疗\t在岗" in listed
    assert "吴书记\tsecretary" in listed

    token = bot(db, "members", "token", "周敏")
    assert token.returncode == 0 and len(token.stdout.strip()) >= 40


def test_mistakes_are_explained_not_tracebacks(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    unknown_grid = bot(db, "members", "add", "--name", "周敏", "--grid", "火星")
    assert unknown_grid.returncode == 2
    assert "no grid named '火星'" in unknown_grid.stderr and "Traceback" not in unknown_grid.stderr
    assert bot(db, "members", "token", "nobody").returncode == 2
    bad_role = bot(db, "members", "add", "--name", "x", "--role", "king")
    assert bad_role.returncode == 2
