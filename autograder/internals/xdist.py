"""pytest-xdist internals the kit's test suite relies on (tests/conftest.py)."""

FENCED = (
    # The unit of work of xdist's --dist loadscope, overridden to hand out a test file (or the files of one
    # shared session fixture) as one unit: xdist's public --dist modes group by module or class
    # (loadscope), by file (loadfile) or by an xdist_group mark (loadgroup), and a mark cannot put the files
    # of one session fixture on one worker while keeping the collection's order (longest first).
    "xdist.scheduler.loadscope:LoadScopeScheduling._split_scope",
)


def scheduler_by_unit(config, log, unit_of):
    """xdist's LoadScopeScheduling with ``unit_of(nodeid) -> str`` as the unit of work, in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # keep the collection's order, not the test counts

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return ByUnit(config, log)
