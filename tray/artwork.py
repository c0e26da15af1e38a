"""The shield icon, drawn with Pillow in the colour of the state, with a sign inside that
does not rely on colour alone (tick, exclamation mark, dots, cross, question mark)."""

from __future__ import annotations

from PIL import Image, ImageDraw

from tray.messages import COLOURS
from tray.state import Status

SIZE = 64
WHITE = (255, 255, 255, 255)


def _shield(draw: ImageDraw.ImageDraw, colour: str) -> None:
    s = SIZE
    outline = [
        (s * 0.50, s * 0.04),
        (s * 0.90, s * 0.18),
        (s * 0.86, s * 0.58),
        (s * 0.50, s * 0.96),
        (s * 0.14, s * 0.58),
        (s * 0.10, s * 0.18),
    ]
    draw.polygon(outline, fill=colour, outline=(30, 30, 30, 255))


def _sign(draw: ImageDraw.ImageDraw, status: Status) -> None:
    s, w = SIZE, max(3, SIZE // 10)
    if status is Status.OK:
        draw.line([(s * 0.32, s * 0.48), (s * 0.45, s * 0.62), (s * 0.70, s * 0.34)], WHITE, w)
    elif status is Status.BLOCKED:
        draw.line([(s * 0.50, s * 0.24), (s * 0.50, s * 0.56)], WHITE, w)
        draw.ellipse([s * 0.45, s * 0.64, s * 0.55, s * 0.74], fill=WHITE)
    elif status is Status.SCANNING:
        for x in (0.32, 0.50, 0.68):
            draw.ellipse([s * (x - 0.06), s * 0.42, s * (x + 0.06), s * 0.54], fill=WHITE)
    elif status is Status.INFECTED:
        draw.line([(s * 0.34, s * 0.30), (s * 0.66, s * 0.62)], WHITE, w)
        draw.line([(s * 0.66, s * 0.30), (s * 0.34, s * 0.62)], WHITE, w)
    else:  # offline: a question mark drawn from an arc and a dot
        draw.arc([s * 0.38, s * 0.22, s * 0.62, s * 0.46], 180, 90, WHITE, w)
        draw.line([(s * 0.50, s * 0.46), (s * 0.50, s * 0.56)], WHITE, w)
        draw.ellipse([s * 0.45, s * 0.64, s * 0.55, s * 0.74], fill=WHITE)


def shield(status: Status) -> Image.Image:
    """The icon for a state (RGBA, SIZE x SIZE)."""
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    _shield(draw, COLOURS[status])
    _sign(draw, status)
    return image
