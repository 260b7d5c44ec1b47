"""The published data files, read by the lab's loader as a user's machine reads them.

The SMS Spam Collection comes from SPAM_LAB_DATA_DIR, else the loader's cache, else its download from
the UCI repository (which lands in the cache); offline with none of them, these tests skip and say why.
Enron-Spam has no official download: its tests skip unless enron_spam/enron_spam.csv.gz is in
SPAM_LAB_DATA_DIR or the cache. The loader's logic on small generated files is tested in the fast tier
(tests/unit/lab/test_spam_data.py).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import sample_data
from kit_testing import DATA_DIR, lab_loader

spam_data = lab_loader()
SMS = spam_data.DATASETS["sms"]
ENRON = spam_data.DATASETS["enron"]

# Published figures (sms_spam_collection/readme of the UCI archive; Enron-Spam's README).
SMS_LINES, SMS_SPAM_LINES = 5_574, 747
SMS_DISTINCT, SMS_DISTINCT_SPAM, SMS_DISTINCT_HAM = 5_171, 653, 4_518
ENRON_ROWS, ENRON_SPAM_ROWS = 33_715, 17_170  # 16,545 ham
ENRON_DISTINCT = 30_493


def _bytes(dataset: str) -> bytes:
    try:
        return spam_data.dataset_bytes(dataset, DATA_DIR)
    except spam_data.DataNotFound as exc:
        pytest.skip(
            f"the published {spam_data.DATASETS[dataset].name} file is not on this machine: {str(exc).splitlines()[0]}"
        )


@pytest.fixture(scope="module")
def sms_bytes() -> bytes:
    data = _bytes("sms")
    assert hashlib.sha256(data).hexdigest() == SMS.sha256
    return data


@pytest.fixture(scope="module")
def sms_messages(sms_bytes):
    return spam_data.load_messages("sms", DATA_DIR)


@pytest.fixture(scope="module")
def enron_bytes() -> bytes:
    return _bytes("enron")


def test_the_published_sms_file_passes_verification(sms_bytes):
    assert spam_data.sha256_of(sms_bytes) == SMS.sha256
    assert spam_data.dataset_bytes("sms", DATA_DIR) == sms_bytes


def test_sms_counts(sms_bytes, sms_messages):
    texts, labels = spam_data._parse_sms(sms_bytes)
    assert (len(texts), sum(labels)) == (SMS_LINES, SMS_SPAM_LINES)
    # The same lines, read independently of the loader.
    lines = [line.partition("\t") for line in sms_bytes.decode("utf-8").split("\n") if line]
    assert texts == [text for _, _, text in lines]
    assert labels == [int(label == "spam") for label, _, _ in lines]

    distinct, distinct_labels = sms_messages
    assert distinct_labels.dtype == np.int32
    assert len(distinct) == len(set(distinct)) == SMS_DISTINCT
    assert (int(distinct_labels.sum()), int((distinct_labels == 0).sum())) == (SMS_DISTINCT_SPAM, SMS_DISTINCT_HAM)
    assert distinct == list(dict.fromkeys(texts))  # first occurrence order
    label_of = dict(zip(texts, labels))  # no text of the published file has two labels
    assert list(distinct_labels) == [label_of[t] for t in distinct]


def test_enron_counts(enron_bytes):
    sample_data.check_enron(spam_data, enron_bytes, DATA_DIR, ENRON_ROWS, ENRON_SPAM_ROWS, ENRON_DISTINCT)


def test_the_lab_split_is_deterministic_and_stratified(sms_messages):
    texts, labels = sms_messages
    first, again, other = (spam_data.split_indices(labels, seed) for seed in (1234, 1234, 99))
    for name in spam_data.SPLITS:
        assert np.array_equal(first[name], again[name])
    assert not np.array_equal(first["train"], other["train"])
    overall = labels.mean()
    for name, fraction in zip(spam_data.SPLITS, (0.70, 0.15, 0.15)):
        part = labels[first[name]]
        assert abs(len(part) - fraction * len(labels)) <= 2, (name, len(part))
        assert abs(part.mean() - overall) < 0.01, f"{name}: {part.mean():.3%} spam vs {overall:.3%}"


def test_no_published_text_is_in_two_splits(sms_messages, tmp_path):
    splits = spam_data.load_splits("sms", DATA_DIR, 1234)
    sets = {name: set(texts) for name, (texts, _) in splits.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert sum(len(s) for s in sets.values()) == SMS_DISTINCT
    back = spam_data.read_splits_file(spam_data.write_splits_file(splits, tmp_path / "s.tsv", names=spam_data.SPLITS))
    for name in spam_data.SPLITS:
        assert back[name][0] == splits[name][0] and np.array_equal(back[name][1], splits[name][1])
