"""Rasa's file importer without the held-out test split.

Rasa reads every training file under `data/` by default, which would train on `data/test/`.
config.yml names this importer so that plain `rasa train` and `rasa data validate` never
see the test split; `rasa test nlu --nlu data/test` still reads it (testing uses no config
importers).
"""

from __future__ import annotations

from pathlib import Path

import rasa.shared.data
from rasa.shared.importers.rasa import RasaFileImporter

HELD_OUT_DIR = Path("data") / "test"


def _training_files(paths: list[str] | str | None) -> list[str]:
    held_out = HELD_OUT_DIR.resolve()
    files = rasa.shared.data.get_data_files(paths, rasa.shared.data.is_valid_filetype)
    return [f for f in files if held_out not in Path(f).resolve().parents]


class TrainingSplitImporter(RasaFileImporter):
    def __init__(
        self,
        config_file: str | None = None,
        domain_path: str | None = None,
        training_data_paths: list[str] | str | None = None,
    ) -> None:
        super().__init__(config_file, domain_path, _training_files(training_data_paths))
