from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    devices = typer.Typer(help="Device profiles (devices/*.yaml).", no_args_is_help=True)
    app.add_typer(devices, name="devices")

    @devices.command("list")
    def list_() -> None:
        """List known device profiles."""
        from edgekit.devices import list_profiles

        for p in list_profiles():
            typer.echo(f"{p.name:<16} {p.kind:<9} {p.transport:<6} {p.description}")

    @devices.command("show")
    def show(name: str) -> None:
        """Print one profile with its defaults."""
        import yaml

        from edgekit.devices import load_profile

        typer.echo(yaml.safe_dump(load_profile(name).model_dump(mode="json"), sort_keys=False))
