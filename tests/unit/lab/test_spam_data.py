"""The lab's data loader, source/spam_transformer/spam_data.py, on generated data (``sample_data``).

Every test runs with no data directory, an empty cache in a temp dir and the
network switched off (urlopen raises), unless it sets one of them up itself.
The data are small files in the real formats, with the parsing traps
(``tests/sample_data.py``); the published files are checked by
``tests/integration/lab/test_spam_data_files.py`` where they are present.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sample_data
from kit_testing import lab_loader

spam_data = lab_loader()
SMS = spam_data.DATASETS["sms"]
ENRON = spam_data.DATASETS["enron"]

TRICKY_TEXTS = [
    "a\ttab",
    'say "hi"',
    '"',
    "two\nlines",
    "carriage\rreturn",
    "windows\r\nline",
    "",
    "  padded  ",
    "back\\slash\\",
    "nul\x00byte",
    "\u2028separator\x85",
    "£5 prize ü",
    "\ttab first",
    "ends with tab\t",
    "'single'",
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


@pytest.fixture
def data(monkeypatch, tmp_path) -> Path:
    """A data folder with the generated SMS and Enron files, which the loader takes as the official ones."""
    folder = tmp_path / "data"
    sample_data.install(monkeypatch, spam_data, folder)
    return folder


@pytest.fixture
def sms_bytes(data) -> bytes:
    return (data / SMS.folder / SMS.filename).read_bytes()


@pytest.fixture
def sms_messages(data):
    return spam_data.load_messages("sms", data)


@pytest.fixture
def enron_bytes(data) -> bytes:
    return (data / ENRON.folder / ENRON.filename).read_bytes()


def place(root: Path, layout: str, data: bytes) -> Path:
    """Put the SMS file in `root`, flat or in its dataset folder."""
    target = root / SMS.filename if layout == "flat" else root / SMS.folder / SMS.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def damaged(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


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


def test_a_copy_with_the_registered_checksum_passes_verification(data, sms_bytes):
    assert spam_data.sha256_of(sms_bytes) == hashlib.sha256(sms_bytes).hexdigest()
    assert spam_data.dataset_bytes("sms", data) == sms_bytes
    assert spam_data.DATASETS["sms"].sha256 != SMS.sha256, "the fixture registers the generated file's checksum"
    with pytest.raises(ValueError, match="damaged or not the official one"):  # the published checksum refuses it
        spam_data._checked(sms_bytes, SMS.sha256, "generated")


@pytest.mark.parametrize("how", ["flipped byte", "truncated", "other file"])
def test_corrupted_local_copy_is_rejected(tmp_path, sms_bytes, how):
    bad = {"flipped byte": damaged(sms_bytes), "truncated": sms_bytes[:-100], "other file": b"ham\thello\n"}[how]
    path = place(tmp_path / "bad", "flat", bad)
    with pytest.raises(ValueError) as excinfo:
        spam_data.dataset_bytes("sms", tmp_path / "bad")
    message = str(excinfo.value)
    assert str(path) in message
    assert hashlib.sha256(bad).hexdigest() in message and spam_data.DATASETS["sms"].sha256 in message
    assert "damaged or not the official one" in message


def test_corrupted_cached_copy_is_rejected(tmp_path, sms_bytes):
    path = place(tmp_path / "cache", "folder", damaged(sms_bytes))
    with pytest.raises(ValueError, match="SHA-256") as excinfo:
        spam_data.dataset_bytes("sms")
    assert str(path) in str(excinfo.value)


def test_corrupted_enron_copy_is_rejected(tmp_path, enron_bytes):
    path = tmp_path / "bad" / ENRON.folder / ENRON.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(damaged(enron_bytes))
    with pytest.raises(ValueError, match="damaged or not the official one"):
        spam_data.load_messages("enron", tmp_path / "bad")


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
    assert (len(texts), int(labels.sum())) == (sample_data.SMS_DISTINCT, sample_data.SMS_DISTINCT_SPAM)
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
    registered = spam_data.DATASETS["sms"]
    monkeypatch.setitem(
        spam_data.DATASETS, "sms", dataclasses.replace(registered, archive_sha256=spam_data.sha256_of(archive))
    )
    serve(monkeypatch, archive)
    with pytest.raises(ValueError, match=f"{SMS.archive_member}: SHA-256"):
        spam_data.dataset_bytes("sms")
    assert not (tmp_path / "cache" / SMS.folder / SMS.filename).exists()


def test_download_lands_in_the_cache(monkeypatch, tmp_path, sms_bytes):
    archive = make_zip({SMS.archive_member: sms_bytes, "readme": b"SMS Spam Collection v.1\n"})
    # The test's zip stands in for the official one: register its checksum.
    registered = spam_data.DATASETS["sms"]
    monkeypatch.setitem(
        spam_data.DATASETS, "sms", dataclasses.replace(registered, archive_sha256=spam_data.sha256_of(archive))
    )
    requested = serve(monkeypatch, archive)
    assert spam_data.dataset_bytes("sms") == sms_bytes
    assert requested == [SMS.url]
    cached = tmp_path / "cache" / SMS.folder / SMS.filename
    assert cached.read_bytes() == sms_bytes
    assert not (cached.parent / "readme").exists()
    # Offline again: the second call is served from the cache.
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    texts, labels = spam_data.load_messages("sms")
    assert (len(texts), int(labels.sum())) == (sample_data.SMS_DISTINCT, sample_data.SMS_DISTINCT_SPAM)
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
        tmp_path / "arg" / SMS.filename,
        tmp_path / "arg" / SMS.folder / SMS.filename,
        tmp_path / "env" / SMS.filename,
        tmp_path / "env" / SMS.folder / SMS.filename,
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
    texts, labels = spam_data._parse_sms('ham\tone\ttwo\nspam\t  Win £5 "now"  \nham\t\n'.encode())
    assert texts == ["one\ttwo", '  Win £5 "now"  ', ""]
    assert labels == [0, 1, 0]


def test_sms_counts(sms_bytes, sms_messages):
    texts, labels = spam_data._parse_sms(sms_bytes)
    assert (len(texts), sum(labels)) == (sample_data.SMS_LINES, sample_data.SMS_SPAM_LINES)
    assert "call me\tlater\tok" in texts and "Ham 0" in texts and "ham 0 " in texts and "" in texts
    # The same lines, read independently of the loader.
    lines = [line.partition("\t") for line in sms_bytes.decode("utf-8").split("\n") if line]
    assert texts == [text for _, _, text in lines]
    assert labels == [int(label == "spam") for label, _, _ in lines]

    distinct, distinct_labels = sms_messages
    assert distinct_labels.dtype == np.int32
    assert len(distinct) == len(set(distinct)) == sample_data.SMS_DISTINCT
    assert int(distinct_labels.sum()) == sample_data.SMS_DISTINCT_SPAM
    assert int((distinct_labels == 0).sum()) == sample_data.SMS_DISTINCT - sample_data.SMS_DISTINCT_SPAM
    first_copies = list(dict.fromkeys(texts))  # first occurrence order
    assert distinct == first_copies
    label_of: dict = {}
    for text, label in zip(texts, labels):
        label_of.setdefault(text, label)  # the first copy's label, even where a later copy says otherwise
    assert list(distinct_labels) == [label_of[t] for t in distinct]
    assert label_of["ham 2"] == 0 and labels[texts.index("ham 2", texts.index("ham 2") + 1)] == 1


def test_enron_counts(data, enron_bytes):
    texts = sample_data.check_enron(
        spam_data, enron_bytes, data, sample_data.ENRON_ROWS, sample_data.ENRON_SPAM_ROWS, sample_data.ENRON_DISTINCT
    )
    assert 're : meeting , today\nline one\nline "two" , with commas\n' in texts, "quoted newlines and commas kept"


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


def test_no_text_is_in_two_splits(data, sms_messages):
    splits = spam_data.load_splits("sms", data, 1234)
    sets = {name: set(texts) for name, (texts, _) in splits.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert sum(len(s) for s in sets.values()) == sample_data.SMS_DISTINCT
    label_of = dict(zip(*sms_messages))
    for texts, labels in splits.values():
        assert labels.tolist() == [label_of[t] for t in texts]


def test_splits_file_round_trip(tmp_path):
    labels = np.arange(len(TRICKY_TEXTS)) % 2
    splits = {
        "train": (TRICKY_TEXTS, labels),
        "val": (TRICKY_TEXTS[::-1], labels[::-1]),
        "test": (["secret"], np.array([1])),
    }
    path = spam_data.write_splits_file(splits, tmp_path / "public.tsv")
    back = spam_data.read_splits_file(path)
    assert set(back) == {"train", "val"}, "the default writes the public splits only"
    assert b"secret" not in path.read_bytes()
    for name in ("train", "val"):
        assert back[name][0] == list(splits[name][0])
        assert back[name][1].dtype == np.int32 and back[name][1].tolist() == splits[name][1].tolist()
    hidden = spam_data.read_splits_file(spam_data.write_splits_file(splits, tmp_path / "test.tsv", names=("test",)))
    assert set(hidden) == {"test"} and hidden["test"][0] == ["secret"]


def test_splits_file_round_trip_of_loaded_splits(tmp_path, data):
    splits = spam_data.load_splits("sms", data, 1234)
    back = spam_data.read_splits_file(spam_data.write_splits_file(splits, tmp_path / "s.tsv", names=spam_data.SPLITS))
    for name in spam_data.SPLITS:
        assert back[name][0] == splits[name][0] and np.array_equal(back[name][1], splits[name][1])


# --- the notebook's view -------------------------------------------------------------


def test_load_lab_data_has_no_test_split(monkeypatch, data):
    folder, data = data, spam_data.load_lab_data("sms", data)
    full = spam_data.load_splits("sms", folder, 1234)
    assert set(data) == {"train", "val"}
    for name in data:
        assert data[name][0] == full[name][0] and np.array_equal(data[name][1], full[name][1])
    test_texts = set(full["test"][0])
    assert not test_texts & set(data["train"][0]) and not test_texts & set(data["val"][0])

    monkeypatch.setenv("SPAM_LAB_SPLIT_SEED", "7")
    assert data["train"][0] != spam_data.load_lab_data("sms", folder)["train"][0]
    assert spam_data.load_lab_data("sms", folder)["val"][0] == spam_data.load_splits("sms", folder, 7)["val"][0]


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
    assert set(spam_data.load_lab_data("sms")) == {"train", "val"}, (
        "a test split in the file must not reach the notebook"
    )

    only_train = spam_data.write_splits_file(splits, tmp_path / "train.tsv", names=("train",))
    monkeypatch.setenv("SPAM_LAB_SPLITS", str(only_train))
    with pytest.raises(ValueError, match="has no val split"):
        spam_data.load_lab_data("sms")
