"""nbgrader's gradebook steps of autograde, run in one open gradebook session for a whole batch.

nbgrader's autograde of one student opens the gradebook eleven times (each
``Gradebook(db_url)`` is a new SQLAlchemy engine: a connection, the table
check, the course row, and every query compiled anew) and commits about
twenty times (one per graded or answered cell, measured on the lab). For a batch of a class that was most of the
client's time per student. Here the same nbgrader code runs on one
``SessionGradebook``: nbgrader's ``Gradebook`` on one connection, whose
``commit()`` calls (nbgrader's own, after each cell) release a savepoint
inside a transaction that the batch commits every few students
(``BatchClient``).

The nbgrader preprocessors that open a gradebook of their own take the open
one from the notebook's resources (``resources["kit"]["gradebook"]``) when a
batch hands one, and otherwise open their own as nbgrader does:

- ``OverwriteCellsInSession`` and ``SaveAutoGradesInSession`` run nbgrader's
  own per-cell steps (``preprocess_cell``) on it, with the attributes those
  steps read (``gradebook``, ``notebook_id``, ``assignment_id``,
  ``student_id``) set as nbgrader's ``preprocess`` sets them;
- ``OverwriteKernelspecInSession`` looks the source notebook's kernelspec up
  once per session instead of once per notebook;
- ``AssignLatePenaltiesInSession`` resets the penalty of a submission that is
  not late, as nbgrader does; a late one is marked (``resources["kit"]["late"]``)
  and the writer runs nbgrader's unchanged ``AssignLatePenalties`` for it once
  its grades are committed (the penalty is a share of the committed score).

``in_session`` swaps these in for nbgrader's classes in a configured
preprocessor list; every other entry (the kit's, nbgrader's, the course's
own) stays as configured. The tests compare what both paths write, row by row.
"""

from __future__ import annotations

import contextlib
import json

from nbgrader.api import Gradebook
from nbgrader.preprocessors import (
    AssignLatePenalties,
    NbGraderPreprocessor,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from sqlalchemy import event
from sqlalchemy.orm import scoped_session, sessionmaker
from traitlets.utils.importstring import import_item

from .autograde import KIT


class SessionGradebook(Gradebook):
    """nbgrader's Gradebook on one connection, in a transaction the owner commits (``commit``).

    Every ``self.db.commit()`` of nbgrader's code releases a savepoint of that
    transaction (SQLAlchemy's ``join_transaction_mode="create_savepoint"``);
    ``student()`` wraps one student's writes in a savepoint of their own, so
    a failure undoes that student only. On SQLite the driver's own
    transaction handling is turned off for this connection (SQLAlchemy's
    documented recipe for savepoints with pysqlite), so that the savepoints
    and the one transaction are real.
    """

    def __init__(self, db_url: str, course_id: str = "default_course"):
        super().__init__(db_url, course_id)
        self.db.remove()
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_no_implicit_transactions)
            event.listen(self.engine, "begin", _sqlite_begin)
            self.engine.dispose()  # the connection nbgrader's set-up used was made without them
        self.connection = self.engine.connect()
        self._transaction = self.connection.begin()
        # Only this session writes the rows it reads while it is open (the batch holds the course's lock), so
        # what it loaded stays valid after each of nbgrader's commits: no reload per cell.
        self.db = scoped_session(
            sessionmaker(
                bind=self.connection, autoflush=True, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
        )
        self._source: dict = {}

    # The assignment's source (cells, points, kernelspec) is fixed once submissions exist (nbgrader refuses to
    # add or remove graded cells then): a batch looks each up once, not once per student.
    def find_source_cell(self, name: str, notebook: str, assignment: str):
        return self._once(("source", name, notebook, assignment), super().find_source_cell, name, notebook, assignment)

    def find_graded_cell(self, name: str, notebook: str, assignment: str):
        return self._once(("graded", name, notebook, assignment), super().find_graded_cell, name, notebook, assignment)

    def kernelspec(self, notebook: str, assignment: str) -> str | None:
        """The source notebook's kernelspec (JSON text) as the gradebook holds it."""
        return self._once(
            ("kernelspec", notebook, assignment), lambda: self.find_notebook(notebook, assignment).kernelspec
        )

    def _once(self, key, find, *args):
        if key not in self._source:
            self._source[key] = find(*args)  # a MissingEntry is not kept: asked again, it is raised again
        return self._source[key]

    @contextlib.contextmanager
    def student(self):
        """One student's writes: all of them, or (on an exception) none."""
        self.db.commit()  # the session's own savepoint (reads since) ends first: the student's holds the next
        savepoint = self.connection.begin_nested()
        try:
            yield self
            self.db.commit()
        except BaseException:
            self.db.rollback()
            savepoint.rollback()
            self.db.expire_all()
            raise
        savepoint.commit()

    def commit(self) -> None:
        """Commit everything written since the last commit, and go on in a new transaction."""
        self.db.commit()
        self._transaction.commit()
        self._transaction = self.connection.begin()

    def close(self) -> None:
        """Close without committing: what was not committed is rolled back."""
        self.db.remove()
        with contextlib.suppress(Exception):
            self._transaction.rollback()
        self.connection.close()
        self.engine.dispose()


def _sqlite_no_implicit_transactions(dbapi_connection, connection_record) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN")


def _session(resources) -> SessionGradebook | None:
    return resources.get(KIT, {}).get("gradebook")


def _ids(pp, resources) -> None:
    info = resources["nbgrader"]
    pp.notebook_id, pp.assignment_id, pp.db_url = info["notebook"], info["assignment"], info["db_url"]
    pp.student_id = info.get("student")


class OverwriteCellsInSession(OverwriteCells):
    """nbgrader's OverwriteCells, on the batch's open gradebook when it hands one."""

    def preprocess(self, nb, resources):
        gradebook = _session(resources)
        if gradebook is None:
            return super().preprocess(nb, resources)
        _ids(self, resources)
        self.gradebook = gradebook
        nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
        if self.add_missing_cells:
            nb, resources = self.add_missing_grade_cells(nb, resources)
            nb, resources = self.add_missing_task_cells(nb, resources)
        return nb, resources


class OverwriteKernelspecInSession(OverwriteKernelspec):
    """nbgrader's OverwriteKernelspec, with the source kernelspec looked up once per batch."""

    def preprocess(self, nb, resources):
        gradebook = _session(resources)
        if gradebook is None:
            return super().preprocess(nb, resources)
        info = resources["nbgrader"]
        kernelspec = gradebook.kernelspec(info["notebook"], info["assignment"])
        if kernelspec is not None and json.loads(kernelspec):
            nb.metadata["kernelspec"] = json.loads(kernelspec)
        return nb, resources


class SaveAutoGradesInSession(SaveAutoGrades):
    """nbgrader's SaveAutoGrades, into the batch's open gradebook when it hands one."""

    def preprocess(self, nb, resources):
        gradebook = _session(resources)
        if gradebook is None:
            return super().preprocess(nb, resources)
        _ids(self, resources)
        self.gradebook = gradebook
        return NbGraderPreprocessor.preprocess(self, nb, resources)


class AssignLatePenaltiesInSession(AssignLatePenalties):
    """nbgrader's AssignLatePenalties in a session: a submission that is not late gets no penalty (nbgrader resets
    it); a late one is marked for nbgrader's own AssignLatePenalties after the session's commit."""

    def preprocess(self, nb, resources):
        gradebook = _session(resources)
        if gradebook is None:
            return super().preprocess(nb, resources)
        info = resources["nbgrader"]
        notebook = gradebook.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
        notebook.late_submission_penalty = None
        if gradebook.find_submission(info["assignment"], info["student"]).total_seconds_late > 0:
            resources[KIT]["late"] = True
        return nb, resources


IN_SESSION = {
    OverwriteCells: OverwriteCellsInSession,
    OverwriteKernelspec: OverwriteKernelspecInSession,
    SaveAutoGrades: SaveAutoGradesInSession,
    AssignLatePenalties: AssignLatePenaltiesInSession,
}


def in_session(preprocessors: list) -> list:
    """A configured preprocessor list with nbgrader's gradebook steps swapped for their session versions."""
    out = []
    for pp in preprocessors:
        cls = import_item(pp) if isinstance(pp, str) else pp
        out.append(IN_SESSION.get(cls, pp) if isinstance(cls, type) else pp)
    return out
