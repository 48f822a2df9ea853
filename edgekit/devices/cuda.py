"""CUDA transport: the local agent, told to run on the GPU. PyTorch artifacts run on `cuda:N` in fp32 or fp16
(the profile's `cuda.torch_dtype`); ONNX artifacts run with ONNX Runtime's CUDA execution provider
(onnxruntime-gpu). Timing is synchronized, and CUDA events give the device-side time of each batch."""

from __future__ import annotations

import dataclasses

from edgekit.bench.job import Job
from edgekit.devices import local


def _cuda_job(job: Job, profile) -> Job:
    cfg = profile.cuda if profile is not None and profile.cuda is not None else None
    return dataclasses.replace(job, device="cuda", device_index=cfg.device_index if cfg else 0,
                               torch_dtype=cfg.torch_dtype if cfg else "fp32",
                               energy=False)  # RAPL counts the CPU package, not the GPU


def run_agent(job: Job, timeout_s: float, profile=None) -> dict:
    return local.run_agent(_cuda_job(job, profile), timeout_s, profile)


def reachable(profile) -> str | None:
    out = check(profile)
    return None if out.get("reachable") else out.get("reason", "no usable CUDA device")


def check(profile, timeout_s: float = 120.0) -> dict:
    """The local check, with torch counted only when it sees a GPU and ONNX Runtime only with its CUDA EP."""
    out = local.check(profile, timeout_s)
    if not out.get("reachable"):
        return out
    rows, modules = out["runtimes"], out.get("modules", {})
    if rows.get("torch", {}).get("importable") and not modules.get("torch", {}).get("cuda"):
        rows["torch"] = {"importable": False, "detail": "torch imports but torch.cuda.is_available() is False"}
    if rows.get("onnxruntime", {}).get("importable") and "CUDAExecutionProvider" not in (out["providers_available"] or []):
        rows["onnxruntime"] = {"importable": False,
                               "detail": "no CUDAExecutionProvider (install onnxruntime-gpu instead of onnxruntime)"}
    if not any(r["importable"] for r in rows.values()):
        out["reachable"] = False
        out["reason"] = "no CUDA device usable from torch or ONNX Runtime here"
    return out
