"""Typed errors. Each carries what the user must fix; the CLI prints them without a traceback."""

from __future__ import annotations


class EdgekitError(Exception):
    """Base class for every error edgekit raises on purpose."""

    exit_code = 2


class RecipeError(EdgekitError):
    """A recipe (or device profile) is malformed: names the key path and the YAML line."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None, line: int | None = None):
        self.path, self.key, self.line, self.message = path, key, line, message
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(f"{where}{message}")


class DeviceError(RecipeError):
    """A device profile is malformed or unsafe (a host or user that ssh would read as an option, a bad serial...):
    names the profile file, the key and its line."""


class DataError(EdgekitError):
    """A data source is missing or malformed."""


class ModelLoadError(EdgekitError):
    """A model file is corrupt, unsafe or does not match its declared architecture."""


class ExportError(EdgekitError):
    """The exporter could not produce an artifact."""


class ExportParityError(ExportError):
    """An artifact disagrees with the PyTorch reference beyond the recipe's tolerance."""

    def __init__(self, artifact: str, parity: dict, tolerance: dict, failures: list[str]):
        self.artifact, self.parity, self.tolerance, self.failures = artifact, parity, tolerance, failures
        super().__init__(f"{artifact}: parity check failed: " + "; ".join(failures))


class RuntimeUnavailable(EdgekitError):
    """A runtime's package is not installed, or it cannot run this artifact."""


class ArtifactError(EdgekitError):
    """An artifact file is missing, truncated or corrupt."""


class PassError(EdgekitError):
    """A compression pass failed."""


class BenchError(EdgekitError):
    """A benchmark could not be run or produced no result."""


class DeviceUnreachable(BenchError):
    """The device could not be reached, or the connection dropped; the bench of other devices goes on."""


class OutputError(EdgekitError):
    """An output file or folder cannot be written (a file where a folder should be, a full disk, no permission)."""

    @classmethod
    def from_os(cls, err: OSError, target) -> OutputError:
        """The one-line form of an OSError met while writing `target`; it exits 1, as the CLI's other OS errors do."""
        other = f" ({err.filename})" if err.filename and str(err.filename) != str(target) else ""
        why = err.strerror or (f"{err} (disk full?)" if err.errno is None else str(err))
        out = cls(f"{target}: cannot write{other}: {why}")
        out.exit_code = 1
        return out


class GateInputError(EdgekitError):
    """A report given to `edgekit gate` is missing or malformed."""


class MissingExtra(EdgekitError):
    """An optional package the recipe or command needs is not installed; names the extra to install."""


class PreflightError(EdgekitError):
    """What the cheap checks before any work found: every problem at once (devices, formats, missing extras)."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems, self.source = problems, source
        where = f"{source}: " if source else ""
        super().__init__(where + ("; ".join(problems) if len(problems) == 1 else
                                  f"{len(problems)} problems before any work: " + "; ".join(problems)))


class RunFolderError(EdgekitError):
    """A run folder cannot be used as asked: `--out` already holds a run, or the folder was altered."""
