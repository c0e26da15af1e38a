"""The shield: one image per state, in the state's colour, each different."""

from __future__ import annotations

import pytest

from tray.artwork import SIZE, shield
from tray.messages import COLOURS
from tray.state import Status


@pytest.mark.parametrize("status", list(Status))
def test_the_shield_is_in_the_states_colour(status: Status) -> None:
    image = shield(status)
    assert image.size == (SIZE, SIZE)
    colour = COLOURS[status]
    want = (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255)
    assert image.getpixel((SIZE // 2, int(SIZE * 0.88))) == want  # the shield's point
    assert image.getpixel((0, SIZE - 1)) == (0, 0, 0, 0)  # transparent around it


def test_the_signs_differ_too_not_only_the_colours() -> None:
    shapes = {
        shield(s).convert("L").point(lambda v: 255 if v > 240 else 0).tobytes() for s in Status
    }
    assert len(shapes) == len(Status)
