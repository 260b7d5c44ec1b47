"""Exercise 3: plot_history draws labelled train and validation curves.

The grader calls the student's plot_history with a history of its own (three
epochs of known values) for each metric, as the notebook's loop does in
Jupyter (capture.py's ``_plot_calls``), and inspects the figures.

The checks judge what a reader of the plot sees, not how it was made:
``fig, ax = plt.subplots()``, pyplot state (``plt.plot``) or pandas
(``DataFrame.plot``); x values from 0 or from 1, or none; a curve named by
``label=`` or only in ``ax.legend([...])``, ``train_auc`` or
``Training AUC``; the axis labels by the words they use ("Epochs",
"Training epoch"). A curve's name must say which split and which metric it
shows, and the names must sit on the right curves.
"""

import re

import pytest

CELL = "test_plot"
METRICS = ("accuracy", "auc", "loss")

# Words that name each metric (in an axis label or a curve's name), and phrases of several words.
METRIC_WORDS = {"accuracy": {"accuracy", "acc"}, "auc": {"auc", "auroc"}, "loss": {"loss", "crossentropy", "bce"}}
METRIC_PHRASES = {"accuracy": (), "auc": ("area under",), "loss": ("cross entropy",)}
VALIDATION_WORDS = {"val", "validation", "valid"}
TRAINING_WORDS = {"train", "training"}
_EPOCH = re.compile(r"(?<![a-z])epochs?(?![a-z])", re.IGNORECASE)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def names_metric(text: str, metric: str) -> bool:
    """``text`` names ``metric``: "AUC", "val_auc", "Accuracy (%)", "Binary cross-entropy" (the loss)."""
    words = _words(text)
    joined = " ".join(words)
    return bool(set(words) & METRIC_WORDS[metric]) or any(p in joined for p in METRIC_PHRASES[metric])


def names_epochs(text: str) -> bool:
    """An x label that names epochs: "Epoch", "epochs", "Epoch #", "Training epoch", "num_epochs"."""
    return bool(_EPOCH.search(text))


def split_named(name: str, metric: str) -> str | None:
    """ "train" or "val" when a curve's name says which split of ``metric`` it shows, else None.

    A name with the metric alone ("auc", as pandas labels the history's columns) is Keras' own name
    for the training series.
    """
    if not names_metric(name, metric):
        return None
    words = set(_words(name))
    validation, training = bool(words & VALIDATION_WORDS), bool(words & TRAINING_WORDS)
    if validation != training:
        return "val" if validation else "train"
    if not validation and words <= METRIC_WORDS[metric]:
        return "train"
    return None


def curve_name(line: dict) -> str:
    """What a reader sees as the curve's name: its legend entry, else its label ("_child0" is no name)."""
    if line.get("legend") is not None:
        return line["legend"]
    return "" if line["label"].startswith("_") else line["label"]


def _call(evidence, metric):
    plots = evidence.get("plots")
    assert plots is not None, f"plot_history could not be called: {evidence['errors'].get('plots', 'not defined')}"
    call = plots.get(metric)
    assert call is not None, f"plot_history(history, {metric!r}) was not recorded"
    assert call["error"] is None, f"plot_history(history, {metric!r}) raised {call['error']}"
    return call


def _figure(evidence, metric):
    """The (last) figure the call drew curves in."""
    drawn = [fig for fig in _call(evidence, metric)["figures"] if any(ax["lines"] for ax in fig["axes"])]
    assert drawn, f"plot_history(history, {metric!r}) drew no curves: draw each one with ax.plot(...)"
    return drawn[-1]


def _lines(figure):
    return [line for ax in figure["axes"] for line in ax["lines"]]


def _shows(line, values) -> bool:
    return line["y"] == pytest.approx(values)


@pytest.mark.check(cell=CELL, points=1, name="Works for accuracy, auc and loss")
def test_all_metrics(evidence):
    for metric in METRICS:
        drawn = [line for fig in _call(evidence, metric)["figures"] for ax in fig["axes"] for line in ax["lines"]]
        assert drawn, f"plot_history(history, {metric!r}) ran but drew no lines: draw each curve with ax.plot(...)"


@pytest.mark.check(cell=CELL, points=1, name="One new figure per call")
def test_one_figure_per_call(evidence):
    """Figures without axes (``plt.figure()`` before pandas' ``.plot()``) show nothing in Jupyter: not counted."""
    for metric in METRICS:
        figures = [fig for fig in _call(evidence, metric)["figures"] if fig["axes"]]
        assert not any(fig.get("reused") for fig in figures), (
            f"plot_history(history, {metric!r}) drew into the figure the previous call left open, so in the "
            "notebook the plots end up in one figure: start each plot with fig, ax = plt.subplots() "
            "(or end it with plt.show())"
        )
        assert len(figures) == 1, (
            f"plot_history(history, {metric!r}) made {len(figures)} figures with axes; draw both curves in one "
            "figure: fig, ax = plt.subplots(), then plot on ax (with pandas: .plot(ax=ax))"
        )


@pytest.mark.check(cell=CELL, points=1, name="Lines labelled train_<metric> and val_<metric>")
def test_line_labels(evidence, context):
    """Each curve is named (label= or the legend) for its split and metric; names on swapped curves fail."""
    for metric in METRICS:
        lines = _lines(_figure(evidence, metric))
        names = [curve_name(line) for line in lines]
        splits = [split_named(name, metric) for name in names]
        expected = f"name the training curve train_{metric} and the validation curve val_{metric}"
        if "val" not in splits and any("test" in _words(name) for name in names):
            expected += " (the validation data is not the test set)"
        assert "train" in splits and "val" in splits, (
            f"for {metric!r} the curves are named {names}; {expected}, with label= or in the legend"
        )
        values = context["plot_history"][metric]
        train, val = values[metric], values[f"val_{metric}"]
        if any(_shows(line, train) for line in lines) and any(_shows(line, val) for line in lines):
            for line, name, split in zip(lines, names, splits):
                shown = "train" if _shows(line, train) else "val" if _shows(line, val) else None
                assert split is None or shown is None or split == shown, (
                    f"for {metric!r} the curve named {name!r} shows history.history"
                    f"[{metric if shown == 'train' else 'val_' + metric!r}]: the names of the curves are swapped"
                )


@pytest.mark.check(cell=CELL, points=2, name="Curves show the history's values")
def test_data_matches_history(evidence, context):
    """Judged on the drawn values alone: wrong labels lose the label check only. x values are not judged
    (from 0, from 1, history.epoch or none all draw the same curve)."""
    for metric in METRICS:
        drawn = _lines(_figure(evidence, metric))
        for key in (metric, f"val_{metric}"):
            expected = context["plot_history"][metric][key]
            assert any(_shows(line, expected) for line in drawn), (
                f"no line shows history.history[{key!r}] ({expected}); the lines show {[line['y'] for line in drawn]}"
            )


@pytest.mark.check(cell=CELL, points=1, name="Axis labels and legend")
def test_labels_and_legend(evidence):
    for metric in METRICS:
        figure = _figure(evidence, metric)
        axes = figure["axes"]
        xlabels = [ax["xlabel"] for ax in axes if ax["lines"]]
        assert any(names_epochs(label) for label in xlabels), (
            f'the x axis is labelled {" / ".join(map(repr, xlabels))}; label it "Epoch": ax.set_xlabel("Epoch")'
        )
        ylabels = [ax["ylabel"] for ax in axes if ax["lines"]]
        titled = [ax.get("title", "") for ax in axes if names_metric(ax.get("title", ""), metric)]
        assert any(names_metric(label, metric) for label in ylabels), (
            f"the y axis of the {metric} plot is labelled {' / '.join(map(repr, ylabels))}; label it with the "
            f"metric's name: ax.set_ylabel(metric)" + (" (a title does not label the axis)" if titled else "")
        )
        assert any(ax["legend"] for ax in axes) or figure.get("legend"), (
            f"the {metric} plot has no legend: call ax.legend()"
        )
