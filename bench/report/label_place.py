"""Labels beside points that do not cover one another: each takes the first of a few offsets
around its point whose box overlaps no label placed before it and no other point, else the first
(greedy, in the order given). Call it once the axis holds everything, its scale set: it lays the
figure out (as bench.report.plotting.save will) and measures the boxes there; the labels stay
out of the layout, so save's own tight_layout leaves the axes where they were measured."""

from __future__ import annotations

# (dx, dy) in points and the alignment that keeps the text clear of its own marker
OFFSETS = (
    (5, 4, "left"),
    (5, -11, "left"),
    (-5, 4, "right"),
    (-5, -11, "right"),
    (5, 13, "left"),
    (5, -20, "left"),
    (-5, 13, "right"),
    (-5, -20, "right"),
)


def _annotate(ax, x: float, y: float, text: str, offset: tuple, fontsize: str):
    dx, dy, align = offset
    # a label moved off the first offset gets a thin leader to its point: it may sit nearer another
    leader = None if offset == OFFSETS[0] else {"arrowstyle": "-", "lw": 0.5, "color": "0.5", "shrinkB": 4}
    note = ax.annotate(
        text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize, ha=align, arrowprops=leader
    )
    note.set_in_layout(False)  # a label must not move the axes its box was measured on
    return note


def place_labels(ax, labels: list[tuple[float, float, str]], fontsize: str = "x-small") -> list:
    """Annotate each (x, y, text) in data coordinates; -> the annotations, in order."""
    ax.set_xlim(ax.get_xlim())  # fix the limits the boxes are measured at
    ax.set_ylim(ax.get_ylim())
    ax.figure.tight_layout()
    renderer = ax.figure.canvas.get_renderer()
    points = [ax.transData.transform((x, y)) for x, y, _ in labels]
    boxes, placed = [], []

    def clear(i: int, offset: tuple) -> bool:
        trial = _annotate(ax, *labels[i], offset, fontsize)
        box = trial.get_window_extent(renderer)
        trial.remove()
        return not any(box.overlaps(b) for b in boxes) and not any(
            box.contains(*p) for j, p in enumerate(points) if j != i
        )

    for i, label in enumerate(labels):
        offset = next((o for o in OFFSETS if clear(i, o)), OFFSETS[0])
        placed.append(_annotate(ax, *label, offset, fontsize))
        boxes.append(placed[-1].get_window_extent(renderer))
    return placed
