"""Errors a user can act on: each names the file, the line and the layer involved."""


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
            who = f"layer '{self.layer}'" + (f" ({self.layer_type})" if self.layer_type else "") + ": "
        return f"{where}: {who}{self.message}"


class ModelErrors(Caffe2MXError):
    """Several problems found in one pass over a net, reported together."""

    def __init__(self, headline, errors, footer=None):
        self.headline = headline
        self.errors = list(errors)
        self.footer = footer
        super().__init__(str(self))

    def __str__(self):
        lines = [self.headline] + [f"  {e}" for e in self.errors]
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)


class UsageError(Caffe2MXError):
    """Bad command-line arguments or paths."""
