"""The class report: one static HTML file for the instructor.

Built from the per-student summaries the batch leaves in the result store:
score distribution, pass rate per check, spread of the reported and the
re-evaluated validation AUC and of the hidden-test AUC, grading time per
submission, the students who need a look (no or broken submission,
timeouts, crashes (marked when graded on the work recorded before the run
ended), failed honesty check, grader errors), and the groups of
students whose code is identical (graded from one run; a hint, not an
accusation). Figures are
matplotlib PNGs embedded as base64, so the file stands alone.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime
from pathlib import Path

import jinja2

from ..model import PARTIAL_NOTE, UNENFORCED_NOTE, Status, Summary, limits_unenforced
from ..settings import Grading
from .store import ResultStore

TEMPLATES = Path(__file__).with_name("templates")
HONESTY_CHECK = "test_reported_val_auc_is_honest"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def figures(summaries: dict[str, Summary], checks: list[dict], grading: Grading) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    scores = [s.score for s in summaries.values()]
    max_score = max((s.max_score for s in summaries.values()), default=0) or 1

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.hist(scores, bins=min(20, int(max_score) + 1), range=(0, max_score), color="#4c72b0", edgecolor="white")
    ax.set_xlabel("autograded points")
    ax.set_ylabel("students")
    ax.set_title("Score distribution")
    out.append({"title": "Score distribution (autograded points)", "png": _png(fig)})
    plt.close(fig)

    if checks:
        fig, ax = plt.subplots(figsize=(5.5, 0.32 * len(checks) + 1))
        names = [c["name"] for c in checks][::-1]
        rates = [100 * c["rate"] for c in checks][::-1]
        ax.barh(names, rates, color="#55a868")
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of graded submissions passing")
        ax.set_title("Pass rate per check")
        ax.tick_params(axis="y", labelsize=7)
        out.append({"title": "Pass rate per check", "png": _png(fig)})
        plt.close(fig)

    series = {
        label: [s.metrics[key] for s in summaries.values() if key in s.metrics]
        for label, key in (
            ("val reported", "val_auc_reported"),
            ("val (grader)", "val_auc_regraded"),
            ("hidden test", "hidden_auc"),
        )
    }
    if any(series.values()):
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        labels = [k for k, v in series.items() if v]
        ax.boxplot([series[k] for k in labels], showfliers=False)
        for i, label in enumerate(labels, start=1):
            ax.scatter([i] * len(series[label]), series[label], s=12, alpha=0.6, color="#c44e52", zorder=3)
        ax.set_xticks(range(1, len(labels) + 1), labels)
        ax.axhline(
            grading.val_auc_threshold,
            color="#888",
            linestyle="--",
            linewidth=1,
            label=f"val threshold {grading.val_auc_threshold:g}",
        )
        if grading.hidden_auc_threshold != grading.val_auc_threshold:
            ax.axhline(
                grading.hidden_auc_threshold,
                color="#555",
                linestyle=":",
                linewidth=1,
                label=f"hidden threshold {grading.hidden_auc_threshold:g}",
            )
        ax.set_ylabel("AUC")
        ax.set_title("Validation and hidden-test AUC")
        ax.legend(fontsize=7, loc="lower left")
        out.append({"title": "AUC: what students reported, what the grader measured", "png": _png(fig)})
        plt.close(fig)

    timed = sorted((s for s in summaries.items() if s[1].seconds), key=lambda kv: kv[0])
    many = len(timed) > 40
    if many:
        timed.sort(key=lambda kv: kv[1].seconds)
    if timed:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        names = [str(i) for i in range(len(timed))] if many else [k for k, _ in timed]
        run = [v.execute_seconds or 0 for _, v in timed]
        chk = [v.check_seconds or 0 for _, v in timed]
        ax.bar(names, run, label="notebook run (sandbox)", color="#8172b2")
        ax.bar(names, chk, bottom=run, label="hidden checks", color="#ccb974")
        ax.set_ylabel("seconds")
        ax.set_title("Grading time per submission")
        if many:
            ax.set_xticks([])
            ax.set_xlabel(f"{len(timed)} submissions, fastest to slowest")
        else:
            ax.tick_params(axis="x", labelrotation=60, labelsize=7)
        ax.legend(fontsize=7)
        out.append({"title": "Grading time per submission", "png": _png(fig)})
        plt.close(fig)
    return out


def check_table(summaries: dict[str, Summary]) -> list[dict]:
    table: dict[str, dict] = {}
    for summary in summaries.values():
        for check in summary.checks:
            row = table.setdefault(
                check.id,
                {
                    "id": check.id,
                    "name": check.name,
                    "cell": check.cell,
                    "points": check.points,
                    "passed": 0,
                    "total": 0,
                },
            )
            row["total"] += 1
            row["passed"] += bool(check.passed)
    for row in table.values():
        row["rate"] = row["passed"] / row["total"] if row["total"] else 0.0
    return list(table.values())


def attention(summaries: dict[str, Summary]) -> list[dict]:
    rows = []
    for student, s in sorted(summaries.items()):
        if s.status != Status.OK:
            reason = f"{s.status.instructor}, {PARTIAL_NOTE}" if s.partial else s.status.instructor
            rows.append({"student": student, "reason": reason, "detail": (s.message or "")[:300]})
        if limits_unenforced(s.sandboxed, s.limits_by):
            rows.append(
                {
                    "student": student,
                    "reason": UNENFORCED_NOTE,
                    "detail": "memory and processes were only watched; grade with cgroup rights",
                }
            )
        crashed = [f"{e['cell']}: {e['ename']}" for e in s.cell_errors if not e["test"]]
        if crashed:
            rows.append({"student": student, "reason": "errors while running", "detail": "; ".join(crashed)})
        for check in s.checks:
            if check.id == HONESTY_CHECK and not check.passed and "honesty_gap" in s.metrics:
                rows.append({"student": student, "reason": "honesty check failed", "detail": check.message})
            if check.detail:
                rows.append({"student": student, "reason": f"grader error in {check.id}", "detail": check.detail})
        for note in s.notes:
            rows.append({"student": student, "reason": "note", "detail": note})
    return rows


def identical_groups(summaries: dict[str, Summary]) -> list[dict]:
    """Groups of two or more graded students who ran identical code (``Summary.code_group``)."""
    groups: dict[str, list[str]] = {}
    for student, s in sorted(summaries.items()):
        if s.graded and s.code_group:
            groups.setdefault(s.code_group, []).append(student)
    out = []
    for group, students in groups.items():
        if len(students) < 2:
            continue
        ran = {summaries[s].reused_from or s for s in students}
        out.append(
            {
                "group": group[:8],
                "students": students,
                "ran": ", ".join(sorted(ran)),
                "score": summaries[students[0]].score,
            }
        )
    return sorted(out, key=lambda g: (-len(g["students"]), g["students"]))


def _fmt(value, digits=4):
    if value is None or isinstance(value, jinja2.Undefined):
        return ""
    return f"{value:.{digits}f}"


def render(course_id: str, assignment: str, summaries: dict[str, Summary], grading: Grading) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["fmt"] = _fmt
    checks = check_table(summaries)
    graded = [s for s in summaries.values() if s.graded]
    return env.get_template("report.html.j2").render(
        assignment=assignment,
        course_id=course_id,
        generated=datetime.now().strftime("%Y-%m-%d %H:%M"),
        n_students=len(summaries),
        n_graded=len(graded),
        mean_score=sum(s.score for s in summaries.values()) / max(1, len(summaries)),
        max_score=max((s.max_score for s in summaries.values()), default=0),
        figures=figures(summaries, checks, grading),
        checks=checks,
        attention=attention(summaries),
        identical=identical_groups(summaries),
        partial_note=PARTIAL_NOTE,
        students=[{"student": k, **v.to_dict()} for k, v in sorted(summaries.items())],
    )


def write_report(course, dest: Path | None = None) -> Path:
    from .exports import Exports

    summaries = ResultStore(course.root).summaries(course.assignment)
    dest = dest or course.root / Exports(config=course.config).directory / "report.html"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(
        render(course.coursedir.course_id, course.assignment, summaries, Grading(config=course.config)),
        encoding="utf-8",
    )
    return dest
