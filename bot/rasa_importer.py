"""Rasa's file importer without the held-out test split and the coverage map.

Rasa reads every YAML file under `data/` by default, which would train on `data/test/` and
try to read `data/coverage.yml` (the map of needs tests/test_coverage.py checks, not Rasa
data). config.yml names this importer so that plain `rasa train` and `rasa data validate`
see neither; `rasa test nlu --nlu data/test` still reads the split (testing uses no config
importers).
"""

from __future__ import annotations

from pathlib import Path

import rasa.shared.data
from rasa.shared.importers.rasa import RasaFileImporter

HELD_OUT_DIR = Path("data") / "test"
COVERAGE_MAP = Path("data") / "coverage.yml"


def _training_files(paths: list[str] | str | None) -> list[str]:
    held_out, coverage = HELD_OUT_DIR.resolve(), COVERAGE_MAP.resolve()
    files = rasa.shared.data.get_data_files(paths, rasa.shared.data.is_valid_filetype)
    return [
        f
        for f in files
        if held_out not in Path(f).resolve().parents and Path(f).resolve() != coverage
    ]


class TrainingSplitImporter(RasaFileImporter):
    def __init__(
        self,
        config_file: str | None = None,
        domain_path: str | None = None,
        training_data_paths: list[str] | str | None = None,
    ) -> None:
        super().__init__(config_file, domain_path, _training_files(training_data_paths))
