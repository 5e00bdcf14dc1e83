"""A one-node SLURM on this machine for the SLURM tests (Debian's slurm-wlm and munge, as root): its own munged
as user munge (socket, pid, seed and log in a folder of its own under /run, named in slurm.conf's
``AuthInfo=socket=``, so two suites on one machine never share or stop each other's; ``cred_expire=20``: a
requeued job may start again 20 s after its requeue instead of SLURM's 120, and no earlier: a job started again
sooner, in the same second as the revocation of its old credentials, is killed as "Job credential revoked"),
then slurmctld and slurmd
with a slurm.conf in a temporary directory (SLURM_CONF). :func:`start` returns the environment to use and a stop
function that ends the daemons it started and removes munged's folder; or raises RuntimeError with the reason it
cannot start (no binaries, not root, a daemon that does not come up)."""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONF = """ClusterName=xling
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock},cred_expire=20
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
ReturnToService=2
MpiDefault=none
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
JobRequeue=1
KillWait=30
MinJobAge=300
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond, seconds: float) -> bool:
    end = time.time() + seconds
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.3)
    return False


def start(root: Path, cpus: int = 2):
    for b in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol"):
        if shutil.which(b) is None:
            raise RuntimeError(f"{b} not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise RuntimeError("the local SLURM starts as root only")
    root = Path(root)
    for d in ("state", "spool"):
        (root / d).mkdir(parents=True, exist_ok=True)
    started: list[int] = []
    munge = pwd.getpwnam("munge")
    if not Path("/etc/munge/munge.key").exists():
        raise RuntimeError("no /etc/munge/munge.key (reinstall munge)")
    mdir = Path(tempfile.mkdtemp(prefix="xling-munge.", dir="/run"))  # munged refuses a folder others may enter
    os.chown(mdir, munge.pw_uid, munge.pw_gid)
    os.chmod(mdir, 0o755)
    sock = mdir / "munge.socket"
    p = subprocess.Popen(["munged", "--foreground", f"--socket={sock}", f"--pid-file={mdir / 'munged.pid'}",
                          f"--seed-file={mdir / 'munged.seed'}", f"--log-file={mdir / 'munged.log'}"],
                         preexec_fn=lambda: (os.setgid(munge.pw_gid), os.setuid(munge.pw_uid)),
                         stdout=subprocess.DEVNULL, stderr=open(root / "munged.log", "w"))
    started.append(p.pid)

    def stop_all():
        stop(started)
        shutil.rmtree(mdir, ignore_errors=True)

    if not _wait(sock.exists, 10):
        stop_all()
        raise RuntimeError(f"munged did not start: {(root / 'munged.log').read_text()[-500:]}")
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(CONF.format(host=host, root=root, cpus=cpus, ctld_port=_free_port(), d_port=_free_port(),
                                sock=sock))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    for daemon in ("slurmctld", "slurmd"):
        p = subprocess.Popen([daemon, "-D", "-f", str(conf)] + (["-i"] if daemon == "slurmctld" else []), env=env,
                             stdout=open(root / f"{daemon}.out", "w"), stderr=subprocess.STDOUT)
        started.append(p.pid)
    up = _wait(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                                                text=True).stdout, 30)
    if not up:
        tail = "".join((root / f).read_text()[-400:] for f in ("slurmctld.out", "slurmd.out") if (root / f).exists())
        stop_all()
        raise RuntimeError(f"slurm did not come up: {tail}")
    return env, stop_all


def stop(pids: list[int]) -> None:
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(50):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:
                break
            time.sleep(0.1)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
