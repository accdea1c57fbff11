"""Run many ``medaug`` command lines in one child process, as the real program would.

Used by ``test_corpus.py`` so that 60+ CLI runs do not each pay the ~2 s
start-up (NumPy, SimpleITK, torch, numba): the child imports medaug once, sets
its address-space limit, and for every job sets ``sys.argv`` and calls
``medaug.cli.main.main()`` exactly as the ``medaug`` script does, with file
descriptors 1 and 2 redirected to files so that C-level output (ITK, GDCM)
is captured as well.

Input (stdin): JSON ``{"limit_bytes": int, "jobs": [{"id": str, "argv": [str, ...]}, ...]}``.
Output (stdout): JSON list of ``{"id", "rc", "stderr", "seconds", "cpu", "maxrss_kb"}`` (wall and CPU
seconds) plus a first entry ``{"id": "__startup__", "seconds": ..., "cpu": ...}``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
import traceback
import warnings

T0 = time.perf_counter()
C0 = time.process_time()


def _run_one(argv: list[str], main) -> tuple[int, str]:
    """Run ``medaug *argv`` in this process; return (exit code, everything written to fd 2)."""
    with tempfile.TemporaryFile() as err, open(os.devnull, "w") as null:
        saved = os.dup(1), os.dup(2)
        saved_py = sys.stdout, sys.stderr
        os.dup2(null.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - restored in the finally below
        # line-buffered, as the interpreter's own stderr (Python >= 3.9): a line written while a reader diverts
        # file descriptor 2 is lost, as it would be for a user
        sys.stderr = open(2, "w", errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115
        sys.argv = ["medaug", *argv]
        try:
            with warnings.catch_warnings():  # fresh "already shown" registries for every job
                rc = main()
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - what a user would see as a traceback
            sys.stderr.write(traceback.format_exc())
            rc = -1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = saved_py
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        err.seek(0)
        return int(rc), err.read().decode("utf-8", "backslashreplace")


def main() -> None:
    spec = json.loads(sys.stdin.read())
    limit = int(spec["limit_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from medaug.cli.main import main as medaug_main

    results = [{"id": "__startup__", "seconds": time.perf_counter() - T0, "cpu": time.process_time() - C0}]
    for job in spec["jobs"]:
        t, c = time.perf_counter(), time.process_time()
        rc, err = _run_one(job["argv"], medaug_main)
        results.append({
            "id": job["id"], "rc": rc, "stderr": err, "seconds": time.perf_counter() - t,
            "cpu": time.process_time() - c,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        })
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
