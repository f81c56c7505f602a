"""A real one-node SLURM cluster (Debian's slurm-wlm + munge) started by hand, without systemd,
with all its state in one temporary folder, and stopped by PID.

What the set-up needs (found on Debian 12: slurm-wlm 22.05.8, munge 0.5.15): munged runs as the
munge user with an o+x socket folder (munged refuses a socket folder others cannot enter) and a
key of its own, made by `mungekey` in that folder (no /etc/munge/munge.key needed), slurmd
is named `localhost` (`-N localhost`: the host name is not in slurm.conf), the GPUs are GRES on
character devices (`File=` must be a device: /dev/null and /dev/zero stand in for two cards; with
no `File=` slurmd reports 0 GPUs and the node drains), MinJobAge=600 so that `squeue` still sees
finished jobs (there is no slurmdbd, so no `sacct`), and an `srun` wrapper puts SLURM_CONF back
inside jobs, because the executor's jobstep plugin strips every other SLURM_* variable before its
nested srun.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

FAKE_GPUS = ("/dev/null", "/dev/zero")
DAEMON_STOP_SECONDS = 20


def _free_ports(n: int) -> list[int]:
    """n ports free now, all different: each socket stays bound until all n are chosen."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _real_memory_mb() -> int:
    """80 % of MemTotal: slurmd drains a node that reports less memory than configured."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 8 // 10
    raise RuntimeError("/proc/meminfo: no MemTotal line")


class SlurmCluster:
    """`with SlurmCluster(partition="debug", gpu_type="fake") as cluster:` starts munged, slurmctld and slurmd;
    `cluster.env(base)` is an environment for clients (sbatch, squeue, snakemake)."""

    def __init__(self, partition: str, gpu_type: str):
        self.partition = partition
        self.gpu_type = gpu_type
        self.root = Path(tempfile.mkdtemp(prefix="orthojac-slurm-"))
        self.slurm = self.root / "slurm"
        self.munge = self.root / "munge"
        self.conf = self.slurm / "slurm.conf"
        self.bin = self.slurm / "bin"
        self.pid_files = [
            self.slurm / "run/slurmd.pid",
            self.slurm / "run/slurmctld.pid",
            self.munge / "munged.pid",
        ]

    # -- configuration -------------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("state", "spool", "log", "run", "bin"):
            (self.slurm / sub).mkdir(parents=True)
        s = self.slurm
        cpus = os.cpu_count() or 1
        ctld_port, slurmd_port = _free_ports(2)
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=orthojac",
                    "SlurmctldHost=localhost",
                    "SlurmUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge}/munge.socket.2",
                    "MpiDefault=none",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "ReturnToService=2",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={slurmd_port}",
                    f"StateSaveLocation={s}/state",
                    f"SlurmdSpoolDir={s}/spool",
                    f"SlurmctldPidFile={s}/run/slurmctld.pid",
                    f"SlurmdPidFile={s}/run/slurmd.pid",
                    f"SlurmctldLogFile={s}/log/slurmctld.log",
                    f"SlurmdLogFile={s}/log/slurmd.log",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    "MinJobAge=600",
                    "GresTypes=gpu",
                    f"NodeName=localhost NodeHostname=localhost CPUs={cpus} "
                    f"RealMemory={_real_memory_mb()} Gres=gpu:{self.gpu_type}:{len(FAKE_GPUS)} State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes=localhost Default=YES "
                    "MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        (s / "gres.conf").write_text(
            "AutoDetect=off\n"
            + "".join(f"NodeName=localhost Name=gpu Type={self.gpu_type} File={dev}\n" for dev in FAKE_GPUS)
        )
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nexport SLURM_CONF={self.conf}\nexec /usr/bin/srun "$@"\n')
        srun.chmod(0o755)

    def env(self, base: dict) -> dict:
        """`base` with SLURM_CONF set, the srun wrapper first on PATH (sbatch --export=ALL
        carries both into the jobs), and /usr/sbin and /sbin last, where Debian puts runuser,
        munged, slurmctld and slurmd (a non-login root shell may not have them on PATH)."""
        env = dict(base)
        env["SLURM_CONF"] = str(self.conf)
        path = [str(self.bin), *env.get("PATH", "").split(os.pathsep)]
        path += [d for d in ("/usr/sbin", "/sbin") if d not in path]
        env["PATH"] = os.pathsep.join(p for p in path if p)
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), env=self.env(os.environ), capture_output=True, text=True, check=check, timeout=60
        )

    # -- daemons -------------------------------------------------------------------------------
    def start(self) -> None:
        self.root.chmod(0o755)
        self._write_config()
        self.munge.mkdir(mode=0o755)
        key = self.munge / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], env=self.env(os.environ), check=True,
                       capture_output=True, text=True, timeout=30)
        key.chmod(0o400)
        shutil.chown(key, "munge", "munge")
        shutil.chown(self.munge, "munge", "munge")
        m = self.munge
        subprocess.run(
            ["runuser", "-u", "munge", "--", "munged", f"--socket={m}/munge.socket.2",
             f"--key-file={key}", f"--log-file={m}/munged.log", f"--pid-file={m}/munged.pid",
             f"--seed-file={m}/munged.seed"],
            env=self.env(os.environ), check=True, capture_output=True, text=True, timeout=30,
        )
        self.run("slurmctld", "-c", "-i")
        self._wait_for(lambda: self.run("sinfo", "-h", check=False).returncode == 0, "slurmctld answering")
        self.run("slurmd", "-N", "localhost")
        self._wait_for(self._node_idle, "node localhost idle")

    def _node_idle(self) -> bool:
        state = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
        if "inval" in state or "drain" in state:
            self.run("scontrol", "update", "nodename=localhost", "state=resume", check=False)
        return state == "idle"

    def _wait_for(self, condition, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"SLURM test cluster: {what} not reached in {seconds} s\n{self.logs()}")
            time.sleep(0.5)

    def logs(self) -> str:
        texts = []
        for log in sorted(self.slurm.glob("log/*.log")) + [self.munge / "munged.log"]:
            if log.exists():
                texts.append(f"--- {log.name}\n{log.read_text()[-3000:]}")
        return "\n".join(texts)

    def stop(self) -> None:
        """Cancel what is still queued or running, then stop each daemon by its PID."""
        if self.conf.exists() and (self.slurm / "run/slurmctld.pid").exists():
            self.run("scancel", "--partition", self.partition, check=False)
        for pid_file in self.pid_files:
            if not pid_file.exists():
                continue
            pid = int(pid_file.read_text().strip())
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + DAEMON_STOP_SECONDS
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.2)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SlurmCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
