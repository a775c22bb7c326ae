"""The batched inference engine: outputs collected in order, a tuned batch size that changes nothing."""

import torch

from tlearn.inference.engine import OutputRows, batched_inference
from tlearn.runtime.batch_size import BatchSizeTuner


def test_a_tuned_evaluation_gives_the_outputs_of_a_fixed_batch_size():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    inputs = torch.randn(BatchSizeTuner.MIN_SAMPLES + 5, 1, 8, 8)
    tuned = batched_inference(model, None, inputs, fold=False)
    fixed = batched_inference(model, None, inputs, batch_size=64, fold=False)
    assert tuned.shape == (len(inputs), 3)
    torch.testing.assert_close(tuned, fixed, atol=1e-5, rtol=1e-5)


def test_output_rows_hold_the_batches_in_order_in_one_cpu_tensor():
    batches = [torch.randn(n, 3, 2) for n in (4, 4, 1)]
    rows = OutputRows(9)
    for batch in batches:
        rows.add(batch)
    assert torch.equal(rows.result(), torch.cat(batches)) and rows.result().device.type == "cpu"
    assert OutputRows(5).result().numel() == 0  # nothing added: an empty result, as torch.cat of none
