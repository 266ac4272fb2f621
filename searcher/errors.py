"""One exception type for every failure a user can fix; its message is a single line."""


class SearcherError(Exception):
    """A problem with the user's input or environment, worded as one line that says what to do."""


class LockedError(SearcherError):
    """Another process holds the index's writer lock."""
