"""IOB2 tags -> spans (bench.data.spans.iob2_spans): bio_tags read back, malformed IOB2 read as
seqeval's strict mode (the suite's metric) reads it, and the Flower side's copy in step."""

import ast
from pathlib import Path

import pytest
from seqeval.scheme import IOB2, Entities

import bench.compare
from bench.data.spans import Span, bio_tags, iob2_spans

MALFORMED = [  # tags, the spans strict IOB2 finds in them
    (["I-X", "I-X"], []),  # no B- at all: no span (a reader that extends "the last span" crashes)
    (["B-X", "O", "I-X"], [Span(0, 0, "X")]),  # an I- after O continues nothing
    (["B-X", "I-Y", "I-Y"], [Span(0, 0, "X")]),  # nor does an I- of another type
    (["B-X", "B-X", "I-X"], [Span(0, 0, "X"), Span(1, 2, "X")]),  # B- always opens a new span
    (["B-X", "I-X", "I-Y", "B-Y"], [Span(0, 1, "X"), Span(3, 3, "Y")]),
]


def test_reads_back_what_bio_tags_wrote():
    spans = [Span(0, 0, "test"), Span(1, 3, "problem"), Span(5, 6, "problem"), Span(7, 7, "problem")]
    tags = bio_tags(9, spans)
    assert tags[:4] == ["B-test", "B-problem", "I-problem", "I-problem"]
    assert iob2_spans(tags) == spans  # adjacent spans of one type stay apart; a span may end the sentence
    assert iob2_spans(["O", "O"]) == [] and iob2_spans([]) == []


@pytest.mark.parametrize(("tags", "expected"), MALFORMED)
def test_malformed_iob2_is_read_as_the_metric_reads_it(tags, expected):
    assert iob2_spans(tags) == expected
    (entities,) = Entities([tags], IOB2).entities
    assert [(e.tag, e.start, e.end) for e in entities] == [(s.label, s.start, s.end + 1) for s in expected]


def test_the_flower_sides_copy_finds_the_same_spans():
    """flower_task.py imports nothing from the suite (tests/test_compare.py), so it keeps a copy;
    its `spans` is run from its source here, without the torch and transformers it imports."""
    source = Path(bench.compare.__path__[0], "flower_task.py").read_text()
    (node,) = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "spans"]
    namespace: dict = {}
    exec(compile(ast.Module([node], []), "flower_task.py", "exec"), namespace)
    cases = [tags for tags, _ in MALFORMED] + [bio_tags(5, [Span(0, 1, "a"), Span(2, 2, "a"), Span(4, 4, "b")])]
    for tags in cases:
        assert namespace["spans"](tags) == {(s.label, s.start, s.end + 1) for s in iob2_spans(tags)}, tags
