"""The POSIX-shell fact collector that runs on each host in one SSH round trip."""

from importlib.resources import files


def script() -> str:
    return (files(__package__) / "collect.sh").read_text()
