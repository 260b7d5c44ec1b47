"""Evidence capture in the student's kernel: a guard cell first, a capture cell last.

The runner (``runner.py``) runs this file's source twice in the student's
kernel, in two cells it adds and removes again before anything is saved:

* the **guard cell**, before the student's first cell (run without entering
  the kernel's history, so the student's cells keep their numbers 1, 2, ...).
  It executes this source in a private namespace whose builtins are a copy
  taken at that moment, imports Keras, keeps the genuine classes the checks
  care about (``keras.src.optimizers.adam.Adam``, the binary cross-entropy
  loss, the AUC and accuracy metrics, ``History``, ``Model``) and the genuine
  tools the capture needs (``type``, ``isinstance``, ``open``, a JSON
  encoder, ``os.makedirs``, ``Model.save_weights``, the evidence folder's
  absolute path), and wraps ``Model.compile`` and ``Model.fit``. Each call is
  recorded when it returns: for compile, what was passed (optimizer, loss,
  metrics, each described with its fully qualified class name and whether it
  *is* the genuine Keras object) and the optimizer Keras built from it (class,
  learning rate); for fit, the History it returned, the epochs and the
  batches per epoch. The guard publishes its capture entry in the student's
  namespace under a name holding a random token of this run, and beside it
  (that name + ``_checkpoint``) its checkpoint entry.
* a **checkpoint** after each of the student's code cells: the runner calls
  the checkpoint entry in a hidden cell. It writes into the evidence folder,
  in the final capture's schema, what the guard has *recorded* so far: the
  compile of ``model`` once recorded, ``history`` once it is the History of a
  recorded fit of ``model``, the weights once such a fit was recorded, the
  plots once ``plot_history`` is defined; every other part is None with the
  error "not recorded before the run ended", and ``checkpoint`` is true. It
  writes nothing when nothing it tracks changed since its last call (the
  model, its compile record and calls, its fits, ``history``,
  ``plot_history``); it saves the weights only after a new fit and calls
  plot_history only when it is a new function. Files are written under a
  temporary name and renamed, weights first. It never prints and never
  raises. The runner moves the files out after each call, so that a run a
  limit or a dead kernel ends is graded on the work recorded before
  (``grading/evidence.py``).
* the **capture cell**, after the student's last cell. It calls the guard's
  entry, which reads ``model`` and ``history`` and writes the evidence folder
  (evidence.json and model.weights.h5; folder and names come with the
  settings the runner passes in) using only the references and records kept
  by the guard. When the guard recorded no compile (or no fit) for
  ``model``, that part falls back to reading the model's state as it is at the
  end (``model.optimizer``, the compile arguments the model keeps, through
  the Keras fence, and ``model.history``), still judged with the guard's
  genuine classes, and the evidence says so (``recorded: false``). When the
  guard's entry is gone altogether (the notebook deleted it, or ran
  ``%reset``, which empties the namespace), the capture cell takes its
  references from the modules as they are then and reads the model's state
  the same way (``guard: false``). A model that was never compiled fails
  every compile check with one clear message.

It only *records* data; the checks that decide the grade run later, in
another process, on that data alone.

What the guard defends against: rebinding names in Keras modules or builtins
after it ran (``keras.optimizers.Adam = keras.optimizers.SGD``,
``builtins.isinstance = ...``, ``json.dump = ...``), editing the compile
arguments the model keeps or ``model.optimizer`` after compiling, classes that
merely *call themselves* ``keras.src.optimizers.adam.Adam`` or
``BinaryCrossentropy`` (the checks require the fully qualified name *and*
identity with the class the guard kept), a hand-made History or one whose
``params`` were edited, and changing the working directory so that the
evidence is written elsewhere.

What it cannot defend against: everything runs in the student's process, so
a student who deliberately digs out the guard (its entry in the namespace,
the closures of the wrapped methods, the records) can replace or edit it and
forge the records; patching Keras internals the guard does not keep (e.g.
the lookup that turns the string ``"binary_crossentropy"`` into a loss, or an
optimizer's ``learning_rate`` property) is not seen either. That is why the
decisive numbers, the AUC on the validation and hidden test data, are not
taken from the kernel at all: the grader rebuilds the model outside the
sandbox and re-evaluates the saved weights itself (``reevaluate.py``), and
only checks worth a few points rest on what the kernel records.
"""

import json as _json
import os as _os
import traceback as _traceback

# The runner passes the settings in (``KIT_SETTINGS`` for the guard cell, ``_KIT_SETTINGS`` for the capture
# cell): evidence_dir, evidence_file, weights_file, and plot_history, the history the grader knows, so that
# plotted values can be compared exactly.

# The private names of Keras and matplotlib this file relies on live in the kit's fences
# (``autograder/internals/keras.py``, ``matplotlib.py``): self-contained files that the runner copies into the
# sandbox and names to the guard cell (``KIT_INTERNALS``: library -> path), loaded here with this namespace's
# builtins. Imported as a module (tests), this file finds them in the kit's package.
CAPTURE_INTERNALS = ("keras", "matplotlib")


def _load_internals(paths=None) -> dict:
    """The fences this file uses, as modules by library."""
    import types

    if paths is None:
        folder = _os.path.join(
            _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))), "internals"
        )
        paths = {library: _os.path.join(folder, library + ".py") for library in CAPTURE_INTERNALS}
    modules = {}
    for library in CAPTURE_INTERNALS:
        module = types.ModuleType("spamkit_internals_" + library)
        module.__dict__["__builtins__"] = __builtins__
        with open(paths[library], encoding="utf-8") as f:
            exec(compile(f.read(), paths[library], "exec"), module.__dict__)
        modules[library] = module
    return modules


def _qualified(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


class _Refs:
    """Genuine references: taken by the guard at the start, or at the end when the guard is gone.
    ``internals``: the fence files by library (default: the kit's own, see ``_load_internals``)."""

    def __init__(self, out_dir, internals=None):
        import types

        import keras

        self.keras = keras
        fences = _load_internals(internals)
        self.keras_internals, self.matplotlib_internals = fences["keras"], fences["matplotlib"]
        self.genuine = {}
        for obj in self.keras_internals.genuine_objects():
            self.genuine[_qualified(obj)] = obj
        by_name = {path.rsplit(".", 1)[1]: obj for path, obj in self.genuine.items()}
        self.Model, self.History, self.Adam = by_name["Model"], by_name["History"], by_name["Adam"]
        self.function_types = (types.FunctionType, types.BuiltinFunctionType)
        self.to_numpy = keras.ops.convert_to_numpy
        self.save_weights = self.Model.save_weights
        self.encode = _json.JSONEncoder().encode
        self.makedirs, self.join, self.basename = _os.makedirs, _os.path.join, _os.path.basename
        self.replace = _os.replace
        self.out_dir = _os.path.abspath(out_dir)
        import io
        import sys

        self.sys, self.StringIO = sys, io.StringIO

    def describe(self, obj):
        """A passed optimizer / loss / metric: its name, class and whether it is the genuine Keras object."""
        if isinstance(obj, str):
            return {"kind": "str", "value": obj}
        cls = type(obj)
        target = obj if isinstance(obj, self.function_types) else cls
        path = _qualified(target)
        entry = {
            "kind": "object",
            "class": str(getattr(cls, "__name__", "?")),
            "module": str(cls.__module__),
            "path": path,
            "verified": self.genuine.get(path) is target,
        }
        for attr in ("name", "from_logits", "curve"):
            if hasattr(obj, attr):
                value = getattr(obj, attr)
                value = getattr(value, "value", value) if attr == "curve" else value  # AUCCurve.ROC -> "ROC"
                entry[attr] = value if isinstance(value, (str, bool, int, float)) else repr(value)
        if callable(obj) and hasattr(obj, "__name__"):
            entry["function"] = str(obj.__name__)
        return entry

    def compile_evidence(self, optimizer, config):
        """What compile was given (``config``) and the optimizer it built."""
        metrics = _flattened(config.get("metrics"))[:100]
        losses = _flattened(config.get("loss"))
        given = config.get("optimizer")
        return {
            "compiled": True,
            "optimizer": None
            if optimizer is None
            else {
                **self.describe(optimizer),
                "is_adam": type(optimizer) is self.Adam,
                "learning_rate": float(self.to_numpy(optimizer.learning_rate)),
                "given": None if given is None else self.describe(given),
            },
            "loss": self.describe(losses[0] if len(losses) == 1 else config["loss"]) if losses else None,
            "metrics": [self.describe(m) for m in metrics],
        }


def _flattened(value) -> list:
    """Compile's metrics (or loss) as a flat list: Keras also takes them nested, or as a dict per output."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, (list, tuple)):
        return [value]
    return [item for part in value for item in _flattened(part)]


class _Records:
    """What the wrapped Model.compile / Model.fit saw, per model object (compared by identity)."""

    def __init__(self):
        self.compiles = []  # [model, optimizer, evidence, calls]: the last compile of each model
        self.fits = []  # [model, history, {"epochs", "epochs_run", "steps"}]: every fit

    def compiled(self, model):
        return next((r for r in self.compiles if r[0] is model), None)

    def fitted(self, model):
        return [r for r in self.fits if r[0] is model]


def _install_guard(namespace, key, settings, internals=None):
    """The guard cell: keep genuine references, wrap compile and fit, publish the capture entry."""
    import functools
    import inspect

    refs = _Refs(settings["evidence_dir"], internals)
    records = _Records()
    model_class = refs.Model
    genuine_compile, genuine_fit = model_class.compile, model_class.fit
    compile_signature, fit_signature = inspect.signature(genuine_compile), inspect.signature(genuine_fit)

    @functools.wraps(genuine_compile)
    def compile(self, *args, **kwargs):
        result = genuine_compile(self, *args, **kwargs)
        try:
            bound = compile_signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            optimizer = getattr(self, "optimizer", None)
            evidence = refs.compile_evidence(optimizer, dict(bound.arguments))
            previous = records.compiled(self)
            if previous is not None:
                records.compiles.remove(previous)
            records.compiles.append([self, optimizer, evidence, 1 + (previous[3] if previous else 0)])
        except Exception as exc:  # noqa: BLE001 - never break the student's compile; the capture reports it
            records.compiles.append([self, None, {"compiled": True, "error": _error_text(exc)}, 1])
        return result

    @functools.wraps(genuine_fit)
    def fit(self, *args, **kwargs):
        history = genuine_fit(self, *args, **kwargs)
        try:
            bound = fit_signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            params = getattr(history, "params", None)
            steps = params.get("steps") if isinstance(params, dict) else None
            epochs = bound.arguments.get("epochs")
            records.fits.append(
                [
                    self,
                    history,
                    {
                        "epochs": epochs if isinstance(epochs, int) else None,
                        "epochs_run": len(getattr(history, "epoch", []) or []),
                        "steps": steps if isinstance(steps, int) else None,
                    },
                ]
            )
        except Exception:  # noqa: BLE001 - an unreadable fit is simply not recorded
            pass
        return history

    model_class.compile, model_class.fit = compile, fit
    namespace[key] = functools.partial(_kit_capture, namespace, refs, records, settings)
    namespace[key + "_checkpoint"] = _Checkpoint(namespace, refs, records, settings)


def _error_text(exc) -> str:
    return "".join(_traceback.format_exception_only(type(exc), exc)).strip()[:2000]


class _Parts:
    """The four parts of the evidence, each read from ``namespace`` with the guard's references and records
    (``records`` is None when the guard is gone)."""

    def __init__(self, namespace, refs, records, settings):
        self.namespace, self.refs, self.records, self.settings = namespace, refs, records, settings
        self.model = namespace.get("model")

    def compiled(self):
        model, refs, records = self.model, self.refs, self.records
        if not isinstance(model, refs.Model):
            raise TypeError(f"`model` is {type(model).__name__}, not a keras.Model")
        record = records.compiled(model) if records is not None else None
        if record is not None:
            _, optimizer, result, calls = record
            if "error" in result:
                raise RuntimeError(f"the guard could not read model.compile's arguments: {result['error']}")
            result = {**result, "recorded": True, "compile_calls": calls}
        elif not getattr(model, "compiled", False):
            return {"compiled": False, "recorded": False, "optimizer": None, "loss": None, "metrics": []}
        else:  # compiled without the guard seeing it: what the model keeps of its compile arguments
            config = refs.keras_internals.compile_arguments(model)
            optimizer = getattr(model, "optimizer", None)
            result = {**refs.compile_evidence(optimizer, config), "recorded": False, "compile_calls": 0}
        if optimizer is not None:
            result["optimizer"] = {**result["optimizer"], "iterations": int(refs.to_numpy(optimizer.iterations))}
        return result

    def history(self):
        model, refs, records = self.model, self.refs, self.records
        hist = self.namespace.get("history")
        values = getattr(hist, "history", None)
        fits = records.fitted(model) if records is not None else []
        match = next((r for r in reversed(fits) if r[1] is hist), None)
        if fits:
            is_model_history, steps = fits[-1][1] is hist, match[2]["steps"] if match else None
        else:  # no fit recorded: read the History as it is
            params = getattr(hist, "params", None)
            params = params if isinstance(params, dict) else {}
            is_model_history = hist is not None and getattr(model, "history", None) is hist
            steps = params["steps"] if isinstance(params.get("steps"), int) else None
        return {
            "class": _qualified(type(hist)),
            "is_history": isinstance(hist, refs.History),
            "is_model_history": is_model_history,
            "recorded": match is not None,
            "fit_calls": [dict(r[2]) for r in fits[-100:]],
            "epoch": [int(e) for e in getattr(hist, "epoch", [])],
            "history": (
                {str(k): [float(v) for v in vs] for k, vs in values.items()} if isinstance(values, dict) else None
            ),
            "steps_per_epoch": steps,
        }

    def weights(self, saved_as=None):
        """Save the model's weights; under ``saved_as`` first (then renamed), if given."""
        refs = self.refs
        path = refs.join(refs.out_dir, self.settings["weights_file"])
        if saved_as is None:
            refs.save_weights(self.model, path)
        else:
            temporary = refs.join(refs.out_dir, saved_as)
            refs.save_weights(self.model, temporary)
            refs.replace(temporary, path)
        return refs.basename(path)

    def plots(self):
        import matplotlib
        import matplotlib.pyplot as plt

        plot_history = self.namespace.get("plot_history")
        if not callable(plot_history):
            raise NameError("plot_history is not defined")
        previous_backend = matplotlib.get_backend()
        plt.switch_backend("agg")
        try:
            return _plot_calls(
                plot_history, self.settings["plot_history"], self.refs.History, plt, self.refs.matplotlib_internals
            )
        finally:
            plt.switch_backend(previous_backend)


def _attempt(evidence, part, fn):
    """One part of the evidence: its value, or None and why (record, never stop: the checks judge absence)."""
    try:
        evidence[part] = fn()
    except BaseException as exc:
        evidence[part] = None
        evidence["errors"][part] = _error_text(exc)


def _kit_capture(namespace, refs, records, settings):
    """Write the evidence folder from ``namespace``; ``records`` is None when the guard is gone."""
    refs.makedirs(refs.out_dir, exist_ok=True)
    evidence = {"errors": {}, "guard": records is not None}
    parts = _Parts(namespace, refs, records, settings)
    _attempt(evidence, "compile", parts.compiled)
    _attempt(evidence, "history", parts.history)
    _attempt(evidence, "weights", parts.weights)
    _attempt(evidence, "plots", parts.plots)
    with open(refs.join(refs.out_dir, settings["evidence_file"]), "w", encoding="utf-8") as f:
        f.write(refs.encode(evidence))


NOT_RECORDED = "not recorded before the run ended"  # grading/evidence.py's NOT_RECORDED (this file imports no kit)


def _fresh(part, fn) -> tuple:
    """(value, error) of one part recorded now, kept until what it comes from changes; an interrupt is no
    answer to keep (it ends this checkpoint, and the next one tries again)."""
    found = {"errors": {}}
    _attempt(found, part, fn)
    error = found["errors"].get(part)
    if error is not None and error.startswith("KeyboardInterrupt"):
        raise KeyboardInterrupt
    return found[part], error


class _Checkpoint:
    """The checkpoint entry: the evidence recorded so far, written only when what it tracks changed."""

    def __init__(self, namespace, refs, records, settings):
        self.namespace, self.refs, self.records, self.settings = namespace, refs, records, settings
        self.state = None  # what the last written checkpoint was made of (objects compared by identity)
        self.weights = None  # (fit record, value, error) of the last weights saved
        self.plots = None  # (plot_history, value, error) of the last plots recorded

    def __call__(self):
        refs = self.refs
        sys = refs.sys
        stdout, stderr = sys.stdout, sys.stderr
        try:
            sys.stdout, sys.stderr = refs.StringIO(), refs.StringIO()  # never print into the student's notebook
            self._write()
        except BaseException:  # noqa: BLE001 - never raise into the student's notebook: the next call tries again
            self.state = None
        finally:
            sys.stdout, sys.stderr = stdout, stderr

    def _tracked(self):
        """What a checkpoint is made of: the compile record of ``model`` and its calls, its last fit and number
        of fits, ``history`` if it is the History of one of them, ``plot_history`` if callable (the records name
        the model, so another model with nothing recorded changes nothing)."""
        model = self.namespace.get("model")
        if not isinstance(model, self.refs.Model):
            model = None
        record = self.records.compiled(model) if model is not None else None
        fits = self.records.fitted(model) if model is not None else []
        hist = self.namespace.get("history")
        hist = hist if isinstance(hist, self.refs.History) and any(r[1] is hist for r in fits) else None
        plot_history = self.namespace.get("plot_history")
        plot_history = plot_history if callable(plot_history) else None
        return (
            record,
            record[3] if record is not None else 0,
            fits[-1] if fits else None,
            len(fits),
            hist,
            plot_history,
        )

    def _write(self):
        state = self._tracked()
        if (
            self.state is not None
            and len(state) == len(self.state)
            and all(a is b or (type(a) is int and a == b) for a, b in zip(state, self.state))
        ):
            return
        record, _, last_fit, _, hist, plot_history = state
        refs, settings = self.refs, self.settings
        refs.makedirs(refs.out_dir, exist_ok=True)
        evidence = {"errors": {}, "guard": True, "checkpoint": True}
        parts = _Parts(self.namespace, refs, self.records, settings)

        def not_recorded(part):
            evidence[part] = None
            evidence["errors"][part] = NOT_RECORDED

        if record is not None:
            _attempt(evidence, "compile", parts.compiled)
        else:
            not_recorded("compile")
        if hist is not None:
            _attempt(evidence, "history", parts.history)
        else:
            not_recorded("history")
        if last_fit is None:
            not_recorded("weights")
        else:
            if self.weights is None or self.weights[0] is not last_fit:
                self.weights = (last_fit, *_fresh("weights", lambda: parts.weights(saved_as=".checkpoint.weights.h5")))
            evidence["weights"] = self.weights[1]
            if self.weights[2] is not None:
                evidence["errors"]["weights"] = self.weights[2]
        if plot_history is None:
            not_recorded("plots")
        else:
            if self.plots is None or self.plots[0] is not plot_history:
                self.plots = (plot_history, *_fresh("plots", parts.plots))
            evidence["plots"] = self.plots[1]
            if self.plots[2] is not None:
                evidence["errors"]["plots"] = self.plots[2]
        path = refs.join(refs.out_dir, settings["evidence_file"])
        temporary = refs.join(refs.out_dir, ".checkpoint." + settings["evidence_file"])
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(refs.encode(evidence))
        refs.replace(temporary, path)
        self.state = state


def _plot_calls(plot_history, plot_history_values, history_class, plt, figures=None):
    """Call plot_history for each metric in turn, as the notebook's loop does in Jupyter.

    As in a notebook cell, a figure stays open from one call to the next unless plot_history shows or
    closes it; ``plt.show()`` shows and then closes every open figure, as Jupyter's inline backend does.
    So a call that draws into the figure the previous call left open is seen (``reused``). Every legend
    built meanwhile is recorded with the artists its entries stand for, so that a curve named only in
    ``ax.legend([...])`` is known by that name. ``figures``: the matplotlib fence (default: the kit's own).
    """
    figures = _load_internals()["matplotlib"] if figures is None else figures
    legends = {}  # id(legend) -> (legend, [(artist, text), ...])
    plt.close("all")
    try:
        with figures.legends_recorded(legends):
            return {
                metric: _plot_once(plot_history, metric, values, history_class, plt, legends, figures)
                for metric, values in plot_history_values.items()
            }
    finally:
        plt.close("all")


def _numbers(values, positions_if_not=False) -> list:
    """Plotted data as floats; x values that are not numbers (category names) become their positions."""
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return [float(i) for i in range(len(values))] if positions_if_not else []


def _describe_figure(fig, legends) -> dict:
    """Axes, labels, legends and lines of one figure; each line with the legend text that names it."""
    figure_legends = list(getattr(fig, "legends", []))

    def legend_text(line, shown):
        for legend in shown:
            for artist, text in legends.get(id(legend), (None, ()))[1]:
                if artist is line:
                    return text
        return None

    axes = []
    for ax in fig.axes:
        legend = ax.get_legend()
        shown = ([legend] if legend else []) + figure_legends
        axes.append(
            {
                "xlabel": ax.get_xlabel(),
                "ylabel": ax.get_ylabel(),
                "title": ax.get_title(),
                "legend": [t.get_text() for t in legend.get_texts()] if legend else None,
                "lines": [
                    {
                        "label": str(line.get_label()),
                        "legend": legend_text(line, shown),
                        "x": _numbers(line.get_xdata(), positions_if_not=True),
                        "y": _numbers(line.get_ydata()),
                    }
                    for line in ax.get_lines()
                ],
            }
        )
    texts = [t.get_text() for legend in figure_legends for t in legend.get_texts()]
    return {"axes": axes, "legend": texts if figure_legends else None}


def _plot_once(plot_history, metric, values, history_class, plt, legends, figures):
    """Call plot_history once; describe every figure it drew or changed, even closed ones (``plt.show()``
    closes every open figure, as Jupyter's inline backend does once it has shown them)."""
    before = {id(fig): (fig, _describe_figure(fig, legends)) for fig in figures.open_figures()}
    seen = {}

    def snapshot():
        for fig in figures.open_figures():
            seen[id(fig)] = (fig, _describe_figure(fig, legends))

    fake = history_class()
    fake.history = {k: list(v) for k, v in values.items()}
    fake.epoch = list(range(len(next(iter(values.values())))))
    fake.params = {"verbose": 1, "epochs": len(fake.epoch), "steps": None}  # as model.fit sets them
    error = None
    with figures.show_and_close_seen(plt, snapshot):
        try:
            plot_history(fake, metric)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
        finally:
            snapshot()
    figures = [
        {**described, "reused": key in before}
        for key, (_, described) in seen.items()
        if key not in before or repr(before[key][1]) != repr(described)
    ]  # untouched figures of earlier calls
    return {"error": error, "figures": figures}


if __name__ == "__main__":  # the capture cell, in the student's namespace; false when this file is imported
    if _KIT_GUARD is not None:  # noqa: F821 - set by the runner's first lines of the capture cell
        _KIT_GUARD()  # noqa: F821
    else:  # the guard's entry is gone (``%reset`` removes it too): capture from the modules as they are now
        _kit_capture(globals(), _Refs(_KIT_SETTINGS["evidence_dir"], _KIT_INTERNALS), None, _KIT_SETTINGS)  # noqa: F821
elif "KIT_GUARD_KEY" in globals():  # the guard cell (runner.py passes KIT_NAMESPACE, KIT_GUARD_KEY, KIT_SETTINGS,
    # KIT_INTERNALS)
    _install_guard(KIT_NAMESPACE, KIT_GUARD_KEY, KIT_SETTINGS, globals().get("KIT_INTERNALS"))  # noqa: F821
