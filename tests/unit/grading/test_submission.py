"""What is graded and the key it is stored under: the student's files, the submission digest, the job."""

from __future__ import annotations

import dataclasses

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.grading import submission as sub
from autograder.grading.job import GradingJob
from autograder.grading.submission import prepare_submission, student_files, submission_digest, submission_key

JOB = GradingJob(
    lab={"seed": 42, "dataset": "sms"},
    grading={"val_auc_threshold": 0.91},
    sandbox={"mode": "bwrap"},
    given_code="x = 1\n",
    spam_data_py=b"# loader\n",
    public_splits=b"train\n",
    hidden_test=b"test\n",
)


def notebook(source="model.compile()"):
    return new_notebook(cells=[new_code_cell("import keras"), new_code_cell(source)])


def test_student_files_are_the_students_own_extra_files(tmp_path):
    (tmp_path / "lab.ipynb").write_text("{}")  # the notebook itself travels apart
    (tmp_path / "spam_data.py").write_text("# ours")  # the lab's loader: the grader's copy is used
    (tmp_path / "scratch.ipynb").write_text("{}")  # other notebooks are not run
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "extra.csv").write_bytes(b"a,b\n")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "lab-checkpoint.txt").write_text("hidden")
    (tmp_path / "link.txt").symlink_to("/etc/passwd")  # never followed out of the folder
    assert student_files(tmp_path, "lab") == {"data/extra.csv": b"a,b\n", "notes.txt": b"mine"}


def test_student_files_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(sub, "MAX_STUDENT_FILES_BYTES", 10)
    for name in ("a.bin", "b.bin", "c.bin"):
        (tmp_path / name).write_bytes(b"12345")
    assert list(student_files(tmp_path, "lab")) == ["a.bin", "b.bin"]


def test_the_key_names_the_cells_the_files_and_the_job():
    nb, files = notebook(), {"notes.txt": b"mine"}
    key = submission_key(nb, files, JOB)
    ran = notebook()
    ran.cells[1].outputs = [new_output("stream", name="stdout", text="old output\n")]
    ran.cells[1].execution_count = 7
    assert submission_key(ran, files, JOB) == key  # outputs are not the submission
    assert submission_key(notebook("model.compile(loss='mse')"), files, JOB) != key
    assert submission_key(nb, {"notes.txt": b"changed"}, JOB) != key
    assert submission_key(nb, {**files, "more.txt": b""}, JOB) != key
    stricter = dataclasses.replace(JOB, grading={"val_auc_threshold": 0.95})
    assert submission_key(nb, files, stricter) != key  # other rules: graded again
    assert submission_digest(nb, files) == submission_digest(ran, files)  # the submission alone, whatever the job
    assert len(key) == 64 and key != submission_digest(nb, files)


def test_prepare_submission_is_what_grading_receives(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    nbformat.write(notebook(), tmp_path / "lab.ipynb")
    prepared = prepare_submission(notebook(), tmp_path, "lab", JOB)
    assert prepared.files == {"notes.txt": b"mine"}
    assert prepared.key == submission_key(notebook(), prepared.files, JOB)
    assert prepared.digest == submission_digest(notebook(), prepared.files)
    assert nbformat.reads(prepared.nb_json, as_version=4).cells[1].source == "model.compile()"
