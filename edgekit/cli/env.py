"""`edgekit env`: what a bug report needs about this machine and installation."""

from __future__ import annotations

from typing import Annotated

import typer

from edgekit.cli.options import echo


def register(app: typer.Typer) -> None:
    @app.command("env")
    def env(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
        """Versions, CPU and ISA flags, the runtimes and ONNX Runtime providers that load, and the missing extras."""
        import json

        from edgekit import api

        info = api.env()
        if as_json:
            echo(json.dumps(info, indent=2))
            return
        for line in format_env(info):
            echo(line)


def format_env(info: dict) -> list[str]:
    import textwrap

    cpu = info["cpu"]
    lines = [f"edgekit     {info['edgekit']}",
             f"python      {info['python']} ({info['executable']})",
             f"platform    {info['os']} {info['machine']}",
             f"cpu         {cpu['model']} ({info['usable_cores']} of {info['logical_cores']} cores usable)",
             f"isa         {' '.join(cpu['isa']) or '-'}",
             textwrap.fill(", ".join(f"{k} {v}" for k, v in info["packages"].items() if v), width=118,
                           initial_indent="packages    ", subsequent_indent=" " * 12, break_on_hyphens=False)]
    if info["modules_error"]:
        lines.append(f"runtimes    could not check: {info['modules_error']}")
    else:
        lines.append("runtimes")
        for name, m in info["modules"].items():
            if "version" not in m:
                lines.append(f"  {name:<15} no   {m.get('error', '')}")
                continue
            detail = m["version"]
            if m.get("providers"):
                detail += "  providers: " + ", ".join(m["providers"])
            if m.get("cuda"):
                detail += f"  cuda: {m.get('cuda_device', 'yes')}"
            lines.append(f"  {name:<15} ok   {detail}")
    if info["required_missing"]:
        lines.append("required but missing: " + ", ".join(info["required_missing"]) + "  (pip install edgekit)")
    extras = info["extras_missing"]
    if extras is None:
        lines.append("extras      unknown: edgekit is imported from a source tree, not installed")
    elif not extras:
        lines.append("extras      all installed")
    else:
        lines.append("extras missing")
        width = max(len(v["install"]) for v in extras.values())
        lines += [f"  {k:<15} {v['install']:<{width}}   ({', '.join(v['missing'])})" for k, v in extras.items()]
    return lines
