"""The one exception type users see.

A `KdfairError` says what was wrong, where, and how to fix it. The CLI prints its message without a
traceback and exits with status 2; anything else is a bug and keeps its traceback.
"""


class KdfairError(ValueError):
    """A problem with the user's input, config, data or outputs, explained in plain words."""
