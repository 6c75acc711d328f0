"""Output files written in a fresh staging directory beside them, then moved into place.

Every command that writes files goes through `Staging`:

    with Staging([out / "m-symbol.json", out / "m-0000.params"], force=False, inputs=[prototxt]) as st:
        write(st.path(target)) ...
        st.commit()

- Before anything is written: a target that exists is refused unless `force` (a file the
  run did not create is never replaced unless the user asked), a target that is an input
  of the run or a directory is always refused, and missing parent directories are created
  (and removed again if the run fails, when still empty).
- The files are written into `.<name>.staging-XXXX/` in the targets' directory (same file
  system, so the moves are renames), and `commit` renames them over the targets. Old
  targets replaced under `force` are hard-linked into the staging directory first, so a
  failure in the middle of the moves puts every old file back: the targets are either all
  old or all new.
- SIGINT and SIGTERM are caught while a Staging is open (main thread only): before the
  commit they abort the run, and the staging directory is removed; during the commit they
  are held until the moves are done. Either way `Interrupted` is raised afterwards.
- Whatever happens, the staging directory is gone when the `with` block ends.
"""
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .errors import Interrupted, UsageError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_targets(targets, *, force=False, inputs=()):
    """The checks `Staging` makes before writing, callable early (before any work): raises
    UsageError naming every target that is a directory, an input, or exists without force."""
    targets = [Path(t) for t in targets]
    inputs = [Path(i) for i in inputs if i is not None]
    for t in targets:
        for i in inputs:
            if _same_file(t, i):
                raise UsageError(f"{t}: is an input of this run ({i}); choose another output")
        if t.is_dir():
            raise UsageError(f"{t}: is a directory; choose another output")
    existing = [str(t) for t in targets if os.path.lexists(t)]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)}: already exist{'s' if len(existing) == 1 else ''}; "
                         f"pass --force to replace {'it' if len(existing) == 1 else 'them'}, or choose another output")
    parent = _parent(targets)
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{parent}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{parent}: the output directory is not writable")
    return parent


def _parent(targets):
    parents = {t.parent for t in targets}
    if len(parents) != 1:
        raise ValueError(f"staged outputs must share one directory, got {sorted(map(str, parents))}")
    parent = parents.pop()
    return parent if str(parent) else Path(".")


class Staging:
    """Write `targets` all at once or not at all (see the module docstring)."""

    def __init__(self, targets, *, force=False, inputs=()):
        self.targets = [Path(t) for t in targets]
        self.force = force
        self.inputs = list(inputs)
        self.dir = None
        self.committed = False
        self._created_dirs = []
        self._old_handlers = {}
        self._deferring = False
        self._pending = None

    # -- signals ---------------------------------------------------------------------------
    def _on_signal(self, signum, frame):
        if self._deferring:
            self._pending = signum
            return
        self._deferring = True  # one interruption is enough; the clean-up itself is not interrupted
        raise Interrupted(signum)

    def _install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for s in SIGNALS:
            try:
                self._old_handlers[s] = signal.signal(s, self._on_signal)
            except (ValueError, OSError):  # not allowed here (embedded interpreter): run unprotected
                pass

    def _restore(self):
        for s, h in self._old_handlers.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._old_handlers = {}

    # -- the staging directory ---------------------------------------------------------------
    def __enter__(self):
        parent = check_targets(self.targets, force=self.force, inputs=self.inputs)
        self._install()
        try:
            missing = []
            probe = parent
            while not probe.exists():
                missing.append(probe)
                probe = probe.parent
            for d in reversed(missing):
                d.mkdir()
                self._created_dirs.append(d)
            self.dir = Path(tempfile.mkdtemp(prefix=f".{self.targets[0].name}.staging-", dir=str(parent)))
        except OSError as exc:
            self._cleanup()
            self._restore()
            raise UsageError(f"{parent}: cannot write output there ({exc.strerror})") from None
        except BaseException:
            self._cleanup()
            self._restore()
            raise
        return self

    def path(self, target):
        """Where to write `target` for now (inside the staging directory)."""
        return self.dir / Path(target).name

    def commit(self):
        """Move every staged file over its target; all old targets come back on failure."""
        self._deferring = True
        backups, placed = [], []
        try:
            for t in self.targets:
                if not self.path(t).is_file():
                    raise FileNotFoundError(f"{t}: nothing was staged for it")
                if os.path.lexists(t):
                    if not self.force:
                        raise UsageError(f"{t}: appeared while this run was writing; nothing was replaced "
                                         f"(pass --force to replace it)")
                    backup = self.dir / f".old.{t.name}"
                    try:
                        os.link(t, backup, follow_symlinks=False)
                    except OSError:  # a file system without hard links: keep a copy instead
                        shutil.copy2(t, backup, follow_symlinks=False)
                    backups.append((t, backup))
            for t in self.targets:
                os.replace(self.path(t), t)
                placed.append(t)
        except BaseException as exc:
            kept = {t for t, _ in backups}
            for t in placed:
                if t not in kept:
                    Path(t).unlink(missing_ok=True)
            for t, backup in backups:
                os.replace(backup, t)
            if isinstance(exc, OSError):
                raise UsageError(f"{exc.filename or self.targets[0].parent}: cannot write output there "
                                 f"({exc.strerror}); nothing was changed") from None
            raise
        self.committed = True

    def _cleanup(self):
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if not self.committed:
            for d in reversed(self._created_dirs):
                try:
                    d.rmdir()
                except OSError:
                    break

    def __exit__(self, exc_type, exc, tb):
        self._deferring = True
        try:
            self._cleanup()
        finally:
            self._restore()
        if self._pending is not None and not isinstance(exc, Interrupted):
            raise Interrupted(self._pending, completed=self.committed)
        if isinstance(exc, OSError):
            raise UsageError(f"{exc.filename or self.targets[0].parent}: cannot write output there "
                             f"({exc.strerror})") from None
        return False
