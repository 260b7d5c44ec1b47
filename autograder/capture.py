"""Evidence capture, run as one extra cell at the end of the student's kernel.

The grader appends this file's source as a last cell, after all student code
has run, and removes that cell from the notebook again before anything is
saved. It only *records* data (compiled configuration, history, weights, the
figures plot_history draws for a history the grader chose) into
``evidence/``; the checks that decide the grade run later, in another
process, on that data alone.
"""

import json as _json
import os as _os
import traceback as _traceback


def _kit_capture(namespace, out_dir="evidence"):
    import keras
    import matplotlib
    import matplotlib.pyplot as plt

    _os.makedirs(out_dir, exist_ok=True)
    evidence = {"errors": {}}

    def attempt(part, fn):
        try:
            evidence[part] = fn()
        except BaseException as exc:  # record, never stop: the checks judge absence
            evidence[part] = None
            evidence["errors"][part] = "".join(_traceback.format_exception_only(type(exc), exc)).strip()[:2000]

    def describe(obj):
        if isinstance(obj, str):
            return {"kind": "str", "value": obj}
        entry = {"kind": "object", "class": type(obj).__name__, "module": type(obj).__module__}
        for attr in ("name", "from_logits"):
            if hasattr(obj, attr):
                value = getattr(obj, attr)
                entry[attr] = value if isinstance(value, (str, bool, int, float)) else repr(value)
        if callable(obj) and hasattr(obj, "__name__"):
            entry["function"] = obj.__name__
        return entry

    model = namespace.get("model")

    def compiled():
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` is {type(model).__name__}, not a keras.Model")
        if not getattr(model, "compiled", False):
            return {"compiled": False, "optimizer": None, "loss": None, "metrics": []}
        config = model._compile_config.config if getattr(model, "_compile_config", None) else None
        optimizer = getattr(model, "optimizer", None)
        metrics = list((config or {}).get("metrics") or [])
        return {
            "compiled": bool(getattr(model, "compiled", False)),
            "optimizer": None if optimizer is None else {
                **describe(optimizer),
                "is_adam": type(optimizer) is keras.optimizers.Adam,
                "learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
                "iterations": int(keras.ops.convert_to_numpy(optimizer.iterations)),
                "given": describe(config.get("optimizer")) if config else None,
            },
            "loss": describe(config.get("loss")) if config and config.get("loss") is not None else None,
            "metrics": [describe(m) for m in metrics],
        }

    def history():
        hist = namespace.get("history")
        values = getattr(hist, "history", None)
        params = getattr(hist, "params", None)
        params = params if isinstance(params, dict) else {}
        return {
            "class": f"{type(hist).__module__}.{type(hist).__qualname__}",
            "is_history": isinstance(hist, keras.callbacks.History),
            "is_model_history": hist is not None and getattr(model, "history", None) is hist,
            "epoch": [int(e) for e in getattr(hist, "epoch", [])],
            "history": {str(k): [float(v) for v in vs] for k, vs in values.items()} if isinstance(values, dict) else None,
            "steps_per_epoch": params["steps"] if isinstance(params.get("steps"), int) else None,
        }

    def weights():
        path = _os.path.join(out_dir, "model.weights.h5")
        model.save_weights(path)
        return _os.path.basename(path)

    def plots():
        plot_history = namespace.get("plot_history")
        if not callable(plot_history):
            raise NameError("plot_history is not defined")
        results = {}
        previous_backend = matplotlib.get_backend()
        plt.switch_backend("agg")
        try:
            for metric, values in PLOT_HISTORY.items():
                results[metric] = _plot_once(plot_history, metric, values, keras, plt)
        finally:
            plt.switch_backend(previous_backend)
        return results

    attempt("compile", compiled)
    attempt("history", history)
    attempt("weights", weights)
    attempt("plots", plots)
    with open(_os.path.join(out_dir, "evidence.json"), "w", encoding="utf-8") as f:
        _json.dump(evidence, f)


# A history the grader knows, so that plotted values can be compared exactly.
PLOT_HISTORY = {
    "accuracy": {"accuracy": [0.861, 0.934, 0.957], "val_accuracy": [0.902, 0.941, 0.936]},
    "auc": {"auc": [0.713, 0.958, 0.989], "val_auc": [0.884, 0.973, 0.969]},
    "loss": {"loss": [0.412, 0.187, 0.104], "val_loss": [0.298, 0.161, 0.175]},
}


def _plot_once(plot_history, metric, values, keras, plt):
    """Call plot_history once; describe every figure it drew, even closed ones."""
    def describe_figure(fig):
        axes = []
        for ax in fig.axes:
            legend = ax.get_legend()
            axes.append({
                "xlabel": ax.get_xlabel(),
                "ylabel": ax.get_ylabel(),
                "title": ax.get_title(),
                "legend": [t.get_text() for t in legend.get_texts()] if legend else None,
                "lines": [
                    {"label": str(line.get_label()),
                     "x": [float(v) for v in line.get_xdata()],
                     "y": [float(v) for v in line.get_ydata()]}
                    for line in ax.get_lines()
                ],
            })
        return {"axes": axes}

    seen = {}
    real_close, real_show = plt.close, plt.show

    def snapshot():
        for num in plt.get_fignums():
            seen[num] = describe_figure(plt.figure(num))

    def close(*args, **kwargs):
        snapshot()
        return real_close(*args, **kwargs)

    def show(*args, **kwargs):
        snapshot()

    plt.close("all")
    plt.close, plt.show = close, show
    fake = keras.callbacks.History()
    fake.history = {k: list(v) for k, v in values.items()}
    fake.epoch = list(range(len(next(iter(values.values())))))
    error = None
    try:
        plot_history(fake, metric)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        snapshot()
        plt.close, plt.show = real_close, real_show
        real_close("all")
    return {"error": error, "figures": [seen[k] for k in sorted(seen)]}


if __name__ == "__main__":  # true in the kernel, false when the grader imports this file
    _kit_capture(globals())
