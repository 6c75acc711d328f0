"""Errors a user can act on: each names the file, the line and the layer involved.

Error text is bounded whatever the input: a list shows its first MAX_LISTED problems and
then how many more there are, and every line taken from the user's files (a layer name,
a source line echoed by the parser) is cut to MAX_ECHO characters.
"""
import re

MAX_LISTED = 20
MAX_ECHO = 200


def clip(text, limit=MAX_ECHO):
    """`text` with every word (run of non-blank characters: a name, a token, a source line
    without spaces) cut to `limit` characters, and every line to 10 times that; a cut says
    how long the original was."""
    text = str(text)
    if len(text) <= limit:
        return text
    out = []
    for line in text.split("\n"):
        if len(line) > limit:
            line = re.sub(r"\S{%d,}" % (limit + 1), lambda m: f"{m.group()[:limit]}...({len(m.group())} characters)",
                          line)
        if len(line) > 10 * limit:
            line = f"{line[:10 * limit]}...({len(line)} characters)"
        out.append(line)
    return "\n".join(out)


class Caffe2MXError(Exception):
    """Base for every error caffe2mx reports to a user (CLI exit code 2)."""

    exit_code = 2


class ModelError(Caffe2MXError):
    """Something wrong with a model file, located as precisely as is known."""

    def __init__(self, message, *, file=None, line=None, column=None, layer=None, layer_type=None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.layer = layer
        self.layer_type = layer_type
        super().__init__(str(self))

    def location(self):
        parts = [self.file or "<string>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self):
        where = self.location()
        who = ""
        if self.layer is not None:
            who = f"layer '{clip(self.layer, 80)}'" + (f" ({clip(self.layer_type, 80)})" if self.layer_type else "") + ": "
        return f"{where}: {who}{clip(self.message)}"


class ModelErrors(Caffe2MXError):
    """Several problems found in one pass over a net, reported together (the first
    MAX_LISTED of them, then how many more)."""

    def __init__(self, headline, errors, footer=None):
        self.headline = headline
        self.errors = list(errors)
        self.footer = footer
        super().__init__(str(self))

    def __str__(self):
        shown = self.errors[:MAX_LISTED]
        lines = [self.headline] + [f"  {e}" for e in shown]
        if len(self.errors) > len(shown):
            lines.append(f"  ... and {len(self.errors) - len(shown)} more")
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)


def raise_all(errors, headline):
    """Raise the one error of a pass: nothing for no problems, the problem itself for one,
    a ModelErrors (headline formatted with the count) for several."""
    if not errors:
        return
    if len(errors) == 1:
        raise errors[0]
    raise ModelErrors(headline.format(n=len(errors)), errors)


class UsageError(Caffe2MXError):
    """Bad command-line arguments or paths."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while outputs were being written; what was staged has been
    removed (or, in the final moves, completed) before this is raised. A BaseException like
    KeyboardInterrupt, so no `except Exception` swallows it."""

    def __init__(self, signum, completed=False):
        self.signum = signum
        self.completed = completed  # the signal came during the final moves, which were finished first
        super().__init__(f"interrupted by signal {signum}")
