"""Functions run in other processes by the tests (importable by spawned children)."""
import pickle


def continue_tracker(pickled_state, images, labels, size):
    """Unpickle a tracker in this (separate) process, feed it the rest of the batches,
    report once, and send it back pickled."""
    import os
    tracker = pickle.loads(pickled_state)
    for lo in range(0, len(images), size):
        tracker.update(images[lo:lo + size], labels[lo:lo + size])
    tracker.report()
    return os.getpid(), pickle.dumps(tracker)


def python_dropout(clean, key):
    """Dropout written in Python for MonteCarloNoise(corrupt=...): keep each value with
    probability 0.75, randomness derived from the key only."""
    import numpy as np
    rng = np.random.default_rng([key["seed"], key["first_row"], key["draw"]])
    return clean * (rng.random(clean.shape) >= 0.25)


def failing_corruption(clean, key):
    if key["first_row"] >= 200:
        raise RuntimeError("sensor offline")
    return clean
