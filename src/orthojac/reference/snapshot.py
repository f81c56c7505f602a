"""A reference's snapshot and manifests (orthojac.reference): `results/`' report material copied
with manifest.json, and the manifest of each of the reference's parts (manifest-<part>.json),
gathered into the report step's manifest."""

from __future__ import annotations

import json
import os
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path

from .env import cpu_model, git_state, merge_rule_times, rounding

PARTS = ("tables", "figures", "report")


def manifest(results: Path, command: str, wall_seconds: float | None, log: Path | list[Path] | None,
             notes: list[str] | None = None) -> dict:
    import torch  # the environment's torch, as the runs recorded it

    logs = [] if log is None else [log] if isinstance(log, (str, Path)) else list(log)
    rules = merge_rule_times(logs)
    return {
        **git_state(Path.cwd()),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wall_seconds": wall_seconds,
        "rounding": rounding(),
        "rules": rules,
        "snakemake_logs": [Path(p).name for p in logs],
        "notes": notes or [],
    }


def snapshot(results: Path, out: Path, command: str, wall_seconds: float | None,
             log: Path | list[Path] | None, notes: list[str] | None = None,
             reference_parts: list[str] | None = None) -> dict:
    """Copy results' PARTS into `out` (replacing what was there) and write out/manifest.json.

    reference_parts: the names of the reference's parts whose manifests (out/manifest-<part>.json,
    written by write_part_manifest) this snapshot gathers: they are kept beside manifest.json,
    which lists them under `parts` and counts their wall time and rules' times with this step's
    (`report_wall_seconds`, `report_rules`: this step alone). Without it, no part manifest is kept."""
    missing = [p for p in PARTS if not (results / p).is_dir()]
    if missing:
        raise SystemExit(f"{results}: no {', '.join(missing)}: run the pipeline first")
    info = manifest(results, command, wall_seconds, log, notes)
    part_files = [part_manifest_path(out, part) for part in reference_parts or []]
    if reference_parts is not None:
        absent = [str(p) for p in part_files if not p.is_file()]
        if absent:
            raise SystemExit(f"no manifest of the part(s) {absent}: make each part first (make reference PART=…)")
        manifests = {part: json.loads(p.read_text()) for part, p in zip(reference_parts, part_files)}
        info = gather_parts(info, manifests)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for part in PARTS:
        # The executed notebooks beside the pages are Snakemake's logs of rendering them: they hold
        # the injected cell with this machine's absolute paths, and the pages are made from them.
        shutil.copytree(results / part, staging / part, ignore=shutil.ignore_patterns("*.ipynb"))
    for path in part_files:
        shutil.copy2(path, staging / path.name)
    (staging / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return info


# -- the reference in parts (config `reference_parts:`, `make reference PART=NAME`) -------------
def part_manifest_path(out: Path, part: str) -> Path:
    """Where part `part`'s manifest goes in the snapshot folder `out`."""
    return Path(out) / f"manifest-{part}.json"


def write_part_manifest(out: Path, part: str, jobs: list[str], command: str, wall_seconds: float | None,
                        log: Path | list[Path] | None) -> dict:
    """out/manifest-<part>.json: the manifest of one part's invocation (as manifest(): commit,
    dirty flag, command, wall time, rules' times, rounding, CPU) with the part's name and the
    experiments and sections it made (`jobs`). The rest of `out` is left as it is."""
    info = {"part": part, "jobs": list(jobs), **manifest(Path("results"), command, wall_seconds, log)}
    path = part_manifest_path(out, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(info, indent=2) + "\n")
    partial.rename(path)
    return info


def gather_parts(info: dict, manifests: dict[str, dict]) -> dict:
    """The report step's manifest `info` with the parts' `manifests` ({part: manifest}) counted in:
    `parts` (each part's commit, dirty flag, date, command, wall time, jobs), `wall_seconds` and
    `rules` summed over the parts and this step, this step's own as `report_wall_seconds` and
    `report_rules`."""
    rules: dict[str, dict] = {}
    for m in [*manifests.values(), info]:
        for rule, t in m.get("rules", {}).items():
            acc = rules.setdefault(rule, {"jobs": 0, "seconds": 0.0, "unfinished": 0})
            for key in acc:
                acc[key] += t.get(key, 0)
    walls = [m.get("wall_seconds") for m in [*manifests.values(), info]]
    return {**info, "wall_seconds": sum(walls) if None not in walls else None,
            "rules": {rule: rules[rule] for rule in sorted(rules)},
            "report_wall_seconds": info["wall_seconds"], "report_rules": info["rules"],
            "parts": {part: {key: m.get(key) for key in ("commit", "dirty", "date", "command", "wall_seconds", "jobs")}
                      | {"manifest": part_manifest_path(Path(), part).name} for part, m in manifests.items()}}
