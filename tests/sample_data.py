"""Small datasets in the real files' formats, generated, for the fast tier (no data folder, no network).

``sms_bytes()`` is a UCI SMS Spam Collection file (``<label>\\t<text>`` lines, UTF-8, LF, a final newline)
and ``enron_bytes()`` an Enron-Spam CSV, gzipped (``Message ID,Subject,Message,Spam/Ham,Date``), each with
the traps the loader must get right: a text that holds a tab (split on the first tab only), an empty
text, quotes and non-ASCII, exact duplicates (dropped, first copy kept, even when the copy's label
differs) beside near-duplicates that differ in case or spaces (kept). The expected figures are
written down here, not computed with the loader. ``install`` puts both files in a data folder and
registers their checksums with the loader, which otherwise accepts only the published files.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
from pathlib import Path

N_HAM, N_SPAM = 120, 40  # distinct plain messages: enough for a stratified 70 / 15 / 15 split

# (label, text) lines of the SMS file beyond the plain ones, in file order.
SMS_TRAPS = [
    ("ham", "call me\tlater\tok"),  # tabs in the text: only the first tab separates the label
    ("spam", 'WIN a £500 "prize" now ü'),  # quotes and non-ASCII
    ("ham", ""),  # an empty text
    ("ham", "  padded  "),  # spaces kept
    ("ham", "ham 0"),  # exact duplicate of the first plain ham line: dropped
    ("spam", "spam 1"),  # exact duplicate of a plain spam line: dropped
    ("spam", "ham 2"),  # same text as a ham line, other label: dropped, first label kept
    ("ham", "Ham 0"),  # differs in case: kept
    ("ham", "ham 0 "),  # differs by a trailing space: kept
    ("ham", "call me\tlater\tok"),  # exact duplicate of the first trap: dropped
]
SMS_LINES = N_HAM + N_SPAM + len(SMS_TRAPS)
SMS_SPAM_LINES = N_SPAM + 3
SMS_DISTINCT = SMS_LINES - 4
SMS_DISTINCT_SPAM = N_SPAM + 1


def sms_lines() -> list[tuple[str, str]]:
    plain = [("ham", f"ham {i}") for i in range(N_HAM)] + [("spam", f"spam {i}") for i in range(N_SPAM)]
    plain = [plain[i] for i in sorted(range(len(plain)), key=lambda i: (i * 37) % len(plain))]  # mixed order
    return plain + SMS_TRAPS


def sms_bytes() -> bytes:
    return "".join(f"{label}\t{text}\n" for label, text in sms_lines()).encode("utf-8")


ENRON_HEADER = ["Message ID", "Subject", "Message", "Spam/Ham", "Date"]
# (subject, message, label) rows beyond the plain ones.
ENRON_TRAPS = [
    ("re : meeting , today", 'line one\nline "two" , with commas\n', "ham"),  # newlines, quotes, commas
    ("", "no subject", "spam"),
    ("christmas tree farm pictures", "", "ham"),  # empty message
    ("subject 0", "body 0", "ham"),  # exact duplicate: dropped
    ("subject 0", "body 0 ", "ham"),  # differs by a space: kept
]
ENRON_ROWS = N_HAM + N_SPAM + len(ENRON_TRAPS)
ENRON_SPAM_ROWS = N_SPAM + 1
ENRON_DISTINCT = ENRON_ROWS - 1


def enron_rows() -> list[tuple[str, str, str]]:
    plain = [(f"subject {i}", f"body {i}", "ham") for i in range(N_HAM)]
    plain += [(f"offer {i}", f"buy now {i}\nclick", "spam") for i in range(N_SPAM)]
    return plain + ENRON_TRAPS


def enron_bytes() -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(ENRON_HEADER)
    for i, (subject, message, label) in enumerate(enron_rows()):
        writer.writerow([i, subject, message, label, "2001-01-01"])
    return gzip.compress(text.getvalue().encode("utf-8"), mtime=0)


def install(monkeypatch, spam_data, folder: Path) -> dict[str, bytes]:
    """Write the generated files into ``folder`` (each in its dataset's folder, as in the data folder the
    README describes) and make ``spam_data`` accept them: their SHA-256 stands in for the published one."""
    files = {"sms": sms_bytes(), "enron": enron_bytes()}
    for name, data in files.items():
        ds = spam_data.DATASETS[name]
        target = folder / ds.folder / ds.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        monkeypatch.setitem(spam_data.DATASETS, name, dataclasses.replace(ds, sha256=spam_data.sha256_of(data)))
    return files


def check_enron(spam_data, enron: bytes, data_dir, rows: int, spam_rows: int, distinct: int) -> list[str]:
    """What every Enron file must give, generated or real: its rows and labels, distinct texts that keep the
    first copy's label, Subject + newline + Message, a split covering each distinct text once. Its texts."""
    import numpy as np

    texts, labels = spam_data._parse_enron(enron)
    assert (len(texts), sum(labels), labels.count(0)) == (rows, spam_rows, rows - spam_rows)
    loaded, loaded_labels = spam_data.load_messages("enron", data_dir)
    assert len(loaded) == len(set(loaded)) == distinct == len(set(texts))
    assert int(loaded_labels.sum()) == len({t for t, y in zip(texts, labels) if y == 1})
    assert all(t.count("\n") >= 1 for t in loaded[:100]), "an Enron text is Subject + newline + Message"
    splits = spam_data.split_indices(loaded_labels, 1234)
    assert sorted(np.concatenate(list(splits.values()))) == list(range(distinct))
    return texts
