"""Snapshot a finished run of the pipeline as a reference: its tables, figures, report pages, the
ledger, and a manifest of how it was made.

    python -m orthojac reference snapshot results --out results/reference/cpu \
        --command "make reference" --wall-seconds 4200 --log .snakemake/log/….snakemake.log
    python -m orthojac reference part-manifest paper --configfile config/cpu.yaml --out … --log …
    python -m orthojac reference check-report --configfile config/cpu.yaml --out results/reference/cpu

The snapshot mirrors `results/`' layout (`tables/`, `figures/`, `report/`; not `report_site/`,
which holds the same pages again, for `--report`), so
`python -m orthojac compare` reads a snapshot and a results folder alike. No checkpoints, no
weights: only what the report is made of. `manifest.json` records the commit (and whether the
working tree had changes), the CPU model and cores, torch, Python, the date, the command, the
wall time in all and per rule (from Snakemake's log: each job's start to its finish), and what
decides the rounding of a CPU run (`rounding`: the pins of ROUNDING_PINS as set, torch's CPU
capability, the BLAS, the CPU's vendor and vector extensions, threads).

In parts (a config's `reference_parts:`, `make reference PART=NAME`): each part's Snakemake
invocation trains only its jobs and `part-manifest` writes OUT/manifest-<part>.json (the manifest
above, with the part's name and jobs); `check-report` refuses the report step unless every part's
manifest is there, clean and pinned, on this checkout's commit or on one whose code that decides
results is the same (result_code_changes), and Snakemake's dry run plans no part's job; `snapshot --parts …` keeps those manifests and gathers them into manifest.json
(`parts`, wall time and rules' times summed). `parts` prints a config's parts, in order.

Bit for bit on Intel x86-64 machines. A trained network amplifies the last bit of every sum, and
the last bit depends on which kernels run: torch picks its vectorised kernels by the CPU's
capability (AVX2 or AVX-512), oneDNN and MKL pick theirs too, and threads change the order of
sums. `make reference` runs every job under ROUNDING_PINS (`python -m orthojac reference pins`
prints them as `NAME=value` for `env`): ATEN_CPU_CAPABILITY=avx2 (torch's kernels: AVX2, which
every x86-64 CPU since 2013–2015 has), ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN's), MKL_CBWR=AVX2 (MKL's
conditional numerical reproducibility, AVX2 branch; Intel documents it for Intel CPUs, on others
MKL may use its automatic branch, so the manifest records the CPU vendor), and one thread
(OMP_NUM_THREADS, MKL_NUM_THREADS; each job also asks torch for one). With the same torch, MKL
and oneDNN (requirements.lock), these give the same bits on Intel's AVX-512 and AVX2 machines
alike. On an AMD EPYC the whole reference gave every verdict again but not the last bits
(results/reference/reruns/amd-epyc-2026-12-05/). A rerun records its own `rounding`, and
`python -m orthojac compare` names what differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The reference's pieces, each importable from here as before: the pins and the environment, the
# snapshot and its manifests, the parts and the report step's check.
from .env import (CPU_FLAGS, FINISHED, JOBID, ROUNDING_PINS, STAMP, START, blas_info,  # noqa: F401
                  cpu_info, cpu_model, git_state, merge_rule_times, pins_for_env, rounding, rule_times)
from .parts import (NOT_RESULT_CODE, NOT_RESULT_PACKAGES, RESULT_PATHS, ROOT,  # noqa: F401
                    THESIS_PROGRAMS, check_report, config_parts, job_counts, parts_errors,
                    result_code_changes)
from .snapshot import (PARTS, gather_parts, manifest, part_manifest_path, snapshot,  # noqa: F401
                       write_part_manifest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orthojac reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command_name", required=True)
    sn = sub.add_parser("snapshot", help="copy a results folder's report material and write a manifest")
    sn.add_argument("results", type=Path, help="the pipeline's results folder")
    sn.add_argument("--out", type=Path, required=True, help="the snapshot folder (replaced)")
    sn.add_argument("--command", default="", help="the command that produced the results")
    sn.add_argument("--wall-seconds", type=float, default=None, help="wall time of that command")
    sn.add_argument("--log", type=Path, nargs="*", default=None,
                    help="Snakemake's log(s) of that command (per-rule times, summed over the logs)")
    sn.add_argument("--note", action="append", default=[], help="a line for the manifest's notes (repeatable)")
    sn.add_argument("--parts", nargs="+", default=None,
                    help="the reference's parts whose manifests (OUT/manifest-<part>.json) it gathers")
    sub.add_parser("pins", help="print the rounding pins as NAME=value (for env) and exit")
    ps = sub.add_parser("parts", help="print the config's reference parts, one a line, and exit")
    ps.add_argument("--configfile", type=Path, nargs="+", required=True)
    ps.add_argument("--clean", action="store_true",
                    help="refuse a checkout with uncommitted changes (the report step would refuse it after the parts)")
    pm = sub.add_parser("part-manifest", help="write OUT/manifest-<part>.json for one part's invocation")
    pm.add_argument("part")
    pm.add_argument("--configfile", type=Path, nargs="+", required=True)
    pm.add_argument("--out", type=Path, required=True, help="the snapshot folder (only that file is written)")
    pm.add_argument("--command", default="")
    pm.add_argument("--wall-seconds", type=float, default=None)
    pm.add_argument("--log", type=Path, nargs="*", default=None)
    cr = sub.add_parser("check-report", help="refuse the report step unless every part is made, on this commit, "
                        "clean and pinned, and nothing would be trained again; print the parts")
    cr.add_argument("--configfile", type=Path, nargs="+", required=True)
    cr.add_argument("--out", type=Path, required=True)
    cr.add_argument("--allow-dirty", action="store_true", help="accept uncommitted changes (recorded as dirty)")
    args = parser.parse_args(argv)
    if args.command_name == "pins":
        print(pins_for_env())
        return
    if args.command_name == "parts":
        parts = config_parts(args.configfile)[1]
        if args.clean and git_state(Path.cwd())["dirty"]:
            raise SystemExit("make reference: this checkout has uncommitted changes (src, config, workflow, Snakefile, "
                             "notebooks), which the report step refuses: commit them first, or set ALLOW_DIRTY=1")
        print("\n".join(parts))
        return
    if args.command_name == "part-manifest":
        parts = config_parts(args.configfile)[1]
        if args.part not in parts:
            raise SystemExit(f"{args.part!r} is not a part of reference_parts: (have {sorted(parts)})")
        info = write_part_manifest(args.out, args.part, parts[args.part], args.command, args.wall_seconds, args.log)
        print(f"{part_manifest_path(args.out, args.part)}: part {args.part} at {info['commit'][:12]}"
              f"{' (uncommitted changes)' if info['dirty'] else ''}", file=sys.stderr)
        return
    if args.command_name == "check-report":
        print(" ".join(check_report(args.configfile, args.out, args.allow_dirty)))
        return
    info = snapshot(args.results, args.out, args.command, args.wall_seconds, args.log, args.note, args.parts)
    if not info["rounding"]["pinned"]:
        print(f"warning: not every rounding pin was set ({pins_for_env()}): this snapshot is reproducible "
              "bit for bit only on a CPU like this one (see manifest.json's rounding)", file=sys.stderr)
    print(f"{args.out}: snapshot of {args.results} at {info['commit'][:12]}"
          f"{' (uncommitted changes)' if info['dirty'] else ''}", file=sys.stderr)

