"""The public surface is what ``__all__`` says: sorted, complete, importable."""

from __future__ import annotations

import twofold


def test_all_is_sorted_and_complete() -> None:
    assert twofold.__all__ == sorted(twofold.__all__)
    public = {
        name
        for name, value in vars(twofold).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("twofold")
    }
    assert public <= set(twofold.__all__)  # plus type aliases such as CallNext
    for name in twofold.__all__:
        assert getattr(twofold, name) is not None
