"""A wiring row its settings turn off is left out of its role's host; the static table (ACLs,
topics) still lists it."""

from __future__ import annotations

from pathlib import Path

from streams.settings import Settings
from streams.wiring import rows_of


def test_a_row_the_settings_turn_off_is_left_out_of_its_role(tmp_path: Path) -> None:
    on = [r.name for r in rows_of("learn", settings=Settings(data_dir=tmp_path))]
    off = [r.name for r in rows_of("learn", settings=Settings(
        data_dir=tmp_path, deploy_watch={"enabled": False}))]  # type: ignore[arg-type]
    assert "deploy-watch" in on
    assert off == [name for name in on if name != "deploy-watch"]
    assert [r.name for r in rows_of("learn")] == on  # without settings: every row
