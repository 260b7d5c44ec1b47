"""The lab's data loader, source/spam_transformer/spam_data.py.

Every test runs with no data directory, an empty cache in a temp dir and the
network switched off (urlopen raises), unless it sets one of them up itself.
The real files come from SPAM_LAB_DATA_DIR (default /work/shared/data).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kit_testing import REPO, SHARED_DATA

SOURCE_LAB = REPO / "source" / "spam_transformer"
sys.path.insert(0, str(SOURCE_LAB))
_loaded = sys.modules.get("spam_data")
if _loaded is not None and Path(_loaded.__file__).resolve() != SOURCE_LAB / "spam_data.py":
    del sys.modules["spam_data"]  # another copy (e.g. the release) was imported first
import spam_data  # noqa: E402

SMS = spam_data.DATASETS["sms"]
ENRON = spam_data.DATASETS["enron"]
SMS_FILE = SHARED_DATA / SMS.folder / SMS.filename
ENRON_FILE = SHARED_DATA / ENRON.folder / ENRON.filename

# Published figures (sms_spam_collection/README.md, enron_spam/README.md).
SMS_LINES, SMS_SPAM_LINES = 5_574, 747
SMS_DISTINCT, SMS_DISTINCT_SPAM, SMS_DISTINCT_HAM = 5_171, 653, 4_518
ENRON_ROWS, ENRON_SPAM_ROWS, ENRON_HAM_ROWS = 33_715, 17_170, 16_545
ENRON_DISTINCT = 30_493

TRICKY_TEXTS = [
    "a\ttab", 'say "hi"', '"', "two\nlines", "carriage\rreturn", "windows\r\nline", "",
    "  padded  ", "back\\slash\\", "nul\x00byte", "\u2028separator\x85", "£5 prize ü",
    "\ttab first", "ends with tab\t", "'single'",
]


class FakeResponse(io.BytesIO):
    """What urlopen returns, enough for `with urlopen(...) as r: r.read()`."""


def no_network(url, *args, **kwargs):
    raise urllib.error.URLError("network switched off by the test")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    for name in ("SPAM_LAB_DATA_DIR", "SPAM_LAB_SPLITS", "SPAM_LAB_SPLIT_SEED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPAM_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


@pytest.fixture(scope="module")
def sms_bytes() -> bytes:
    data = SMS_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SMS.sha256, f"{SMS_FILE} is not the published file"
    return data


@pytest.fixture(scope="module")
def sms_messages():
    return spam_data.load_messages("sms", SHARED_DATA)


@pytest.fixture(scope="module")
def enron_bytes() -> bytes:
    return ENRON_FILE.read_bytes()


def place(root: Path, layout: str, data: bytes) -> Path:
    """Put the SMS file in `root`, flat or in its dataset folder."""
    target = root / SMS.filename if layout == "flat" else root / SMS.folder / SMS.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def damaged(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def serve(monkeypatch, archive: bytes) -> list[str]:
    """Make urlopen serve `archive`; returns the list of requested URLs."""
    requested = []

    def urlopen(url, *args, **kwargs):
        requested.append(url)
        return FakeResponse(archive)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


# --- verification --------------------------------------------------------------


def test_shared_copy_passes_verification(sms_bytes):
    assert spam_data.sha256_of(sms_bytes) == hashlib.sha256(sms_bytes).hexdigest()
    assert spam_data.dataset_bytes("sms", SHARED_DATA) == sms_bytes


@pytest.mark.parametrize("how", ["flipped byte", "truncated", "other file"])
def test_corrupted_local_copy_is_rejected(tmp_path, sms_bytes, how):
    bad = {"flipped byte": damaged(sms_bytes), "truncated": sms_bytes[:-100], "other file": b"ham\thello\n"}[how]
    path = place(tmp_path / "data", "flat", bad)
    with pytest.raises(ValueError) as excinfo:
        spam_data.dataset_bytes("sms", tmp_path / "data")
    message = str(excinfo.value)
    assert str(path) in message
    assert hashlib.sha256(bad).hexdigest() in message and SMS.sha256 in message
    assert "damaged or not the official one" in message


def test_corrupted_cached_copy_is_rejected(tmp_path, sms_bytes):
    path = place(tmp_path / "cache", "folder", damaged(sms_bytes))
    with pytest.raises(ValueError, match="SHA-256") as excinfo:
        spam_data.dataset_bytes("sms")
    assert str(path) in str(excinfo.value)


def test_corrupted_enron_copy_is_rejected(tmp_path, enron_bytes):
    path = tmp_path / "data" / ENRON.folder / ENRON.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(damaged(enron_bytes))
    with pytest.raises(ValueError, match="damaged or not the official one"):
        spam_data.load_messages("enron", tmp_path / "data")


# --- where the file is found ----------------------------------------------------------


@pytest.mark.parametrize("layout", ["flat", "folder"])
@pytest.mark.parametrize("via", ["argument", "SPAM_LAB_DATA_DIR"])
def test_local_directory(monkeypatch, tmp_path, sms_bytes, via, layout):
    root = tmp_path / "mydata"
    place(root, layout, sms_bytes)
    if via == "argument":
        data_dir = root
    else:
        monkeypatch.setenv("SPAM_LAB_DATA_DIR", str(root))
        data_dir = None
    # No cache, no network: the bytes can only come from `root`.
    assert spam_data.dataset_bytes("sms", data_dir) == sms_bytes
    texts, labels = spam_data.load_messages("sms", data_dir)
    assert (len(texts), int(labels.sum())) == (SMS_DISTINCT, SMS_DISTINCT_SPAM)
    assert not (tmp_path / "cache").exists(), "a local copy must not be copied into the cache"


def test_argument_comes_before_the_environment(monkeypatch, tmp_path, sms_bytes):
    place(tmp_path / "arg", "flat", sms_bytes)
    place(tmp_path / "env", "flat", damaged(sms_bytes))
    monkeypatch.setenv("SPAM_LAB_DATA_DIR", str(tmp_path / "env"))
    assert spam_data.dataset_bytes("sms", tmp_path / "arg") == sms_bytes
    with pytest.raises(ValueError, match="SHA-256"):
        spam_data.dataset_bytes("sms")


def test_cache_directory(monkeypatch, tmp_path, sms_bytes):
    assert spam_data.cache_dir() == tmp_path / "cache"
    with pytest.raises(spam_data.DataNotFound):
        spam_data.dataset_bytes("sms")
    place(tmp_path / "cache", "folder", sms_bytes)
    assert spam_data.dataset_bytes("sms") == sms_bytes
    monkeypatch.delenv("SPAM_LAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert spam_data.cache_dir() == tmp_path / "home" / ".cache" / "spam_lab"


# --- download -----------------------------------------------------------------------


def test_download_rejects_an_archive_that_is_not_the_official_one(monkeypatch, tmp_path, sms_bytes):
    # A zip holding the right file, but not the official archive's bytes.
    requested = serve(monkeypatch, make_zip({SMS.archive_member: sms_bytes}))
    with pytest.raises(ValueError) as excinfo:
        spam_data.dataset_bytes("sms")
    assert requested == [SMS.url]
    assert SMS.url in str(excinfo.value) and SMS.archive_sha256 in str(excinfo.value)
    assert not (tmp_path / "cache" / SMS.folder / SMS.filename).exists()


def test_download_rejects_a_damaged_member(monkeypatch, tmp_path, sms_bytes):
    archive = make_zip({SMS.archive_member: damaged(sms_bytes)})
    monkeypatch.setitem(spam_data.DATASETS, "sms", dataclasses.replace(SMS, archive_sha256=spam_data.sha256_of(archive)))
    serve(monkeypatch, archive)
    with pytest.raises(ValueError, match=f"{SMS.archive_member}: SHA-256"):
        spam_data.dataset_bytes("sms")
    assert not (tmp_path / "cache" / SMS.folder / SMS.filename).exists()


def test_download_lands_in_the_cache(monkeypatch, tmp_path, sms_bytes):
    readme = (SHARED_DATA / SMS.folder / "readme").read_bytes()
    archive = make_zip({SMS.archive_member: sms_bytes, "readme": readme})
    # The test's zip stands in for the official one: register its checksum.
    monkeypatch.setitem(spam_data.DATASETS, "sms", dataclasses.replace(SMS, archive_sha256=spam_data.sha256_of(archive)))
    requested = serve(monkeypatch, archive)
    assert spam_data.dataset_bytes("sms") == sms_bytes
    assert requested == [SMS.url]
    cached = tmp_path / "cache" / SMS.folder / SMS.filename
    assert cached.read_bytes() == sms_bytes
    assert not (cached.parent / "readme").exists()
    # Offline again: the second call is served from the cache.
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    texts, labels = spam_data.load_messages("sms")
    assert (len(texts), int(labels.sum())) == (SMS_DISTINCT, SMS_DISTINCT_SPAM)
    assert requested == [SMS.url]


def test_offline_message_says_where_to_put_which_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SPAM_LAB_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(spam_data.DataNotFound) as excinfo:
        spam_data.load_lab_data("sms", data_dir=tmp_path / "arg")
    assert isinstance(excinfo.value, FileNotFoundError)
    message = str(excinfo.value)
    assert f"'{SMS.filename}'" in message and SMS.sha256 in message
    assert SMS.url in message and "network switched off by the test" in message
    for path in [
        tmp_path / "arg" / SMS.filename, tmp_path / "arg" / SMS.folder / SMS.filename,
        tmp_path / "env" / SMS.filename, tmp_path / "env" / SMS.folder / SMS.filename,
        tmp_path / "cache" / SMS.folder / SMS.filename,
    ]:
        assert f"  - {path}\n" in message
    assert "set SPAM_LAB_DATA_DIR" in message


def test_enron_is_never_downloaded(monkeypatch, tmp_path):
    requested = serve(monkeypatch, b"")
    with pytest.raises(spam_data.DataNotFound) as excinfo:
        spam_data.dataset_bytes("enron")
    assert requested == []
    assert f"'{ENRON.filename}'" in str(excinfo.value) and "no official single-file download" in str(excinfo.value)
    assert str(tmp_path / "cache" / ENRON.folder / ENRON.filename) in str(excinfo.value)


# --- parsing --------------------------------------------------------------------------


def test_parse_splits_each_line_on_its_first_tab():
    texts, labels = spam_data._parse_sms("ham\tone\ttwo\nspam\t  Win £5 \"now\"  \nham\t\n".encode())
    assert texts == ["one\ttwo", '  Win £5 "now"  ', ""]
    assert labels == [0, 1, 0]


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
    first_copies = list(dict.fromkeys(texts))  # first occurrence order
    assert distinct == first_copies
    label_of = dict(zip(texts, labels))
    assert list(distinct_labels) == [label_of[t] for t in distinct]


def test_enron_counts(enron_bytes):
    texts, labels = spam_data._parse_enron(enron_bytes)
    assert (len(texts), sum(labels), labels.count(0)) == (ENRON_ROWS, ENRON_SPAM_ROWS, ENRON_HAM_ROWS)
    distinct, distinct_labels = spam_data.load_messages("enron", SHARED_DATA)
    assert len(distinct) == len(set(distinct)) == ENRON_DISTINCT == len(set(texts))
    spam_texts = {t for t, y in zip(texts, labels) if y == 1}
    assert int(distinct_labels.sum()) == len(spam_texts)
    assert all(t.count("\n") >= 1 for t in distinct[:100]), "an Enron text is Subject + newline + Message"
    splits = spam_data.split_indices(distinct_labels, 1234)
    assert sorted(np.concatenate(list(splits.values()))) == list(range(ENRON_DISTINCT))


# --- splits ---------------------------------------------------------------------------


def test_split_is_deterministic_and_stratified(sms_messages):
    texts, labels = sms_messages
    first, again, other = (spam_data.split_indices(labels, seed) for seed in (1234, 1234, 99))
    for name in spam_data.SPLITS:
        assert np.array_equal(first[name], again[name])
    assert not np.array_equal(first["train"], other["train"])

    everything = np.concatenate([first[name] for name in spam_data.SPLITS])
    assert len(everything) == len(set(everything.tolist())) == len(labels), "splits overlap or miss messages"
    overall = labels.mean()
    for name, fraction in zip(spam_data.SPLITS, (0.70, 0.15, 0.15)):
        part = labels[first[name]]
        assert abs(len(part) - fraction * len(labels)) <= 2, (name, len(part))
        assert abs(part.mean() - overall) < 0.01, f"{name}: {part.mean():.3%} spam vs {overall:.3%}"


def test_no_text_is_in_two_splits(sms_messages):
    splits = spam_data.load_splits("sms", SHARED_DATA, 1234)
    sets = {name: set(texts) for name, (texts, _) in splits.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert sum(len(s) for s in sets.values()) == SMS_DISTINCT
    label_of = dict(zip(*sms_messages))
    for texts, labels in splits.values():
        assert labels.tolist() == [label_of[t] for t in texts]


def test_splits_file_round_trip(tmp_path):
    labels = np.arange(len(TRICKY_TEXTS)) % 2
    splits = {"train": (TRICKY_TEXTS, labels), "val": (TRICKY_TEXTS[::-1], labels[::-1]), "test": (["secret"], np.array([1]))}
    path = spam_data.write_splits_file(splits, tmp_path / "public.tsv")
    back = spam_data.read_splits_file(path)
    assert set(back) == {"train", "val"}, "the default writes the public splits only"
    assert b"secret" not in path.read_bytes()
    for name in ("train", "val"):
        assert back[name][0] == list(splits[name][0])
        assert back[name][1].dtype == np.int32 and back[name][1].tolist() == splits[name][1].tolist()
    hidden = spam_data.read_splits_file(spam_data.write_splits_file(splits, tmp_path / "test.tsv", names=("test",)))
    assert set(hidden) == {"test"} and hidden["test"][0] == ["secret"]


def test_splits_file_round_trip_of_real_splits(tmp_path):
    splits = spam_data.load_splits("sms", SHARED_DATA, 1234)
    back = spam_data.read_splits_file(spam_data.write_splits_file(splits, tmp_path / "s.tsv", names=spam_data.SPLITS))
    for name in spam_data.SPLITS:
        assert back[name][0] == splits[name][0] and np.array_equal(back[name][1], splits[name][1])


# --- the notebook's view -------------------------------------------------------------


def test_load_lab_data_has_no_test_split(monkeypatch, sms_bytes, tmp_path):
    data = spam_data.load_lab_data("sms", SHARED_DATA)
    full = spam_data.load_splits("sms", SHARED_DATA, 1234)
    assert set(data) == {"train", "val"}
    for name in data:
        assert data[name][0] == full[name][0] and np.array_equal(data[name][1], full[name][1])
    test_texts = set(full["test"][0])
    assert not test_texts & set(data["train"][0]) and not test_texts & set(data["val"][0])

    monkeypatch.setenv("SPAM_LAB_SPLIT_SEED", "7")
    assert data["train"][0] != spam_data.load_lab_data("sms", SHARED_DATA)["train"][0]
    assert spam_data.load_lab_data("sms", SHARED_DATA)["val"][0] == spam_data.load_splits("sms", SHARED_DATA, 7)["val"][0]


def test_load_lab_data_reads_SPAM_LAB_SPLITS(monkeypatch, tmp_path):
    splits = {
        "train": (TRICKY_TEXTS, np.arange(len(TRICKY_TEXTS)) % 2),
        "val": (["v1", "v2"], np.array([1, 0])),
        "test": (["hidden one"], np.array([1])),
    }
    public = spam_data.write_splits_file(splits, tmp_path / "public.tsv")
    monkeypatch.setenv("SPAM_LAB_SPLITS", str(public))
    # No data directory, empty cache, no network: the file alone answers.
    data = spam_data.load_lab_data("sms")
    assert set(data) == {"train", "val"}
    assert data["train"][0] == TRICKY_TEXTS and data["val"][1].tolist() == [1, 0]

    everything = spam_data.write_splits_file(splits, tmp_path / "all.tsv", names=spam_data.SPLITS)
    monkeypatch.setenv("SPAM_LAB_SPLITS", str(everything))
    assert set(spam_data.load_lab_data("sms")) == {"train", "val"}, "a test split in the file must not reach the notebook"

    only_train = spam_data.write_splits_file(splits, tmp_path / "train.tsv", names=("train",))
    monkeypatch.setenv("SPAM_LAB_SPLITS", str(only_train))
    with pytest.raises(ValueError, match="has no val split"):
        spam_data.load_lab_data("sms")
