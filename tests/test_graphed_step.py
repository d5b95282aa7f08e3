"""The whole training step as a CUDA graph: the same weights as the eager step, and refused where it cannot run."""

import dataclasses

import pytest
import torch

from conftest import make_model
from semsim.errors import SemsimError
from semsim.presets import get_preset
from semsim.training import Trainer
from semsim.training.graphed_step import GraphedTrainStep
from semsim.training.trainer import make_optimizer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


@cuda
@pytest.mark.parametrize("name", ["gpt-tiny", "splm-multixi-sq3-tiny", "fock-parflm-tiny"])
def test_graphed_steps_equal_eager_steps(name):
    run = get_preset(name)
    cfg = dataclasses.replace(run.model, vocab_size=97)
    torch.manual_seed(0)
    a = make_model(cfg).cuda()
    b = make_model(cfg).cuda()
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = make_optimizer(a, run.train, torch.device("cuda")), make_optimizer(b, run.train, torch.device("cuda"), capturable=True)
    graphed = GraphedTrainStep(b, b, opt_b, 1.0, lambda: torch.autocast("cuda", enabled=False), warmup=2)
    batches = [torch.randint(0, 97, (4, cfg.block_size), device="cuda") for _ in range(6)]
    for i, x in enumerate(batches):  # steps 1-2 eager on a side stream, 3 captures, 4-6 replay
        torch.manual_seed(100 + i)  # the same routing noise for both
        out = a(x, targets=x)
        out.objective.backward()
        torch.nn.utils.clip_grad_norm_(a.parameters(), 1.0)
        opt_a.step()
        opt_a.zero_grad(set_to_none=True)
        torch.manual_seed(100 + i)
        loss, _ = graphed(x, x)
        if "parflm" not in name:  # Gumbel draws inside a replayed graph follow the graph's own offsets
            assert torch.allclose(loss, out.loss, rtol=1e-4, atol=1e-5), i
    assert graphed.graph is not None
    if "parflm" not in name:
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-5)


def test_cuda_graph_on_is_refused_where_it_cannot_run(tmp_path):
    run = get_preset("splm-tiny")
    run.override(["train.progress=false", "train.cuda_graph=true", "train.device=cpu", "train.grad_accum=2"])
    with pytest.raises(SemsimError, match="the device is not CUDA and train.grad_accum > 1"):
        Trainer(run, tmp_path, log=lambda m: None)
    run.override(["train.grad_accum=1", "train.compile=true", "train.compile_mode=reduce-overhead"])
    with pytest.raises(SemsimError, match="the device is not CUDA and compile mode 'reduce-overhead' captures"):
        Trainer(run, tmp_path, log=lambda m: None)
    with pytest.raises(SemsimError, match="cuda_graph"):  # not a yes/no/unset value
        run.override(["train.cuda_graph=sometimes"])


@pytest.mark.parametrize("name", ["splm-multixi-sq3-tiny", "parflm-tiny", "fock-parflm-tiny", "gpt-tiny"])
def test_no_autograd_graph_outlives_a_forward(name):
    """Nothing the model keeps on itself after a training step may hold that step's autograd graph: the next
    step (or a CUDA-graph capture after an eager step, as the trainer does after its causal probe) would
    find stale gradient-accumulation nodes in it."""
    cfg = dataclasses.replace(get_preset(name).model, vocab_size=97)
    model = make_model(cfg)
    x = torch.randint(0, 97, (2, 16))
    out = model(x, targets=x)
    out.loss.backward()
    del out
    held = []
    for mod_name, mod in model.named_modules():
        for key, val in vars(mod).items():
            for t in val.values() if isinstance(val, dict) else val if isinstance(val, (tuple, list)) else (val,):
                if isinstance(t, torch.Tensor) and t.grad_fn is not None:
                    held.append(f"{mod_name or type(model).__name__}.{key}")
    assert not held, held


@cuda
@pytest.mark.parametrize("name", ["splm-multixi-sq3-tiny", "fock-parflm-tiny"])
def test_trainer_runs_graphed_after_its_probe(name, tmp_path):
    run = get_preset(name)
    run.override(["train.steps=6", "train.cuda_graph=true", "train.progress=false", "train.eval_interval=0",
                  "train.ckpt_interval=0", "train.eval_tokens=2048"])
    trainer = Trainer(run, tmp_path, log=lambda m: None)
    result = trainer.fit()
    assert trainer.graph_step is not None and trainer.graph_step.graph is not None  # captured and replayed
    assert result.step == 6 and result.val_loss is not None and torch.isfinite(torch.tensor(result.val_loss))
