"""The public surface is what docs/api.md lists: ``__all__`` is that list, sorted, importable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import twofold
import twofold.client
import twofold.testing.parity

API = Path(__file__).parents[2] / "docs" / "api.md"


def documented() -> list[str]:
    section = API.read_text().split("## `twofold`", 1)[1].split("\n\n", 2)[1]
    return re.findall(r"^\| `([A-Za-z_]+)` \|", section, re.M)


def test_all_is_the_documented_list() -> None:
    names = documented()
    assert len(names) > 30
    assert sorted(twofold.__all__) == sorted(names)


def test_all_is_sorted_and_importable() -> None:
    assert twofold.__all__ == sorted(twofold.__all__)
    for name in twofold.__all__:
        assert getattr(twofold, name) is not None
        assert name in dir(twofold)


def test_nothing_else_is_public() -> None:
    public = {
        name
        for name, value in vars(twofold).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("twofold")
    }
    assert public <= set(twofold.__all__)


def test_a_name_means_one_thing() -> None:
    shared = set(twofold.__all__) & set(twofold.client.__all__)
    assert shared == {"AsyncClient", "Client", "Idempotency"}
    for name in shared:
        assert getattr(twofold, name) is getattr(twofold.client, name), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(twofold, "Method")
    assert not hasattr(twofold, "nothing_here")


def test_importing_twofold_loads_nothing_yet() -> None:
    script = "import sys, twofold; print('\\n'.join(m for m in sys.modules if 'twofold' in m))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["twofold"]


def test_the_parity_kit_exports_what_api_md_lists() -> None:
    intro = API.read_text().split("## `twofold`", 1)[0]
    listed = intro.split("parity kit `twofold.testing.parity` (", 1)[1].split(":", 1)[0]
    names = re.findall(r"`([A-Za-z_]+)`", listed)
    assert sorted(names) == sorted(twofold.testing.parity.__all__)  # ruff keeps it sorted
    for name in names:
        assert getattr(twofold.testing.parity, name) is not None
