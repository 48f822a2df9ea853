"""`edgekit devices list|show|check|probe`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from edgekit.cli.options import echo


def register(app: typer.Typer) -> None:
    devices = typer.Typer(help="Device profiles (devices/*.yaml).", no_args_is_help=True)
    app.add_typer(devices, name="devices")

    @devices.command("list")
    def list_() -> None:
        """List known device profiles."""
        from edgekit import api

        for p in api.devices():
            probed = " (probed)" if p.measured else ""
            echo(f"{p.name:<18} {p.kind:<9} {p.transport:<6} {p.description}{probed}")

    @devices.command("show")
    def show(name: str) -> None:
        """Print one profile with its defaults (and, for this machine, the detected CPU)."""
        import yaml

        from edgekit import api

        data = api.device(name)
        path = data.pop("_path")
        echo(f"# {path}" if path else "")
        echo(yaml.safe_dump(data, sort_keys=False))

    @devices.command("check")
    def check(
        name: str,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Is the device reachable, and which of its runtimes import there? Exit 1 when unreachable."""
        import json

        from edgekit import api

        out = api.device_check(name)
        if as_json:
            echo(json.dumps({k: v for k, v in out.items() if k != "modules"}, indent=2))
        elif not out["reachable"]:
            echo(f"{out['device']}: UNREACHABLE ({out['transport']}): {out['reason']}")
        else:
            env = out.get("environment", {})
            where = ", ".join(f"{k} {v}" for k, v in env.items() if v) or "-"
            echo(f"{out['device']}: reachable over {out['transport']} ({where})")
            for rt, info in out["runtimes"].items():
                echo(f"  {rt:<12} {'ok ' if info['importable'] else 'NO '} {info['detail']}")
            if out.get("providers_missing"):
                echo(f"  missing execution providers: {', '.join(out['providers_missing'])} "
                     f"(available: {', '.join(out.get('providers_available') or [])})")
        if not out["reachable"]:
            raise typer.Exit(1)

    @devices.command("probe")
    def probe(
        name: str,
        mem_mb: Annotated[int, typer.Option("--mem-mb", help="array size of the bandwidth test (MiB)")] = 256,
        size: Annotated[int, typer.Option(help="GEMM size M=N=K")] = 1024,
        out: Annotated[Optional[str], typer.Option(help="write here instead of <profile>.measured.yaml")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="measure and print, write nothing")] = False,
    ) -> None:
        """Measure peak fp32/int8 GEMM throughput and memory bandwidth on the device; store them beside the
        datasheet peaks (sidecar <profile>.measured.yaml, read back by every later command)."""
        from edgekit import api

        res = api.device_probe(name, mem_mb, size, out, dry_run)
        for key, measured, sheet in res["rows"]:
            ratio = f" ({100 * measured / sheet:.0f}% of datasheet)" if measured and sheet else ""
            echo(f"{key:<18} measured {measured if measured is not None else '-':>10}   datasheet "
                 f"{sheet if sheet is not None else '-':>10}{ratio}")
        echo(f"source: {res['source']}")
        if res["written"]:
            echo(f"wrote {res['written']}")
