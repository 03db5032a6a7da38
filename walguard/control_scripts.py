"""A control's paired remediation script: where it is, what its header says, and whether that
header agrees with the control's declaration.

A script starts with a header of comment lines (a continuation line is indented):

    # control: WG-DIR-004
    # changes: chmod of the archive directory ...
    # disruptive: no (chmod)

It sits in the `remediation/` directory beside its control's directory: the shipped scripts
beside checks/ (REMEDIATION_DIR), a user's beside their own controls directory. The registry
(walguard.controls) checks each declared script when its control registers; remediation
(walguard.remediate) runs the scripts it found there. Below both, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from walguard.paths import REMEDIATION_DIR, remediation_dir_for


@dataclass(frozen=True)
class Script:
    control: str
    path: Path
    changes: str
    disruptive: bool

    def text(self) -> str:
        # Every script, a user control's too, runs with the shipped library of helpers.
        return (REMEDIATION_DIR / "lib" / "common.sh").read_text() + "\n" + self.path.read_text()


def _header(text: str, key: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"# {key}:"):
            parts = [line.split(":", 1)[1].strip()]
            for cont in lines[i + 1 :]:
                if not cont.startswith("#  "):  # continuation lines are indented
                    break
                parts.append(cont[1:].strip())
            return " ".join(parts)
    return ""


def read_script(path: Path) -> Script:
    text = path.read_text()
    return Script(
        control=_header(text, "control"),
        path=path,
        changes=_header(text, "changes"),
        disruptive=_header(text, "disruptive").startswith("yes"),
    )


def scripts(directory: Path = REMEDIATION_DIR) -> dict[str, Script]:
    """The scripts in a directory (by default the shipped ones), by control id (their names)."""
    return {path.stem: read_script(path) for path in sorted(directory.glob("WG-*.sh"))}


def script_path(remediation: str, source: Path | None) -> Path:
    """Where the script a control names (`remediation=`) is: in the remediation/ directory
    beside the directory of the file defining the control (`source`)."""
    directory = remediation_dir_for(source.parent) if source else REMEDIATION_DIR
    return directory / remediation


def paired_script(
    control_id: str, remediation: str, disruptive: bool, source: Path | None
) -> tuple[Script | None, str]:
    """A control's declared script, read and checked against the declaration: (the script, "")
    or (None, why not), the reason one line naming the file."""
    path = script_path(remediation, source)
    if not path.is_file():
        return None, (
            f"{source or control_id}: control {control_id} names the remediation script "
            f"{remediation}, which is not in {path.parent}"
        )
    script = read_script(path)
    if script.control != control_id:
        return None, (
            f"{path}: its header names control {script.control or '(none)'}, not "
            f"{control_id}: a script starts with `# control: {control_id}`"
        )
    if not script.changes:
        return None, (
            f"{path}: the header of control {control_id}'s script does not say what it changes "
            "(`# changes: ...`)"
        )
    if script.disruptive != disruptive:
        said, declared = ("yes", "no") if script.disruptive else ("no", "yes")
        return None, (
            f"{path}: its header says `# disruptive: {said}`, but control {control_id} is "
            f"declared with disruptive={declared == 'yes'}"
        )
    return script, ""
