"""Rebuild medquad.tsv.gz from the MedQuAD release (github.com/abachaa/MedQuAD, commit 577bd37):

    python data/medquad/build.py /path/to/MedQuAD data/medquad/medquad.tsv.gz

One row per question-answer pair with an answer (folders 10-12, MedlinePlus, ship without
answers), whitespace collapsed, the first of duplicated answers kept, question types with fewer
than MIN_PER_TYPE pairs left out (`support groups`: 1). Columns: source (the NIH website),
document (the release's document id), focus (what the pair is about, lower-cased: the grouping
the suite splits by; `document ID` for the few documents without one), qtype (the label), answer (the text). The question is left out: it is a
template of the type ("What are the symptoms of X ?") and would give the label away.
Standard library only.
"""

import csv
import gzip
import io
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

MIN_PER_TYPE = 10


def pairs(release: Path):
    for folder in sorted(p for p in release.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.xml")):
            doc = ET.parse(path).getroot()
            doc_id = doc.get("id") or path.stem  # a few CDC documents carry no id: their file's name
            focus = " ".join((doc.findtext("Focus") or "").split()).lower() or f"document {doc_id}"
            for qa in doc.iter("QAPair"):
                answer = " ".join((qa.findtext("Answer") or "").split())
                question = qa.find("Question")
                if answer and question is not None:
                    yield folder.name, doc_id, focus, question.get("qtype"), answer


def main(release: str, out: str) -> None:
    seen, rows = set(), []
    for row in pairs(Path(release)):
        if row[4] not in seen:
            seen.add(row[4])
            rows.append(row)
    counts = Counter(r[3] for r in rows)
    rows = [r for r in rows if counts[r[3]] >= MIN_PER_TYPE]
    # no file name and no time in the gzip header: the same bytes on every build
    with open(out, "wb") as file, gzip.GzipFile("", "wb", fileobj=file, mtime=0) as raw:
        f = io.TextIOWrapper(raw, "utf-8", newline="")
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["source", "document", "focus", "qtype", "answer"])
        writer.writerows(rows)
        f.flush()
        f.detach()
    print(f"{len(rows)} pairs, {len(counts)} types before the floor of {MIN_PER_TYPE}: {dict(counts.most_common())}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
