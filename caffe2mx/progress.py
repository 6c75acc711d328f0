"""Progress messages on a terminal; silent when stderr is not a terminal or with --quiet."""
import sys
import time


class Progress:
    def __init__(self, quiet=False, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.perf_counter()

    def __call__(self, message):
        if self.enabled:
            self.stream.write(f"\r\033[K[{time.perf_counter() - self.t0:6.1f}s] {message}")
            self.stream.flush()

    def done(self):
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
