"""nbclient internals the sandbox's runner relies on.

Self-contained (the standard library only): the runner loads this file by its
path inside the sandbox, where the kit's package is not importable.
"""

FENCED = (
    # The step nbclient takes when a cell passes the timeout (it interrupts the kernel). The runner must know
    # which cell it was at that moment, before the kernel answers or not: the public hooks come too late or
    # not at all (``on_cell_executed`` only once a reply arrived; when the kernel ignores the interrupt there
    # is none, and the run ends as a timeout naming that cell).
    "nbclient.client:NotebookClient._async_handle_timeout",
)


class NoticeTimeouts:
    """Mixin for a NotebookClient (before it in the bases): ``cell_timed_out(cell)`` is called when ``cell``
    passes the timeout, right before nbclient interrupts the kernel."""

    def cell_timed_out(self, cell) -> None:
        raise NotImplementedError

    async def _async_handle_timeout(self, timeout, cell=None):
        if cell is not None:
            self.cell_timed_out(cell)
        return await super()._async_handle_timeout(timeout, cell)
