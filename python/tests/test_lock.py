"""The checkpoint lock (recalign.CheckpointLock, io/lock.hpp) and recalign.hooks.track holding
it: a second run on one checkpoint, from another process or this one, is refused naming the
first's pid and changes nothing; a SIGKILLed run's lock dies with it; a run that raises lets go."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import recalign

# A run in another process: track over batches that pause after the second one (printing
# "ready" while it holds the lock) until a line arrives on stdin.
CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import recalign

    def batches():
        rng = np.random.default_rng(1)
        for i in range(4):
            if i == 2:
                print("ready", flush=True)
                sys.stdin.readline()
            yield rng.normal(size=(10, 5))

    recalign.track(batches(), recalign.MomentAccumulator(5), checkpoint=sys.argv[1], every=1)
""")


def start_child(path):
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def rows(n=10, seed=2):
    return np.random.default_rng(seed).normal(size=(n, 5))


def test_second_track_from_another_process_is_refused_naming_its_pid(tmp_path):
    path = str(tmp_path / "run.ckpt")
    child = start_child(path)
    try:
        with open(path, "rb") as f:
            before = f.read()  # the child saved after each of its first two batches
        assert open(path + ".lock").read() == f"{child.pid}\n"
        for resume in (False, True):
            with pytest.raises(recalign.LockError) as e:
                recalign.track([rows()], recalign.MomentAccumulator(5), checkpoint=path, resume=resume)
            assert e.value.pid == child.pid and e.value.file == path
            assert f"process {child.pid}" in str(e.value) and path in str(e.value)
            assert isinstance(e.value, BlockingIOError)
        with open(path, "rb") as f:
            assert f.read() == before  # the refused runs wrote nothing
    finally:
        child.stdin.write("go\n")
        child.stdin.close()
        assert child.wait(timeout=60) == 0
    # The child let go when it returned: the checkpoint can be resumed here.
    assert not os.path.exists(path + ".lock")
    acc = recalign.track([rows()] * 5, recalign.MomentAccumulator(5), checkpoint=path, resume=True)
    assert acc.n == 50


def test_a_killed_run_does_not_block_the_next(tmp_path):
    path = str(tmp_path / "run.ckpt")
    child = start_child(path)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert open(path + ".lock").read() == f"{child.pid}\n"  # stale: the child had no chance to clean up
    acc = recalign.track([rows(seed=s) for s in range(4)], recalign.MomentAccumulator(5), checkpoint=path,
                         resume=True)
    assert acc.n == 40 and recalign.MomentAccumulator.load(path).n == 40
    assert not os.path.exists(path + ".lock")


def test_in_one_process_a_held_lock_refuses_track_and_a_failed_run_lets_go(tmp_path):
    path = tmp_path / "run.ckpt"
    with recalign.CheckpointLock(path) as lock:
        assert lock.held and lock.lock_path == str(path) + ".lock"
        with pytest.raises(recalign.LockError) as e:
            recalign.track([rows()], recalign.MomentAccumulator(5), checkpoint=path)
        assert e.value.pid == os.getpid()
        assert not path.exists()
    assert not lock.held

    bad = rows()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        recalign.track([bad], recalign.MomentAccumulator(5), checkpoint=path)
    recalign.CheckpointLock(path).release()  # free again after the exception

    # Without a checkpoint no lock is involved.
    assert recalign.track([rows()], recalign.MomentAccumulator(5)).n == 10
