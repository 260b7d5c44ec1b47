"""The check process parses a student's weights file: it gets none of the grader's secrets."""

from __future__ import annotations

from autograder.grading.check_process import KIT_ROOT, check_env

SECRETS = {
    "KIT_DB_URL": "postgresql://grader:hunter2@db/course",
    "CANVAS_API_TOKEN": "7~secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "AWS_SECRET": "aws-secret",
    "MY_PASSWORD": "pw",
}


def test_the_check_process_gets_only_what_it_needs(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", "/opt/site")
    env = check_env(3)
    assert not set(SECRETS) & set(env)
    assert not any(value in str(env) for value in SECRETS.values())
    assert set(env) <= {
        "PATH",
        "HOME",
        "LANG",
        "TMPDIR",
        "PYTHONPATH",
        "TF_CPP_MIN_LOG_LEVEL",
        "CUDA_VISIBLE_DEVICES",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
    }
    assert env["PYTHONPATH"].split(":") == [str(KIT_ROOT), "/opt/site"]
    assert env["OMP_NUM_THREADS"] == "3" and env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == "1"


def test_no_empty_entry_puts_the_working_folder_on_the_path(monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert check_env(1)["PYTHONPATH"] == str(KIT_ROOT)
