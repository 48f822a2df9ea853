"""The bench agent's job (edgekit/bench/job.py): a typed, versioned contract between host and agent, with its
files and the agent's shipped modules derived, not listed twice."""

import json

import pytest

from edgekit.bench.agent import TASKS, main, shipped_modules
from edgekit.bench.job import JOB_VERSION, Job, JobError, Model


def _paired(tmp_path):
    return Job(task="paired", models=[Model(str(tmp_path / "a.onnx"), threads=2), Model(str(tmp_path / "b.tflite"),
               "litert", runtime_options={"k": 1})], inputs=str(tmp_path / "x.npy"), threads=4, affinity=[0, 1],
               per_round=5, outputs_path=str(tmp_path / "out.npy"))


def test_a_job_survives_json(tmp_path):
    job = _paired(tmp_path)
    back = Job.from_json(job.to_json())
    assert back == job and isinstance(back.models[1], Model) and back.version == JOB_VERSION
    assert back.session(0).threads == 2 and back.session(1).threads == 4  # a model's own threads, else the job's


def test_another_version_is_refused_with_a_clear_error(tmp_path):
    data = _paired(tmp_path).to_dict()
    for version in (JOB_VERSION + 1, None):
        with pytest.raises(JobError, match=f"job version {version!r}, but this agent reads version {JOB_VERSION}"):
            Job.from_dict({**data, "version": version})
    with pytest.raises(JobError, match=r"does not know: \['model_b'\]"):
        Job.from_dict({**data, "model_b": "x.onnx"})
    with pytest.raises(JobError, match=r"job model keys .*\['weights'\]"):
        Job.from_dict({**data, "models": [{"path": "a.onnx", "weights": 1}]})


def test_the_agent_reports_a_mismatch_and_an_unknown_task_as_data(tmp_path):
    job_path, result_path = tmp_path / "job.json", tmp_path / "result.json"
    for data, message in (({**Job().to_dict(), "version": 0}, "JobError: job version 0"),
                          (Job(task="dance").to_dict(), "unknown agent task 'dance'")):
        job_path.write_text(json.dumps(data))
        assert main(["agent", str(job_path), str(result_path)]) == 1
        assert message in json.loads(result_path.read_text())["error"]


def test_files_are_the_fields_marked_as_files(tmp_path):
    job = _paired(tmp_path)
    files = job.files()
    assert files == {"models.0": str(tmp_path / "a.onnx"), "models.1": str(tmp_path / "b.tflite"),
                     "inputs": str(tmp_path / "x.npy")}
    moved = job.with_files({k: f"files/{k}" for k in files})
    assert moved.files() == {k: f"files/{k}" for k in files}
    assert moved.models[1].runtime == "litert" and moved.outputs_path == job.outputs_path and job.files() == files


def test_every_task_module_and_support_module_ships(tmp_path):
    from edgekit.devices.ssh import pack, shipped_files

    archived = {arc for _, arc in shipped_files()}
    for module in shipped_modules():
        if not module.endswith(".*"):
            path = "/".join(module.split("."))
            assert f"{path}.py" in archived or f"{path}/__init__.py" in archived, module
    for spec in TASKS.values():
        assert "/".join(spec.partition(":")[0].split(".")) + ".py" in archived
    assert {"edgekit/timing.py", "edgekit/bench/job.py", "edgekit/runtimes/onnxruntime.py"} <= archived
    for name in ("a.onnx", "b.tflite", "x.npy"):
        (tmp_path / name).write_bytes(b"0")
    _, remote = pack(_paired(tmp_path))
    assert remote.files() == {"models.0": "files/models0.onnx", "models.1": "files/models1.tflite",
                              "inputs": "files/inputs.npy"}
    assert remote.outputs_path == "outputs.npy" and remote.return_outputs


def test_a_cuda_job_reaches_the_agent_s_gpu_path(tmp_path):
    """Without a GPU the cuda transport's job still goes all the way: the agent's CUDA loader says why it stops."""
    import numpy as np
    import torch

    from edgekit.devices import cuda
    from edgekit.errors import BenchError

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: tests/test_cuda.py runs the real thing")
    np.save(tmp_path / "x.npy", np.zeros((2, 4), np.float32))
    job = Job(models=[Model(str(tmp_path / "m.pt"), "torch")], inputs=str(tmp_path / "x.npy"))
    with pytest.raises(BenchError, match=r"torch.cuda.is_available\(\) is False"):
        cuda.run_agent(job, 120)
