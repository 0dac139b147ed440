"""One error type for bad input, with one clear message.

Every reader in :mod:`sepher.io` raises :class:`InputError` naming the file,
the row (1-based data row, header excluded, as a spreadsheet user counts
after the header), the column, the offending value and what was expected.
Entry points catch nothing: Snakemake stops the run and shows the message.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: names file, row, column, value and the expectation.

    Parameters
    ----------
    file : str
        Path of the offending input file (or config file).
    expected : str
        What a valid value looks like, in words.
    row : int or str, optional
        1-based data row number (header not counted), or a row label.
    column : str, optional
        Column (or config key) holding the bad value.
    value : object, optional
        The offending value as read.
    hint : str, optional
        One sentence on how to fix it.
    """

    def __init__(self, file, expected, row=None, column=None, value=None, hint=None):
        self.file = str(file)
        self.row = row
        self.column = column
        self.value = value
        self.expected = expected
        self.hint = hint
        super().__init__(self.message())

    def __reduce__(self):
        # picklable with its fields (a start-up check worker process hands it back)
        return (
            type(self),
            (self.file, self.expected, self.row, self.column, self.value, self.hint),
        )

    def message(self) -> str:
        where = [f"file {self.file}"]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = "Invalid input: " + ", ".join(where)
        if self.value is not None:
            text += f": value '{self.value}'"
        text += f"; expected {self.expected}."
        if self.hint:
            text += f" {self.hint}"
        return text


def did_you_mean(value, choices, cutoff: float = 0.6) -> str | None:
    """The hint ``"Did you mean '<closest>'?"`` for a value not among ``choices``
    (difflib's closest match above ``cutoff``), or None when nothing is close."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=cutoff)
    return f"Did you mean '{close[0]}'?" if close else None
