"""Jobs beyond one process: run folders trained as jobs of submitit's executors, a Slurm job
array on a cluster or local processes where no Slurm exists (the same code path, so a laptop
and CI exercise what a cluster runs).

    vaekit sweep --beta 0 1 4 --seeds 3 --launcher slurm --partition gpu --gpus 1 --out SWEEP
    vaekit demo disentanglement --seeds 3 --launcher local

Each job trains one run folder (`run_jobs`); its logs are in OUT/jobs (JOBID_0_log.out and .err,
or JOBID_TASK_0_log.* for a Slurm array's task). A finished folder is never submitted again (the
caller skips it); an unfinished sweep run resumes in its job, an unfinished demo model trains
again from its start. A failed job stops the wait with one sentence naming the run and the path
to its log.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from vaekit.errors import VaekitError, check

LAUNCHERS = ("local", "slurm")


def check_launcher(launcher: str) -> None:
    """Refuse (`VaekitError`), before anything is written, a launcher that is not one of
    `LAUNCHERS`, a missing submitit, or --launcher slurm on a machine without Slurm's commands."""
    import shutil

    check(launcher in LAUNCHERS, f"--launcher must be one of {', '.join(LAUNCHERS)}, not {launcher!r}.")
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise VaekitError('--launcher needs submitit; pip install "vaekit[launch]".') from None
    check(
        launcher != "slurm" or (shutil.which("sbatch") and shutil.which("srun")),
        "--launcher slurm needs Slurm's sbatch and srun, and this machine has none; run it on the "
        "cluster's login node, or use --launcher local.",
    )


def slurm_parameters(resources: dict, job_name: str = "vaekit") -> dict:
    """submitit's Slurm parameters for one run per job, from `resources`: partition, time_min
    (minutes per run, default 60), gpus (per run, default 0), mem_gb, cpus (per run, default 2)."""
    out = {
        "job_name": job_name,
        "time": int(resources.get("time_min") or 60),
        "cpus_per_task": int(resources.get("cpus") or 2),
        "gpus_per_node": int(resources.get("gpus") or 0),
    }
    if resources.get("partition"):
        out["partition"] = str(resources["partition"])
    if resources.get("mem_gb"):
        out["mem"] = f"{int(resources['mem_gb'])}GB"
    return out


def slurm_script(n_runs: int, resources: dict, folder, job_name: str = "vaekit") -> str:
    """The sbatch script that `run_jobs` submits for `n_runs` runs with --launcher slurm (one job
    array, one task per run), as submitit writes it from `slurm_parameters`: for checking a job
    description without a cluster. A sweep's jobs are named vaekit-sweep, the demo's
    vaekit-demo."""
    from submitit.slurm import slurm

    command = "python -u -m submitit.core._submit " + str(folder)
    return slurm._make_sbatch_string(
        command, folder, map_count=n_runs, **slurm_parameters(resources, job_name)
    )


def run_jobs(
    fn,
    todo: list[tuple[tuple, str]],
    logs: Path,
    launcher: str,
    resources: dict | None = None,
    progress: bool = True,
    job_name: str = "vaekit",
    at_once: int | None = None,
) -> None:
    """Call `fn(*args, threads)` for each (args, run folder) of `todo` as one job of submitit's
    `launcher` executor, logs under `logs`, and wait for them all. "local": at most `at_once`
    processes at a time (all of them when None), `threads` the CPUs split between them, no time
    limit unless resources["time_min"]; "slurm": one job array that the cluster schedules,
    `threads` = resources["cpus"] (default 2), a failure said once every task has ended. Raises
    `VaekitError` for a scheduler that refuses the jobs, or naming the first run whose job failed
    and the path to its log."""
    import submitit

    check_launcher(launcher)
    if not todo:
        return
    resources = resources or {}
    logs = Path(logs)
    if launcher == "local":
        executor = submitit.LocalExecutor(folder=logs)
        if resources.get("time_min"):  # a limit only when one is asked for: a laptop's jobs may be slow
            executor.update_parameters(timeout_min=int(resources["time_min"]))
        at_once = max(1, min(at_once or len(todo), len(todo)))
        threads = max(1, (os.cpu_count() or 1) // at_once)
        tasks = [(fn, args, threads, folder) for args, folder in todo]
        waves = [tasks[i : i + at_once] for i in range(0, len(tasks), at_once)]
        how = f"{len(todo)} local jobs, {at_once} at a time"
    else:
        executor = submitit.SlurmExecutor(folder=logs)
        executor.update_parameters(**slurm_parameters(resources, job_name))
        threads = int(resources.get("cpus") or 2)
        waves = [[(fn, args, threads, folder) for args, folder in todo]]
        how = f"{len(todo)} slurm jobs (one job array)"
    if progress:
        print(f"{how}, logs in {logs}", flush=True)
    if launcher != "local":
        _wait(executor, waves, launcher, progress)
        return
    # a local job is a child of this process: stopping here (Ctrl-C, or a kill's SIGTERM) stops it
    stop = signal.getsignal(signal.SIGTERM)
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        signal.signal(signal.SIGTERM, _interrupted)
    jobs: list = []
    try:
        _wait(executor, waves, launcher, progress, jobs)
    except BaseException:
        for job in jobs:
            if not job.done():
                job.cancel(check=False)
        raise
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, stop)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def _wait(executor, waves, launcher: str, progress: bool, jobs: list | None = None) -> None:
    """Submit each wave of (fn, args, threads, folder) and wait for it, the first failure said when
    its wave has ended; `jobs` collects the submitted jobs."""
    import submitit

    jobs = jobs if jobs is not None else []
    for wave in waves:
        try:
            with executor.batch():
                submitted = [
                    (executor.submit(fn, *args, threads), folder) for fn, args, threads, folder in wave
                ]
            jobs.extend(job for job, _ in submitted)
        except submitit.core.utils.FailedJobError as err:  # sbatch refused the array
            said = (str(err).strip().splitlines() or ["no reason given"])[-1][:300]
            raise VaekitError(
                f"The {launcher} scheduler refused the jobs ({said}); check --partition, --time-min, --gpus "
                "and --mem-gb against what the cluster allows."
            ) from None
        failed = []
        for job, folder in submitted:  # every job of the wave ends before a failure is said
            try:
                job.result()
            except submitit.core.utils.UncompletedJobError:
                failed.append((job, folder))
                continue
            if progress:
                print(f"{Path(folder).name} done (job {job.job_id})", flush=True)
        if failed:
            job, folder = failed[0]
            others = f" ({len(failed) - 1} more failed; their logs are beside it)" if len(failed) > 1 else ""
            raise VaekitError(
                f"The run {folder} failed in its {launcher} job {job.job_id}; its log: {job.paths.stderr}"
                f"{others} (run the same command again to resume; finished runs are kept)."
            )


__all__ = ["LAUNCHERS", "check_launcher", "run_jobs", "slurm_parameters", "slurm_script"]
