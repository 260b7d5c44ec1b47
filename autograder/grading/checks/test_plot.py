"""Exercise 3: plot_history draws labelled train and validation curves.

The grader calls the student's plot_history with a history of its own (three
epochs of known values) for each metric, and inspects the figures.
"""

import pytest

CELL = "test_plot"
METRICS = ("accuracy", "auc", "loss")


def _call(evidence, metric):
    plots = evidence.get("plots")
    assert plots is not None, f"plot_history could not be called: {evidence['errors'].get('plots', 'not defined')}"
    call = plots.get(metric)
    assert call is not None, f"plot_history(history, {metric!r}) was not recorded"
    assert call["error"] is None, f"plot_history(history, {metric!r}) raised {call['error']}"
    return call


def _axes(evidence, metric):
    figures = _call(evidence, metric)["figures"]
    assert figures and figures[-1]["axes"], f"plot_history(history, {metric!r}) drew no axes"
    return figures[-1]["axes"][0]


def _lines(evidence, metric):
    return {line["label"]: line for line in _axes(evidence, metric)["lines"]}


@pytest.mark.check(cell=CELL, points=1, name="Works for accuracy, auc and loss")
def test_all_metrics(evidence):
    for metric in METRICS:
        drawn = [line for fig in _call(evidence, metric)["figures"] for ax in fig["axes"] for line in ax["lines"]]
        assert drawn, f"plot_history(history, {metric!r}) ran but drew no lines"


@pytest.mark.check(cell=CELL, points=1, name="One new figure per call")
def test_one_figure_per_call(evidence):
    for metric in METRICS:
        count = len(_call(evidence, metric)["figures"])
        assert count == 1, f"plot_history(history, {metric!r}) made {count} figures; make exactly one (plt.subplots())"


@pytest.mark.check(cell=CELL, points=1, name="Lines labelled train_<metric> and val_<metric>")
def test_line_labels(evidence):
    for metric in METRICS:
        labels = set(_lines(evidence, metric))
        expected = {f"train_{metric}", f"val_{metric}"}
        assert expected <= labels, f"for {metric!r} the lines are labelled {sorted(labels)}; expected {sorted(expected)}"


@pytest.mark.check(cell=CELL, points=2, name="Curves show the history's values")
def test_data_matches_history(evidence, context):
    """Judged on the drawn values alone: wrong labels lose the label check only."""
    for metric in METRICS:
        drawn = _axes(evidence, metric)["lines"]
        for key in (metric, f"val_{metric}"):
            expected = context["plot_history"][metric][key]
            assert any(line["y"] == pytest.approx(expected) for line in drawn), (
                f"no line shows history.history[{key!r}] ({expected}); the lines show "
                f"{[line['y'] for line in drawn]}"
            )


@pytest.mark.check(cell=CELL, points=1, name="Axis labels and legend")
def test_labels_and_legend(evidence):
    for metric in METRICS:
        ax = _axes(evidence, metric)
        assert ax["xlabel"].strip().lower() == "epoch", f"the x axis is labelled {ax['xlabel']!r}; use \"Epoch\""
        assert metric.lower() in ax["ylabel"].lower(), f"the y axis is labelled {ax['ylabel']!r}; use the metric's name"
        assert ax["legend"], f"the {metric} plot has no legend: call ax.legend()"
