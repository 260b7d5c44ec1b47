"""Load the lab's labelled messages and split them the same way everywhere.

The lab notebook, the grader and the kit's tests all call this module, so the
train / validation / hidden-test split is identical wherever it is computed.

Where the data comes from, first match wins:

1. ``SPAM_LAB_SPLITS``: a prepared file of the public splits (train and
   validation only), written by the grader for sandboxed runs;
2. a local directory: the ``data_dir`` argument, else ``SPAM_LAB_DATA_DIR``;
   it holds the dataset's files directly or in a folder named after the
   dataset (``sms_spam_collection/``, ``enron_spam/``);
3. the cache (``SPAM_LAB_CACHE``, default ``~/.cache/spam_lab``);
4. a download from the official address, verified by SHA-256 (SMS only).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
PUBLIC_SPLITS = ("train", "val")


@dataclass(frozen=True)
class Dataset:
    name: str
    folder: str
    filename: str
    sha256: str
    url: str | None = None
    archive_sha256: str | None = None
    archive_member: str | None = None


DATASETS = {
    "sms": Dataset(
        name="UCI SMS Spam Collection",
        folder="sms_spam_collection",
        filename="SMSSpamCollection",
        sha256="7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        url="https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
        archive_sha256="1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3",
        archive_member="SMSSpamCollection",
    ),
    "enron": Dataset(
        name="Enron-Spam (preprocessed, one CSV)",
        folder="enron_spam",
        filename="enron_spam.csv.gz",
        sha256="af67de5265f3c46975d079ab9cb7712a6feeea268102870561171ef6187d551c",
    ),
}


class DataNotFound(FileNotFoundError):
    """The dataset is neither local, cached nor downloadable."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(data: bytes, expected: str, what: str) -> bytes:
    got = sha256_of(data)
    if got != expected:
        raise ValueError(f"{what}: SHA-256 is {got}, expected {expected}; the file is damaged or not the official one")
    return data


def cache_dir() -> Path:
    return Path(os.environ.get("SPAM_LAB_CACHE", Path.home() / ".cache" / "spam_lab"))


def _local_candidates(ds: Dataset, data_dir: str | os.PathLike | None) -> list[Path]:
    roots = [Path(d) for d in (data_dir, os.environ.get("SPAM_LAB_DATA_DIR")) if d]
    found = []
    for root in roots:
        found += [root / ds.filename, root / ds.folder / ds.filename]
    found.append(cache_dir() / ds.folder / ds.filename)
    return found


def _download(ds: Dataset) -> bytes:
    with urllib.request.urlopen(ds.url, timeout=60) as response:
        archive = _checked(response.read(), ds.archive_sha256, ds.url)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        data = _checked(zf.read(ds.archive_member), ds.sha256, ds.archive_member)
    target = cache_dir() / ds.folder / ds.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


def dataset_bytes(dataset: str = "sms", data_dir: str | os.PathLike | None = None) -> bytes:
    """The dataset file's bytes, verified against its published SHA-256."""
    ds = DATASETS[dataset]
    candidates = _local_candidates(ds, data_dir)
    for path in candidates:
        if path.is_file():
            return _checked(path.read_bytes(), ds.sha256, str(path))
    if ds.url:
        try:
            return _download(ds)
        except OSError as exc:  # offline, DNS failure, HTTP error
            reason = f"the download from {ds.url} failed ({exc})"
    else:
        reason = "it has no official single-file download"
    looked = "\n".join(f"  - {p}" for p in candidates)
    raise DataNotFound(
        f"The {ds.name} file '{ds.filename}' was not found and {reason}.\n"
        f"Put '{ds.filename}' (SHA-256 {ds.sha256}) in one of:\n{looked}\n"
        f"or set SPAM_LAB_DATA_DIR to the folder that holds it."
    )


def _parse_sms(data: bytes) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for line in data.decode("utf-8").splitlines():
        label, _, text = line.partition("\t")  # split on the first tab only
        texts.append(text)
        labels.append(1 if label == "spam" else 0)
    return texts, labels


def _parse_enron(data: bytes) -> tuple[list[str], list[int]]:
    csv.field_size_limit(sys.maxsize)
    with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(data)), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    texts = [row["Subject"] + "\n" + row["Message"] for row in rows]
    labels = [1 if row["Spam/Ham"] == "spam" else 0 for row in rows]
    return texts, labels


PARSERS = {"sms": _parse_sms, "enron": _parse_enron}


def load_messages(dataset: str = "sms", data_dir=None) -> tuple[list[str], np.ndarray]:
    """All messages of a dataset, exact duplicates removed (first copy kept)."""
    texts, labels = PARSERS[dataset](dataset_bytes(dataset, data_dir))
    seen, keep_texts, keep_labels = set(), [], []
    for text, label in zip(texts, labels):
        if text not in seen:
            seen.add(text)
            keep_texts.append(text)
            keep_labels.append(label)
    return keep_texts, np.array(keep_labels, dtype="int32")


def split_indices(labels: np.ndarray, seed: int, fractions=(0.70, 0.15, 0.15)) -> dict[str, np.ndarray]:
    """A stratified split: each class is shuffled and cut by the fractions."""
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in SPLITS}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = round(fractions[0] * len(idx))
        n_val = round(fractions[1] * len(idx))
        parts["train"].append(idx[:n_train])
        parts["val"].append(idx[n_train : n_train + n_val])
        parts["test"].append(idx[n_train + n_val :])
    return {name: rng.permutation(np.concatenate(p)) for name, p in parts.items()}


def load_splits(dataset: str = "sms", data_dir=None, split_seed: int = 1234) -> dict:
    """All three splits as ``{name: (texts, labels)}``; the grader's view."""
    texts, labels = load_messages(dataset, data_dir)
    return {name: ([texts[i] for i in idx], labels[idx]) for name, idx in split_indices(labels, split_seed).items()}


def write_splits_file(splits: dict, path: str | os.PathLike, names=PUBLIC_SPLITS) -> Path:
    """Write the named splits (by default train and validation only) as TSV.

    Every field is quoted: with minimal quoting a lone carriage return in a
    text would be written bare and read back as a line break.
    """
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(["split", "label", "text"])
        for name in names:
            texts, labels = splits[name]
            writer.writerows((name, int(y), t) for t, y in zip(texts, labels))
    return path


def read_splits_file(path: str | os.PathLike) -> dict:
    """Read a file written by write_splits_file: ``{name: (texts, labels)}``."""
    csv.field_size_limit(sys.maxsize)
    parts: dict = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            texts, labels = parts.setdefault(row["split"], ([], []))
            texts.append(row["text"])
            labels.append(int(row["label"]))
    return {name: (t, np.array(y, dtype="int32")) for name, (t, y) in parts.items()}


def load_lab_data(dataset: str = "sms", data_dir=None, split_seed: int | None = None) -> dict:
    """The notebook's view: train and validation splits only."""
    prepared = os.environ.get("SPAM_LAB_SPLITS")
    if prepared:
        splits = read_splits_file(prepared)
        missing = [name for name in PUBLIC_SPLITS if name not in splits]
        if missing:
            raise ValueError(f"SPAM_LAB_SPLITS file {prepared} has no {' or '.join(missing)} split")
        return {name: splits[name] for name in PUBLIC_SPLITS}  # never a test split
    if split_seed is None:
        split_seed = int(os.environ.get("SPAM_LAB_SPLIT_SEED", "1234"))
    splits = load_splits(dataset, data_dir, split_seed)
    return {name: splits[name] for name in PUBLIC_SPLITS}
