"""The time budget's clock."""

import time

from tlearn.runtime.clock import counting_from_process_start, seconds_spent


def test_a_command_counts_its_time_from_the_start_of_the_process():
    started = time.perf_counter()
    assert seconds_spent(started) < 1.0  # the Python API counts from the call
    with counting_from_process_start():
        assert seconds_spent(started) > 1.0  # pytest's process has run for longer than that
    assert seconds_spent(started) < 1.0
