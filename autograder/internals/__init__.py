"""Third-party private names the kit depends on, fenced: one module per library.

Each module here is named for the library it reaches into and lists every
private name it uses in ``FENCED`` (dotted ``module:attribute.path`` strings),
each with a comment saying why no public API does the job.  The rest of the
kit imports these names from here, never from the library directly, and
``tests/unit/test_internals.py`` resolves every ``FENCED`` entry at the pinned
versions, so a library release that moves one fails with the library's name.
"""
