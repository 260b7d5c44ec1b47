"""Keras (3.x) internals the evidence capture and the compile checks rely on.

Self-contained (the standard library only, Keras imported inside functions):
the sandbox's payload loads this file by its path (``capture.py`` runs in the
student's kernel, where the kit's package is not importable), and the hidden
checks import it without paying for a TensorFlow start.
"""

# Where the genuine classes and functions the checks judge are defined, as (module, name). The capture keeps
# them before any student code runs and records what compile was given by its fully qualified name
# (``__module__`` + ``__qualname__``); the checks compare those names with ``qualified`` below. The public
# ``keras.optimizers.Adam`` etc. are the same objects, but their defining module, the name an object reports,
# is ``keras.src...``: no public API gives the name a genuine object carries.
GENUINE = (
    ("keras.src.models.model", "Model"),
    ("keras.src.callbacks.history", "History"),
    ("keras.src.optimizers.adam", "Adam"),
    ("keras.src.losses.losses", "BinaryCrossentropy"),
    ("keras.src.losses.losses", "binary_crossentropy"),
    ("keras.src.metrics.confusion_metrics", "AUC"),
    ("keras.src.metrics.accuracy_metrics", "Accuracy"),
    ("keras.src.metrics.accuracy_metrics", "BinaryAccuracy"),
    ("keras.src.metrics.accuracy_metrics", "accuracy"),
    ("keras.src.metrics.accuracy_metrics", "binary_accuracy"),
)

FENCED = (
    *(f"{module}:{name}" for module, name in GENUINE),
    # What compile was given, as the objects themselves: read only when the capture saw no compile call of the
    # model (its guard's entry was removed, e.g. by ``%reset``). ``Model.get_compile_config()`` returns the
    # same dict serialized (new dicts, not the objects, so identity with the genuine classes cannot be
    # judged), ``model.metrics`` the wrappers Keras built, not the metrics given, and ``model.loss`` keeps a
    # loss of an earlier compile when the last one had none.
    "keras.src.trainers.trainer:Trainer._compile_config",  # set by Trainer.compile (instance attribute)
    "keras.src.saving.serialization_lib:SerializableDict.config",  # the kwargs it holds (instance attribute)
)


def qualified(name: str) -> str:
    """The fully qualified name the genuine Keras object ``name`` (e.g. "Adam") reports."""
    module = next(module for module, attr in GENUINE if attr == name)
    return f"{module}.{name}"


def genuine_objects() -> list:
    """The genuine objects of ``GENUINE``, in its order (imports Keras)."""
    import importlib

    return [getattr(importlib.import_module(module), name) for module, name in GENUINE]


def compile_arguments(model) -> dict:
    """The arguments ``model`` was last compiled with, as the objects given (optimizer: the one Keras built);
    {} when it holds none."""
    config = getattr(model, "_compile_config", None)
    return config.config if config else {}
