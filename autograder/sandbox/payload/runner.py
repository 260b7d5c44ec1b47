"""Execute one notebook and capture its evidence: the program the sandbox runs.

Usage: python runner.py SPEC, where SPEC is one JSON object (the sandbox
writes it; this file never imports the kit, so it gets everything from it):

    notebook                   path of the notebook to run (it is deleted
                               once read)
    channel                    the file descriptor everything goes back on
    names                      the names the report, the progress file and
                               the executed notebook are sent under
    evidence_files             the evidence files (path in the home -> the
                               largest size sent)
    checkpoint                 the prefix the evidence of a checkpoint is sent
                               under
    filesystems                the run's size-capped filesystems (path, MB,
                               the setting): a cell that leaves one full
                               ends the run as too_much_disk
    cell_timeout               seconds per cell
    max_output_bytes           outputs kept before they are cut
    capture                    path of capture.py
    capture_settings           handed to the capture cells as they are:
                               evidence_dir, evidence_file, weights_file,
                               plot_history

Nothing is left on disk for the grader: the home is a filesystem that ends
with the sandbox. Results go back over the channel, a pipe only this process
holds: before the kernel starts it makes the descriptor close-on-exec and
itself not dumpable, so the kernel neither inherits it nor opens it through
/proc. Each frame is a JSON header line ``{"name", "size"}`` and that many
bytes; the grader keeps the last frame of each name, up to its size.

It uses nbgrader's own Execute preprocessor, so a cell behaves exactly as in
plain ``nbgrader autograde`` (a cell past cell_timeout is interrupted and gets
an error, and the run goes on). Around the student's cells it adds two cells
made from capture.py (see its docstring): a guard cell before the first one,
run outside the kernel's history so the student's cells keep their numbers,
and the capture cell after the last one; both are removed again before OUT is
written. Right before the capture cell the runner empties the evidence folder
(a file the notebook planted there, even read-only, is gone), and if the
capture cell fails it empties it again: only a capture that ran leaves evidence.
Output is bounded while the kernel runs: past max_output_bytes in total, outputs
are dropped (one marker says so); past ten times that the kernel is killed and
the run ends as ``too_much_output``. Only this file, capture.py and the fences
of the library internals they use (``autograder/internals/``: nbgrader,
nbclient, jupyter_client for this file, keras and matplotlib for capture.py,
copied to ``internals/`` next to them) are visible inside the sandbox; they
hold no checks.

Which cell is where: as each code cell starts, the runner sends the
progress file (a tiny JSON object: the cell running, the cells that hit
cell_timeout so far), so that the grader still learns them when the watchdog
kills the whole sandbox (notebook_timeout, memory, ...) and this program
cannot report.

Checkpoints: after each of the student's code cells the runner calls the
guard's checkpoint entry in a hidden cell (outside the kernel's history). It
writes the evidence of what the guard has recorded so far (compile, fit and
its weights, plot_history) when something changed; the runner sends those
files under the checkpoint prefix and empties the evidence folder. If the run
then ends early (kernel death, a limit), the grader still has the evidence of
the work done before. A cell interrupted at cell_timeout (noticed in the step
nbclient takes then: ``internals/nbclient.py``) is recorded, and its error outputs (the
``KeyboardInterrupt`` and nbgrader's ``CellTimeoutError``) become one
``CellTimeout`` error naming the cell and the limit, keeping the frames that
show where it was interrupted; the cell the kernel died in gets a
``KernelDied`` error. Cells are numbered as in the submitted notebook (0 is
its first cell; the guard cell is -1, the capture cell one past the last)
and named as the kit names them: the nbgrader grade_id, else "cell N"
(N = index + 1).

The outcome is written to the report file; the grader treats all of it as
untrusted data. Its ``status`` is one of ok, cell_timeout, timeout,
kernel_died, too_much_output, error: run statuses of the kit's
``model.Status``, which the sandbox reads back with ``Status.of_run``
(anything else counts as an error); ``cell`` is the index of the cell that
was running when the run ended early (None when it ran to its end) and
``timed_out`` the indices of the cells stopped at cell_timeout.
"""

import ctypes
import json
import os
import secrets
import shutil
import stat
import sys
import time
from pathlib import Path

# jsonschema (under nbformat) imports this optional IRI format checker if it is installed, and
# building its grammar takes about 0.8 s, in every sandbox; nbformat's validation never uses it.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: E402
from nbformat.v4 import new_code_cell, new_output  # noqa: E402


def _internals(library):
    """The kit's fence of ``library``'s private names (``autograder/internals/<library>.py``), loaded by its
    path: bwrap copies it to ``internals/`` next to this file; outside a sandbox it is the kit's own file.
    This file never imports the kit's package (the sandbox does not have it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"spamkit_internals_{library}", INTERNALS / f"{library}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_HERE = Path(__file__).resolve().parent
INTERNALS = _HERE / "internals" if (_HERE / "internals").is_dir() else _HERE.parent.parent / "internals"
# What capture.py loads in the guard cell (its path goes into the cell); the runner's own are loaded here.
CAPTURE_INTERNALS = ("keras", "matplotlib")
_nbclient, _jupyter_client = _internals("nbclient"), _internals("jupyter_client")
# nbgrader's Execute without the __init__ of nbgrader and nbconvert (about 2.5 s of CPU in every sandbox)
Execute = _internals("nbgrader").execute_preprocessor()

CAPTURE_TAG = "kit-evidence-capture"
GUARD_TAG = "kit-evidence-guard"
GUARD_MODULE_NAME = "__kit_guard__"  # __name__ of capture.py's source when the guard cell runs it
HARD_LIMIT_FACTOR = 10
COUNTED = {"stream", "display_data", "execute_result", "error", "update_display_data", "comm_open", "comm_msg"}
CELL_LIMIT = "Sandbox.cell_timeout"  # the setting whose value this program gets as cell_timeout
IGNORED_INTERRUPT = ", and the run ended: the kernel did not answer the interrupt"
RED, RESET = "\x1b[31m", "\x1b[39m"


def cell_name(cell, number: int) -> str:
    """How the kit names a cell (``model.cell_label``): its grade_id, else "cell N"; the runner's cells by tag."""
    tags = cell.metadata.get("tags")
    if tags in ([GUARD_TAG], [CAPTURE_TAG]):
        return tags[0]
    grade_id = (cell.metadata.get("nbgrader") or {}).get("grade_id")
    return str(grade_id)[:100] if grade_id else f"cell {number + 1}"


def timeout_text(name: str, seconds: int) -> str:
    """A cell interrupted at cell_timeout (``model.cells_timed_out``, for one cell)."""
    return f"cell `{name}` stopped after {seconds} s ({CELL_LIMIT})"


def kernel_died_text(name: str) -> str:
    """The cell the kernel died in (``model.while_running``)."""
    return f"the Python kernel died while cell `{name}` was running"


FULL_BYTES = 1 << 20  # a filesystem with less free than this is full (the grader's limits.FULL_BYTES)


class DiskFull(Exception):
    """A cell filled one of the run's filesystems."""


class Channel:
    """The write end of the pipe to the grader: frames of a JSON header line and bytes."""

    def __init__(self, fd):
        self.fd = fd
        os.set_inheritable(fd, False)  # the kernel and anything it starts never get it
        _not_dumpable()  # nor open it through /proc/<this pid>/fd

    def send(self, name, data):
        header = json.dumps({"name": name, "size": len(data)}).encode() + b"\n"
        try:
            for part in (header, data):
                view = memoryview(part)
                while view:
                    view = view[os.write(self.fd, view) :]
        except OSError:
            pass  # the grader stopped reading: it ended the run


def _not_dumpable():
    """prctl(PR_SET_DUMPABLE, 0): this process's /proc files (fd, mem) are closed to processes of its uid."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def read_file(folder, relpath, max_bytes):
    """A regular file under folder, never following a symlink, up to max_bytes; None otherwise."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fds = []
    try:
        fds.append(os.open(folder, flags | os.O_DIRECTORY))
        *parts, name = relpath.split("/")
        for part in parts:
            fds.append(os.open(part, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
        fds.append(os.open(name, flags | os.O_NONBLOCK, dir_fd=fds[-1]))
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        with os.fdopen(os.dup(fds[-1]), "rb") as f:
            data = f.read(max_bytes + 1)
        return data if len(data) <= max_bytes else None
    except OSError:
        return None
    finally:
        for fd in fds:
            os.close(fd)


class BoundedExecute(_nbclient.NoticeTimeouts, Execute):
    """nbgrader's Execute, keeping at most ``max_output_bytes`` of outputs in memory."""

    def __init__(self, max_output_bytes, evidence, channel=None, names=None, checkpoint=None, filesystems=(), **kwargs):
        super().__init__(**kwargs)
        self.filesystems = list(filesystems)  # [{"path", "mb", "setting"}]: the run's size-capped filesystems
        self.max_output_bytes = max_output_bytes
        self.evidence = evidence  # {"dir": evidence folder in the home, "files": {path in the home: max bytes}}
        self.output_bytes = 0
        self.cut_cells = set()
        self.too_much = False
        self.channel = channel  # a Channel, or None
        self.names = names or {}
        self.checkpoint = checkpoint  # {"source": the hidden cell's code, "prefix": sent under}, or None
        self.running = None  # index of the cell running now (the guard cell is 0)
        self.timed_out = []  # indices of the cells interrupted at the cell timeout

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            self.running = index
            self._write_progress()
        home = Path(resources["metadata"]["path"])
        if cell.metadata.get("tags") == [GUARD_TAG]:  # not in the kernel's history: In/Out and numbers untouched
            cell = self.execute_cell(cell, index, store_history=False)
        elif cell.metadata.get("tags") == [CAPTURE_TAG]:
            evidence = home / self.evidence["dir"]
            _clear(evidence)  # only what the capture cell writes may be evidence
            cell, _ = super().preprocess_cell(cell, resources, index)
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                _clear(evidence)  # a capture that failed leaves nothing half-written or planted
        else:
            cell, _ = super().preprocess_cell(cell, resources, index)
            if cell.cell_type == "code":
                self._stop_if_full()
                if self.checkpoint:
                    self._checkpoint(home, index)
                    self.nb.cells[index] = cell  # nbclient put the hidden cell in its place
        if index in self.timed_out:
            _replace_errors(cell, "CellTimeout", timeout_text(cell_name(cell, index - 1), self.timeout))
        return cell, self.resources

    def _stop_if_full(self):
        """A cell that left one of the run's filesystems full ends the run (the grader's watchdog looks only
        once a second, and the notebook could end first)."""
        for fs in self.filesystems:
            try:
                info = os.statvfs(fs["path"])
            except OSError:
                continue
            if info.f_bavail * info.f_frsize < FULL_BYTES:
                raise DiskFull(f"filled the {fs['mb']} MB of {fs['path']} ({fs['setting']})")

    def _checkpoint(self, home, index):
        """The guard's checkpoint in a hidden cell, then what it wrote sent under the checkpoint prefix."""
        evidence = home / self.evidence["dir"]
        _clear(evidence)  # only what the checkpoint writes now
        self.execute_cell(new_code_cell(self.checkpoint["source"]), index, store_history=False)
        self.send_evidence(home, self.checkpoint["prefix"] + "/")
        _clear(evidence)

    def send_evidence(self, home, prefix=""):
        for relpath, max_bytes in self.evidence["files"].items():
            data = read_file(home, relpath, max_bytes)
            if data is not None and self.channel:
                self.channel.send(prefix + relpath, data)

    def cell_timed_out(self, cell):
        """A cell passed the timeout (nbclient interrupts the kernel next): note which cell it was."""
        if self.running is not None and self.running not in self.timed_out:
            self.timed_out.append(self.running)
            self._write_progress()

    def _write_progress(self):
        """The progress file, sent whole: the running cell, the cells timed out."""
        if not self.channel:
            return
        data = json.dumps(
            {"cell": None if self.running is None else self.running - 1, "timed_out": [i - 1 for i in self.timed_out]}
        )
        self.channel.send(self.names["progress"], data.encode())

    def process_message(self, msg, cell, cell_index):
        if msg["msg_type"] in COUNTED:
            self.output_bytes += _size(msg["content"])
            if self.output_bytes > self.max_output_bytes:
                self._drop(cell, cell_index)
                return None
        return super().process_message(msg, cell, cell_index)

    def _drop(self, cell, cell_index):
        if cell_index not in self.cut_cells:
            self.cut_cells.add(cell_index)
            cell.outputs.append(
                new_output(
                    "stream",
                    name="stdout",
                    text=f"\n[output cut: the notebook printed more than {self.max_output_bytes} bytes]\n",
                )
            )
        if self.output_bytes > HARD_LIMIT_FACTOR * self.max_output_bytes and not self.too_much:
            self.too_much = True
            _jupyter_client.kill_kernel_now(self.km)  # nbclient then sees a dead kernel


def _clear(folder: Path) -> None:
    """Remove the evidence folder and anything the notebook put there, even made read-only."""
    try:
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.is_dir():
            folder.chmod(0o700)
            for root, dirs, _ in os.walk(folder):
                for name in dirs:
                    path = Path(root, name)
                    if not path.is_symlink():
                        path.chmod(0o700)
            shutil.rmtree(folder)
    except OSError:
        pass  # the sandbox's uid owns all of scratch, so this is not expected; capture's own write then fails


def _replace_errors(cell, ename: str, text: str) -> None:
    """The cell's error outputs become one error ``ename: text``, kept where the first was.

    The frames of an interrupted cell's KeyboardInterrupt (where the code was
    stopped) stay under the new name.
    """
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    frames = next(
        (
            o["traceback"]
            for o in errors
            if o.get("ename") == "KeyboardInterrupt" and len(o.get("traceback") or []) >= 3
        ),
        None,
    )
    traceback = [f"{RED}{ename}{RESET}: {text}"]
    if frames:
        traceback = [frames[0], frames[1].replace("KeyboardInterrupt", ename, 1), *frames[2:-1], *traceback]
    stopped = new_output("error", ename=ename, evalue=text, traceback=traceback)
    first = next((i for i, o in enumerate(cell.outputs) if o.get("output_type") == "error"), len(cell.outputs))
    kept = [o for o in cell.outputs if o.get("output_type") != "error"]
    cell.outputs = kept[:first] + [stopped] + kept[first:]


def _size(content) -> int:
    """Bytes of a message's payload, without serialising it again."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, dict):
        return sum(len(k) + _size(v) for k, v in content.items())
    if isinstance(content, (list, tuple)):
        return sum(_size(v) for v in content)
    return 8


def capture_internals() -> dict:
    """The fences capture.py loads in the kernel, by library: the path of each file."""
    return {library: str(INTERNALS / f"{library}.py") for library in CAPTURE_INTERNALS}


def guard_source(capture_source: str, key: str, settings: dict, internals: dict | None = None) -> str:
    """The first cell: run capture.py privately, with a copy of the builtins as they are before any student code.
    ``internals``: the fence files it loads (default ``capture_internals()``)."""
    internals = capture_internals() if internals is None else internals
    return (
        f"exec(compile({capture_source!r}, 'kit-guard', 'exec'), "
        f"{{'__name__': {GUARD_MODULE_NAME!r}, '__builtins__': dict(vars(__import__('builtins'))), "
        f"'KIT_NAMESPACE': globals(), 'KIT_GUARD_KEY': {key!r}, 'KIT_SETTINGS': {settings!r}, "
        f"'KIT_INTERNALS': {internals!r}}})\n"
    )


def capture_source_with_guard(capture_source: str, key: str, settings: dict, internals: dict | None = None) -> str:
    """The last cell: capture.py in the student's namespace, told where the guard left its entry (if it is still
    there) and, for a capture without it, the settings and fence files."""
    internals = capture_internals() if internals is None else internals
    return (
        f"try:\n    _KIT_GUARD = {key}\nexcept NameError:  # the guard is gone\n    _KIT_GUARD = None\n"
        f"_KIT_SETTINGS = {settings!r}\n_KIT_INTERNALS = {internals!r}\n\n" + capture_source
    )


def _tagged(source: str, tag: str):
    cell = new_code_cell(source)
    cell.metadata["tags"] = [tag]
    return cell


def _errors(nb, tag: str) -> list:
    return [
        o.get("evalue", "")
        for c in nb.cells
        if c.metadata.get("tags") == [tag]
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def checkpoint_source(key: str) -> str:
    """The hidden cell after each student cell: the guard's checkpoint entry, if the guard is still there."""
    return f"(globals().get({key + '_checkpoint'!r}) or (lambda: None))()\n"


def main(spec: dict):
    channel = Channel(int(spec["channel"]))
    in_path, cell_timeout = spec["notebook"], int(spec["cell_timeout"])
    settings, names = spec["capture_settings"], spec["names"]
    home = Path(in_path).parent
    nb = nbformat.read(in_path, as_version=4)
    os.unlink(in_path)  # the notebook's code sees no copy of its own source (comments, Markdown) on disk
    source = Path(spec["capture"]).read_text(encoding="utf-8")
    key = f"_kit_guard_{secrets.token_hex(8)}"  # unknown to the notebook until the guard has run
    nb.cells = [
        _tagged(guard_source(source, key, settings), GUARD_TAG),
        *nb.cells,
        _tagged(capture_source_with_guard(source, key, settings), CAPTURE_TAG),
    ]
    # The sandbox ends with the run: no need to wait for a graceful kernel exit (TensorFlow takes ~1.4 s)
    executor = BoundedExecute(
        int(spec["max_output_bytes"]),
        {"dir": settings["evidence_dir"], "files": spec["evidence_files"]},
        channel=channel,
        names=names,
        checkpoint={"source": checkpoint_source(key), "prefix": spec["checkpoint"]},
        filesystems=spec.get("filesystems", ()),
        timeout=cell_timeout,
        kernel_name="python3",
        shutdown_kernel="immediate",
    )
    outcome = {"status": "ok", "message": ""}
    start = time.monotonic()
    try:
        executor.preprocess(nb, {"metadata": {"path": str(home)}})
        executor.running = None  # ran to its end
        executor._write_progress()
    except DeadKernelError:
        outcome = {"status": "kernel_died", "message": "the Python kernel died"}
        cell = nb.cells[executor.running] if executor.running is not None else None
        if cell is not None and not executor.too_much:
            _replace_errors(cell, "KernelDied", kernel_died_text(cell_name(cell, executor.running - 1)))
    except DiskFull as exc:
        outcome = {"status": "too_much_disk", "message": str(exc)}
    except CellTimeoutError as exc:  # the kernel did not even answer the interrupt
        outcome = {"status": "timeout", "message": str(exc).splitlines()[0].rstrip(".")[:500]}
        if executor.running in executor.timed_out:
            cell = nb.cells[executor.running]
            _replace_errors(
                cell,
                "CellTimeout",
                timeout_text(cell_name(cell, executor.running - 1), cell_timeout) + IGNORED_INTERRUPT,
            )
    except Exception as exc:  # noqa: BLE001 - reported to the grader as data
        outcome = {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:2000]}
    if executor.too_much:
        outcome = {
            "status": "too_much_output",
            "message": f"the notebook printed more than {HARD_LIMIT_FACTOR * executor.max_output_bytes} bytes",
        }
    elif outcome["status"] == "ok":
        if executor.timed_out:
            outcome["status"] = "cell_timeout"
        if executor.cut_cells:
            outcome["message"] = f"outputs cut after {executor.max_output_bytes} bytes"
    outcome["cell"] = None if executor.running is None else executor.running - 1
    outcome["timed_out"] = [index - 1 for index in executor.timed_out]
    outcome["seconds"] = round(time.monotonic() - start, 3)
    outcome["output_bytes"] = executor.output_bytes
    outcome["capture_errors"] = [f"guard: {e}" for e in _errors(nb, GUARD_TAG)] + _errors(nb, CAPTURE_TAG)
    nb.cells = [c for c in nb.cells if c.metadata.get("tags") not in ([CAPTURE_TAG], [GUARD_TAG])]
    executor.send_evidence(home)
    channel.send(names["executed"], nbformat.writes(nb).encode("utf-8"))
    channel.send(names["report"], json.dumps(outcome).encode("utf-8"))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
