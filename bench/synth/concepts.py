"""Synthetic clinical sentences with concept spans (problem / test / treatment).

A template is a string of words and slots: {P} problem, {T} test, {R} treatment, {AT} an
ambiguous word used as a test, {AR} the same words used as a treatment, {N} a negation cue,
{V} a number. The filled sentence is whitespace-tokenized, as the i2b2 release is.
"""

from __future__ import annotations

import random

from bench.data.spans import Span
from bench.synth import lexicon
from bench.synth.sites import SiteStyle

TEMPLATES = {
    "problem": [
        "patient presented with {P} for {V} days .",
        "{N} {P} .",
        "history of {P} , {P} and {P} .",
        "developed {P} on hospital day {V} .",
        "noted to have worsening {P} .",
        "{N} {P} or {P} .",
        "family history notable for {P} .",
        "return for {P} or {P} .",
        "complains of {P} since yesterday .",
        "{P} resolved prior to discharge .",
        "admitted with {P} complicated by {P} .",
    ],
    "test": [
        "{T} showed {P} .",
        "{T} was {V} .",
        "{AT} was {V} on admission .",
        "{T} was unremarkable .",
        "repeat {T} pending .",
        "{T} revealed no {P} .",
        "{AT} level checked , {V} .",
        "{AT} {V} this morning .",
        "{T} and {T} were within normal limits .",
        "{T} consistent with {P} .",
    ],
    "treatment": [
        "started on {R} .",
        "{R} {V} mg daily .",
        "received {R} and {R} in the ed .",
        "{AR} was repleted .",
        "given {AR} for {P} .",
        "{P} was treated with {R} .",
        "continue {R} .",
        "placed on {AR} with improvement .",
        "{R} was held for {P} .",
        "discharged on {R} and {R} .",
        "started {AR} drip for {P} .",
    ],
    "none": [
        "patient seen and examined .",
        "discussed with family at bedside .",
        "vitals stable overnight .",
        "tolerating diet .",
        "ambulating without assistance .",
        "will follow up in clinic .",
    ],
}
SLOT_LABELS = {"P": "problem", "T": "test", "R": "treatment", "AT": "test", "AR": "treatment"}
LEXICONS = {"P": lexicon.PROBLEMS, "T": lexicon.TESTS, "R": lexicon.TREATMENTS}
LABEL_NOISE = 0.03  # annotator misses or mislabels this share of concepts
MODIFIER_RATE = 0.25  # concepts written with a modifier inside the span
HELD_OUT_RATE = 0.3  # test-document concepts drawn from words never seen in training


def weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def phrase(rng: random.Random, slot: str, site: SiteStyle, test: bool) -> str:
    if slot in ("AT", "AR"):
        return rng.choice(lexicon.AMBIGUOUS)
    if test and rng.random() < HELD_OUT_RATE:
        words = rng.choice(lexicon.HELD_OUT[slot])
    else:
        words = rng.choice(LEXICONS[slot][weighted(rng, site.specialty_weights)])
        if words in lexicon.ABBREVIATED and rng.random() < site.abbreviate:
            words = lexicon.ABBREVIATED[words]
    if rng.random() < MODIFIER_RATE:
        words = f"{rng.choice(lexicon.MODIFIERS[slot])} {words}"
    return words


def sentence(rng: random.Random, site: SiteStyle, test: bool = False) -> tuple[list[str], list[Span]]:
    """One sentence in the site's style, with its (noisy) gold concept spans; `test` documents
    also use concept words that training documents never do."""
    kind = "none" if rng.random() < 0.15 else weighted(rng, site.type_weights)
    tokens: list[str] = []
    spans: list[Span] = []
    for piece in rng.choice(TEMPLATES[kind]).split():
        slot = piece[1:-1] if piece.startswith("{") else None
        if slot == "N":
            tokens += rng.choice(lexicon.NEGATIONS).split()
        elif slot == "V":
            tokens.append(str(rng.randint(1, 140)))
        elif slot in SLOT_LABELS:
            words = phrase(rng, slot, site, test).split()
            label = SLOT_LABELS[slot]
            if rng.random() < LABEL_NOISE:  # annotation noise: a miss or a wrong type
                label = rng.choice([None, *(t for t in ("problem", "test", "treatment") if t != label)])
            if label is not None:
                spans.append(Span(len(tokens), len(tokens) + len(words) - 1, label))
            tokens += words
        else:
            tokens.append(piece)
    if site.lowercase:
        tokens = [t.lower() for t in tokens]
    elif tokens:
        tokens[0] = tokens[0].capitalize()
    return tokens, spans
