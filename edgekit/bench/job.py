"""The bench agent's job: what the host asks one agent process to do, as JSON that both sides read the same way.

Stdlib only (it ships to devices with the agent). Fields marked as files hold paths of files the agent reads; a
remote transport copies exactly those and rewrites their paths (`Job.files`, `Job.with_files`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

JOB_VERSION = 1
FILE = {"file": True}


class JobError(ValueError):
    """A job this agent cannot read: another version, or keys it does not know."""


@dataclass
class Model:
    """One artifact for the agent to load: its file, runtime, intra-op threads (None: the job's) and options."""

    path: str = field(metadata=FILE)
    runtime: str = "onnxruntime"
    threads: int | None = None
    runtime_options: dict | None = None


@dataclass
class Job:
    """One agent run. `task` names an entry of the agent's task registry (edgekit/bench/agent.py TASKS)."""

    task: str = "bench"
    models: list[Model] = field(default_factory=list)
    inputs: str | None = field(default=None, metadata=FILE)
    threads: int | None = None
    affinity: list[int] | None = None
    providers: list[str] | None = None
    device: str = "cpu"
    device_index: int = 0
    torch_dtype: str = "fp32"
    batch_size: int = 1
    warmup: int = 10
    iterations: int = 100
    min_time_s: float = 1.0
    max_time_s: float = 30.0
    per_round: int = 10
    min_rounds: int = 30
    accuracy: bool = True
    energy: bool = True
    outputs_path: str | None = None
    return_outputs: bool = False
    gemm: dict | None = None
    mem_mb: int = 256
    cuda_n: int = 8192
    version: int = JOB_VERSION

    @property
    def model(self) -> str:
        """The first model's file ('' when the job has none)."""
        return self.models[0].path if self.models else ""

    def input_file(self) -> str:
        """The inputs file, which the bench and paired tasks need."""
        if not self.inputs:
            raise JobError(f"a {self.task} job needs `inputs` (a .npy file of model inputs)")
        return self.inputs

    def session(self, i: int = 0) -> Model:
        """Model `i` with its threads resolved (the job's unless the model sets its own)."""
        m = self.models[i]
        return dataclasses.replace(m, threads=self.threads if m.threads is None else m.threads)

    def files(self) -> dict[str, str]:
        """{key: path} of every file the agent will read: `models.<i>` and the job's file fields."""
        out = {f"models.{i}": m.path for i, m in enumerate(self.models) if m.path}
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if f.metadata.get("file") and getattr(self, f.name)})
        return out

    def with_files(self, paths: dict[str, str]) -> Job:
        """A copy with the files under the keys of `files()` moved to `paths`."""
        models = [dataclasses.replace(m, path=paths.get(f"models.{i}", m.path)) for i, m in enumerate(self.models)]
        return dataclasses.replace(self, models=models, **{k: v for k, v in paths.items() if not k.startswith("models.")})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        version = data.get("version")
        if version != JOB_VERSION:
            raise JobError(f"job version {version!r}, but this agent reads version {JOB_VERSION}: the host and the "
                           f"device run different edgekit versions (the agent ships with every job; rerun from one "
                           f"edgekit)")
        _unknown(cls, data, "job")
        models = []
        for m in data.get("models") or []:
            _unknown(Model, m, "job model")
            models.append(Model(**m))
        return cls(**{**data, "models": models})

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls.from_dict(json.loads(text))


def _unknown(cls, data: dict, what: str) -> None:
    extra = set(data) - {f.name for f in dataclasses.fields(cls)}
    if extra:
        raise JobError(f"{what} keys this agent does not know: {sorted(extra)} (host and device edgekit differ)")
