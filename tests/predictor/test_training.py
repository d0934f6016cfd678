"""PredictorTrainer: a short run lowers the loss, and a resumed run takes the same steps."""

import pytest
import torch

from grafx_core import Graph, ParameterPredictor, PredictorTrainer, compile_render, multi_resolution_stft_loss
from grafx_core.predictor import step_generator


class Gain(torch.nn.Module):
    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):
        return x * 10 ** (gain_db[:, :, None] / 20)


def level_task():
    """Predict the gain that brings a recording back to its original level (hidden: -12..12 dB)."""
    graph = Graph()
    a, g, o = graph.add("in"), graph.add("gain"), graph.add("out")
    graph.connect(a, g)
    graph.connect(g, o)
    processors = {"gain": Gain()}
    plan = compile_render(graph, processors)

    def loss(model, generator):
        clean = 0.3 * torch.randn(4, 1, 2048, generator=generator)
        hidden_db = 24 * torch.rand(4, 1, 1, generator=generator) - 12
        heard = clean * 10 ** (hidden_db / 20)
        y, _ = plan(model(heard), heard[:, None])
        return multi_resolution_stft_loss(y[:, 0], clean, (256, 1024))

    def predictor():
        torch.manual_seed(0)
        return ParameterPredictor(graph, processors, sample_rate=16000, n_fft=256, n_mels=16, width=16, layers=2,
                                  embedding=16, hidden=32)

    return predictor, loss


@pytest.mark.usefixtures("one_torch_thread")
def test_a_short_training_run_lowers_the_loss():
    make, loss = level_task()
    trainer = PredictorTrainer(make(), loss, learning_rate=1e-2, seed=0)
    losses = trainer.fit(80, progress=False)
    assert len(losses) == 80 and trainer.step == 80
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10]), (losses[:10], losses[-10:])


@pytest.mark.usefixtures("one_torch_thread")
def test_resuming_from_a_checkpoint_takes_the_same_next_steps(tmp_path):
    make, loss = level_task()
    straight = PredictorTrainer(make(), loss, learning_rate=3e-3, seed=5)
    straight.fit(6, progress=False)

    path = tmp_path / "run.pt"
    first = PredictorTrainer(make(), loss, learning_rate=3e-3, seed=5)
    first.fit(3, progress=False, checkpoint=path, checkpoint_every=3)
    resumed = PredictorTrainer(make(), loss, learning_rate=3e-3, seed=5)
    with torch.no_grad():
        for p in resumed.model.parameters():
            p.add_(1.0)  # the checkpoint, not the constructor, must decide where training goes on
    taken = resumed.fit(6, progress=False, checkpoint=path)
    assert resumed.step == 6 and len(taken) == 3
    assert resumed.losses == straight.losses
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    with pytest.raises(Exception, match="seed 5"):
        PredictorTrainer(make(), loss, seed=6).load(path)


def test_each_steps_generator_depends_only_on_the_seed_and_the_step():
    draws = [torch.rand(3, generator=step_generator(seed, step)) for seed, step in ((0, 0), (0, 1), (1, 0), (0, 0))]
    torch.testing.assert_close(draws[0], draws[3], rtol=0, atol=0)
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
