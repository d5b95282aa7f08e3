"""One exception type for every user-facing failure.

The CLI turns a :class:`SemsimError` into a one-line message and a non-zero exit;
anything else is a bug and keeps its traceback.
"""


class SemsimError(Exception):
    """Bad input or environment: a missing file, an unknown preset, a corrupt checkpoint."""
