"""The demo: a course root (made if the folder is empty), released, example submissions graded, exported, reported.

``./kit.sh demo`` runs it through ``spamkit demo``. The example submissions
(``examples.py``) are the reference solution, typical mistakes, a corrupt
upload and a student on the roster who never submitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from traitlets.config import Config

from ..errors import KitError
from . import examples
from .batch import BatchGrader
from .course import Course, open_course
from .exports import export_all
from .gradebook import Row
from .progress import Progress
from .report import write_report

ABSENT = "demo-absent"


def demo_students() -> list[str]:
    return [f"demo-{name}" for name in (*examples.VARIANTS, "corrupt", "absent")]


@dataclass
class Demo:
    course: Course
    made_root: bool = False
    released: bool = False
    submitted: list[str] = field(default_factory=list)  # example submissions written now
    rows: list[Row] = field(default_factory=list)
    exports: dict[str, Path] = field(default_factory=dict)
    report: Path | None = None


def run_demo(
    root, overrides: Config | None = None, force: bool = False, workers: int = 0, progress: Progress | None = None
) -> Demo:
    """Everything the demo does, in ``root``; ``force`` remakes the examples and grades them again."""
    root = Path(root).resolve()
    demo = Demo(course=None, made_root=not (root / "course_config.py").is_file())
    course = demo.course = open_course(root, overrides, create=True)
    release_nb = course.folder("release") / f"{course.notebook}.ipynb"
    if force or not release_nb.is_file() or not course.is_released():
        outcome = course.release(force=True)
        if not outcome["success"]:
            raise KitError(f"nbgrader generate_assignment failed:\n{outcome.get('log', '')}{outcome.get('error', '')}")
        demo.released = True
    source_nb = course.folder("source") / f"{course.notebook}.ipynb"
    for name, data in examples.example_submissions(release_nb, source_nb).items():
        target = course.folder("submitted", f"demo-{name}") / f"{course.notebook}.ipynb"
        if target.exists() and not force:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        demo.submitted.append(f"demo-{name}")
    with course.gradebook() as gb:
        gb.update_or_create_student(ABSENT)  # on the roster, never submitted
    demo.rows = BatchGrader(course, progress).grade(students=demo_students(), force=force, n_workers=workers)
    demo.exports = export_all(course)
    demo.report = write_report(course)
    return demo
