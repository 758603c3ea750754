"""`ncbi-disease`: the NCBI disease corpus (Dogan et al. 2014), shipped gzipped with the project
under data/ncbi-disease/ with its public-domain licence. Real PubMed text, CoNLL form, read by
the `conll` loader; its devel.tsv is the validation split. `--data-dir` may point elsewhere."""

from __future__ import annotations

from pathlib import Path

from bench.data import conll
from bench.data.registry import register_task
from bench.data.types import TaskData

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "ncbi-disease"


# the CoNLL release keeps the abstracts' order but not their boundaries: 940 test sentences
# from the corpus's 100 test abstracts (Dogan et al. 2014), about 9 a piece
@register_task(
    "ncbi-disease",
    kind="ner",
    synth_subdir=None,
    bundled=SHIPPED,
    split_rule="train, devel and test files",
    test_block=9,
)
def load(root: Path) -> TaskData:
    return conll.load(root, task="ncbi-disease")
