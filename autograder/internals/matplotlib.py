"""matplotlib internals the capture uses to see every figure ``plot_history`` draws.

Self-contained (the standard library only, matplotlib imported inside
functions): the sandbox's payload loads this file by its path in the
student's kernel, where the kit's package is not importable, and the kernel
must not import pyplot before the student does (it would pick the backend).
"""

import contextlib
import functools
import inspect

FENCED = (
    # Every open figure, without making one current: pyplot's public ``get_fignums()`` + ``figure(num)`` would
    # make each figure current in turn and change what a student's ``plt.gca()`` draws into next.
    "matplotlib._pylab_helpers:Gcf.get_all_fig_managers",
    # Wrapped while plot_history runs, to keep which artist each legend entry stands for: a Legend keeps
    # its handles only privately once built, and ``ax.get_legend_handles_labels()`` sees labelled artists only,
    # not the curves named by ``ax.legend([...])`` alone.
    "matplotlib.legend:Legend.__init__",
    # Replaced while plot_history runs, to describe a figure before it is closed: matplotlib has no hook or
    # event when a figure is shown or closed by pyplot (a canvas' close_event fires only for GUI windows).
    "matplotlib.pyplot:show",
    "matplotlib.pyplot:close",
)


def open_figures() -> list:
    """pyplot's open figures, by number."""
    from matplotlib._pylab_helpers import Gcf

    return sorted((manager.canvas.figure for manager in Gcf.get_all_fig_managers()), key=lambda f: f.number)


@contextlib.contextmanager
def legends_recorded(legends: dict):
    """While inside: every Legend built is kept in ``legends`` as id -> (legend, [(artist, text), ...])."""
    from matplotlib.legend import Legend

    real_init = Legend.__init__
    signature = inspect.signature(real_init)

    @functools.wraps(real_init)
    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        try:
            bound = signature.bind(self, *args, **kwargs).arguments
            legends[id(self)] = (self, [(artist, str(text)) for artist, text in zip(bound["handles"], bound["labels"])])
        except Exception:  # noqa: BLE001 - an unreadable legend only loses the names it gives
            pass

    Legend.__init__ = init
    try:
        yield
    finally:
        Legend.__init__ = real_init


@contextlib.contextmanager
def show_and_close_seen(plt, before_close):
    """While inside: ``before_close()`` runs before pyplot closes figures; ``plt.show()`` closes every open
    figure as Jupyter's inline backend does once it has shown them. Yields the real ``plt.close``."""
    real_close, real_show = plt.close, plt.show

    def close(*args, **kwargs):
        before_close()
        return real_close(*args, **kwargs)

    def show(*args, **kwargs):
        before_close()
        real_close("all")

    plt.close, plt.show = close, show
    try:
        yield real_close
    finally:
        plt.close, plt.show = real_close, real_show
