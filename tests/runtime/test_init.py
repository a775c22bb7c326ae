"""``tlearn.runtime`` still offers every name the single module had, as the same objects."""

import tlearn.runtime
from tlearn.runtime import batch_size, clock, device, hardware

HOMES = {
    device: ["AUTOCAST_DTYPES", "autocast_dtype", "eval_mode", "resolve_device", "seed_everything"],
    hardware: ["available_memory", "cpu_model", "machine"],
    batch_size: ["BatchSizeTuner", "inference_batch_size"],
    clock: ["counting_from_process_start", "seconds_since_process_start", "seconds_spent"],
}


def test_every_name_is_re_exported_from_its_home():
    for home, names in HOMES.items():
        for name in names:
            assert getattr(tlearn.runtime, name) is getattr(home, name), name
    assert sorted(tlearn.runtime.__all__) == sorted(n for names in HOMES.values() for n in names)
