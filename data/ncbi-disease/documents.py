"""Rebuild documents.tsv.gz: the PubMed abstract each sentence of the shipped CoNLL files is from.

    python data/ncbi-disease/documents.py /path/to/original-data data/ncbi-disease/documents.tsv.gz

The CoNLL form (github.com/spyysalo/ncbi-disease, commit 5a266c6: its conll/ files are the shipped
ones byte for byte) keeps the sentences in document order but drops the boundaries; the original
release (NCBItrainset_corpus.txt, NCBIdevelopset_corpus.txt, NCBItestset_corpus.txt, in that
repository's original-data/ or from NCBI) names each abstract by its PubMed id. Each sentence is
matched, its tokens joined without spaces, against the running text of an abstract (title and
abstract, spaces removed), one abstract after another, so every sentence gets exactly one id and
every abstract is used up whole; anything else stops with the sentence it could not place.
The training release holds PubMed 8528200 twice, and so does train.tsv: both copies get its id.

Columns: split (train, devel, test: the CoNLL file), sentence (its 0-based index in that file),
pmid. Ids only, no text. Standard library only.
"""

import csv
import gzip
import io
import sys
from pathlib import Path

RELEASE = {"train": "NCBItrainset_corpus.txt", "devel": "NCBIdevelopset_corpus.txt", "test": "NCBItestset_corpus.txt"}


def abstracts(path: Path) -> list[tuple[str, str]]:
    """(pmid, title and abstract with every space removed) for each abstract, in the release's
    order; a blank line ends an abstract, so a repeated one is listed twice."""
    docs = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        parts = [line.split("|", 2) for line in block.splitlines()]
        text = [(pmid, body) for pmid, kind, body in (p for p in parts if len(p) == 3) if kind in ("t", "a")]
        if text:
            docs.append((text[0][0], "".join("".join(body.split()) for _, body in text)))
    return docs


def sentences(path: Path) -> list[str]:
    """Each sentence's tokens joined without spaces."""
    raw = gzip.open(path, "rt", encoding="utf-8").read() if path.suffix == ".gz" else path.read_text(encoding="utf-8")
    return ["".join(line.split("\t")[0] for line in block.splitlines()) for block in raw.split("\n\n") if block.strip()]


def align(split: str, sents: list[str], docs: list[tuple[str, str]]) -> list[str]:
    """The pmid of each sentence: the sentence must continue the current abstract, or start an
    unused one once the current is used up."""
    unused = list(docs)
    pmids: list[str] = []
    current, rest = None, ""
    for i, sent in enumerate(sents):
        if not rest:
            found = next((d for d in unused if d[1].startswith(sent)), None)
            if found is None:
                raise SystemExit(f"{split} sentence {i}: starts no unused abstract")
            unused.remove(found)
            current, rest = found
        if not rest.startswith(sent):
            raise SystemExit(f"{split} sentence {i}: does not continue abstract {current}")
        rest = rest[len(sent) :]
        pmids.append(current)
    if rest or unused:
        raise SystemExit(f"{split}: {len(unused)} abstracts unused, {len(rest)} characters left over")
    return pmids


def main(original: str, out: str, conll: str = str(Path(__file__).parent)) -> None:
    rows = []
    for split, name in RELEASE.items():
        docs = abstracts(next(Path(original).rglob(name)))
        pmids = align(split, sentences(Path(conll) / f"{split}.tsv.gz"), docs)
        rows += [(split, i, pmid) for i, pmid in enumerate(pmids)]
        print(f"{split}: {len(pmids)} sentences from {len(set(pmids))} abstracts")
    # no file name and no time in the gzip header: the same bytes on every build
    with open(out, "wb") as file, gzip.GzipFile("", "wb", fileobj=file, mtime=0) as raw:
        f = io.TextIOWrapper(raw, "utf-8", newline="")
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["split", "sentence", "pmid"])
        writer.writerows(rows)
        f.flush()
        f.detach()


if __name__ == "__main__":
    main(*sys.argv[1:4])
