"""Point labels that do not cover one another (the frontier figure's top:5 and top:6, bottom:1
and top:2 sat on each other): bench.report.label_place."""

import itertools

from bench.report.label_place import place_labels
from bench.report.plotting import pyplot


def test_labels_of_crowded_points_do_not_overlap_one_another_or_cover_another_point():
    fig, ax = pyplot().subplots(figsize=(6, 4))
    points = [(4.4e9, 0.744), (5.2e9, 0.747), (1.7e9, 0.654), (1.9e9, 0.655), (2.0e9, 0.669), (1e8, 0.5)]
    ax.plot(*zip(*points), "o")
    ax.set_xscale("log")
    names = ["layerskip top:6", "layerskip top:5", "layerskip bottom:1", "layerskip top:2", "layerskip bottom:2", "x"]
    notes = place_labels(ax, [(x, y, n) for (x, y), n in zip(points, names)])
    fig.tight_layout()  # as bench.report.plotting.save lays it out again before writing
    renderer = fig.canvas.get_renderer()
    boxes = [n.get_window_extent(renderer) for n in notes]
    assert [n.get_text() for n in notes] == names
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    centres = [ax.transData.transform(p) for p in points]
    assert not any(box.contains(*c) for i, box in enumerate(boxes) for j, c in enumerate(centres) if i != j)
    pyplot().close(fig)
