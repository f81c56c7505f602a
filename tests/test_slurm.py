"""The tiny pipeline (.test/config.yaml: every rule of the workflow, two tiny runs) runs to the
report through profiles/slurm on a real one-node SLURM cluster (Debian's slurm-wlm and munge, started by the test under a temporary folder, with two
GRES GPUs on character devices). Needs root (munged runs as the munge user)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, fixture_config, job_counts, make_idx_dataset
from slurm_cluster import SlurmCluster

PARTITION = "orthojac"
GPU_MODEL = "fake"
SNAKEMAKE_TIMEOUT = 1800


@pytest.fixture
def slurm_cluster():
    with SlurmCluster(partition=PARTITION, gpu_type=GPU_MODEL) as cluster:
        yield cluster


def run_through_slurm(cluster: SlurmCluster, work: Path, configfiles: list, base_env: dict,
                      snakemake: tuple = (sys.executable, "-m", "snakemake"), targets: tuple = ()) -> str:
    """`snakemake --profile profiles/slurm` in `work` with the site placeholders of the profile
    set for the test cluster; returns the log. Status checks start after 2 s instead of 40;
    --verbose logs every sbatch call."""
    env = cluster.env(base_env)
    env.update(
        ORTHOJAC_SLURM_PARTITION=PARTITION,
        ORTHOJAC_SLURM_ACCOUNT="orthojac",
        ORTHOJAC_SLURM_GPU_MODEL=GPU_MODEL,
    )
    args = [*snakemake, "--snakefile", str(REPO / "Snakefile"),
            "--profile", str(REPO / "profiles/slurm"), "--configfile", *map(str, configfiles),
            "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs", "--verbose",
            *targets]
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=SNAKEMAKE_TIMEOUT)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:] + "\n" + cluster.logs()
    return log


def sbatch_calls(log: str) -> list:
    return [line.split("sbatch call: ", 1)[1] for line in log.splitlines() if "sbatch call: sbatch " in line]


def assert_ran_through_slurm(log: str, work: Path, rules: set) -> None:
    """Every job went through sbatch; GPU rules asked for a GPU the plugin's way; each SLURM job
    id has its SLURM log; the report exists."""
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    calls = sbatch_calls(log)
    assert job_ids and len(calls) == len(job_ids), log[-4000:]
    for rule in rules:
        rule_calls = [c for c in calls if f"--comment rule_{rule}" in c]
        assert rule_calls, f"no sbatch call for rule {rule}"
        gpu = rule in ("train", "spectrum")
        assert all((f"--gpus={GPU_MODEL}:1" in c and "--cpus-per-gpu=1" in c) == gpu for c in rule_calls), rule_calls
        assert all(f"-p {PARTITION}" in c and "-A orthojac" in c for c in rule_calls), rule_calls
    slurm_logs = work / ".snakemake/slurm_logs"
    submitted = {p.name.removeprefix("rule_") for p in slurm_logs.iterdir()}
    assert rules <= submitted, submitted
    logged_ids = {p.stem for p in slurm_logs.glob("rule_*/**/*.log")}
    assert set(job_ids) <= logged_ids, (job_ids, logged_ids)
    assert (work / "results/report/index.html").stat().st_size > 10_000


def test_cluster_starts_without_a_system_munge_key(tmp_path):
    """The test cluster makes its own munge key: it starts where /etc/munge/munge.key does not
    exist (hidden here by an empty folder mounted over /etc/munge, in a mount namespace of the
    test's own; the machine's /etc is left as it is)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from slurm_cluster import SlurmCluster\n"
              "import os; assert not os.path.exists('/etc/munge/munge.key')\n"
              "with SlurmCluster(partition='keyless', gpu_type='fake') as cluster:\n"
              "    print(cluster.run('sinfo', '-h', '-o', '%P %T').stdout)")
    hide = f"mount --bind {empty} /etc/munge && " if Path("/etc/munge").is_dir() else ""
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           hide + 'exec "$0" -c "$1" "$2"', sys.executable, script, str(REPO / "tests")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["keyless*", "idle"], proc.stdout


def test_venv_snakemake_in_a_plain_shell_runs_slurm_jobs_with_the_projects_python(slurm_cluster, tmp_path):
    """The README's SLURM command, `.venv/bin/snakemake --profile profiles/slurm`, typed in a shell
    where the virtualenv is not active: the SLURM job (the data rule on generated IDX files) finds
    the project's python, not the `python` first on the shell's PATH."""
    from test_fresh_machine import plain_shell_env

    stub_bin = tmp_path / "bin"
    stub_bin.mkdir()
    files = make_idx_dataset(tmp_path / "mirror")
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(fixture_config(tmp_path / "mirror", files)))
    target = "results/data/fixture/train-images-idx3-ubyte"
    log = run_through_slurm(slurm_cluster, work, [work / "config.yaml"], plain_shell_env(stub_bin),
                            snakemake=(str(Path(sys.executable).parent / "snakemake"),), targets=(target,))
    assert len(re.findall(r"has been submitted with SLURM jobid (\d+)", log)) == 1, log[-4000:]
    assert (work / target).stat().st_size > 0
    assert not (stub_bin / "calls.log").exists(), (stub_bin / "calls.log").read_text()


def test_every_rule_of_the_tiny_pipeline_through_slurm_profile(slurm_cluster, tmp_path, venv_env, capsys):
    """Every rule kind of the workflow (the tiny configuration plans each at least once, on two
    tiny runs) is submitted with sbatch, GPU rules with a GPU, and the report is made."""
    files = make_idx_dataset(tmp_path / "mirror")
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(fixture_config(tmp_path / "mirror", files)))
    start = time.monotonic()
    log = run_through_slurm(slurm_cluster, work, [work / "config.yaml"], venv_env)
    seconds = time.monotonic() - start
    rules = set(job_counts(log)) - {"all", "total"}
    assert {"fetch_data", "fetch_download", "train", "spectrum", "tables", "figures", "h4", "h4_figure",
            "hlav_rnn", "hlav_rnn_table", "hlav_rnn_figure", "hlav_linear", "hlav_deep", "hlav_lstm",
            "report_index", "report_section", "render_page", "report_site"} <= rules, rules
    assert_ran_through_slurm(log, work, rules)
    html = (work / "results/report/index.html").read_text()
    assert "Claims ledger" in html
    # The evidence for the CI log: the sbatch calls (up to --wrap) and the report.
    calls = sbatch_calls(log)
    with capsys.disabled():
        print(f"\n== SLURM: {len(calls)} jobs submitted with sbatch in {seconds:.0f} s")
        for call in calls:
            print("  " + call.split(" --wrap=", 1)[0])
        print(f"== report: {work / 'results/report/index.html'} ({len(html)} characters)")
