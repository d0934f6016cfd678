"""Tutorial: training a neural proxy (executed by the test suite; see neural_proxy.rst)."""

# %% effect
import torch

from grafx_core import get_processor

drive = get_processor("pedalboard:distortion")  # a black box: one control, drive_db in [0, 48]
print(drive)

# %% train
from grafx_core.estimators import train_proxy

training = train_proxy(drive, steps=200, batch_size=8, length=2048, learning_rate=3e-3, seed=0,
                       hidden=16, layers=4, progress=False)
proxy = training.proxy
first, last = sum(training.losses[:20]) / 20, sum(training.losses[-20:]) / 20
print(f"proxy loss {first:.3f} -> {last:.3f}")
assert last < 0.5 * first

# %% save
import os
import tempfile

from grafx_core.estimators import load_proxy, save_proxy

with tempfile.TemporaryDirectory() as folder:
    save_proxy(proxy, os.path.join(folder, "distortion.proxy"))
    proxy = load_proxy(os.path.join(folder, "distortion.proxy"))

# %% fit
from grafx_core.estimators import NeuralProxy

proxied = drive.with_estimator(NeuralProxy(proxy))  # the true effect forward, the proxy's gradient backward
print(proxied.gradient_kind)
torch.manual_seed(1)
x = torch.randn(4, 2, 4096) * 0.3  # four nodes, each fitting its own drive
hidden = drive.raw_parameters(drive_db=torch.tensor([6.0, 12.0, 18.0, 24.0]))
with torch.no_grad():
    target = drive(x, **hidden)
raw = {"drive_db": torch.zeros(4, 1, requires_grad=True)}  # the middle of the range, 24 dB
optimiser = torch.optim.Adam(raw.values(), lr=0.1)
for step in range(80):
    optimiser.zero_grad()
    loss = (proxied(x, **raw) - target).pow(2).mean()
    loss.backward()
    optimiser.step()
fitted = drive.natural_parameters(**raw)["drive_db"].detach()
print("fitted drive (dB):", [round(v, 1) for v in fitted.tolist()])
assert (fitted - torch.tensor([6.0, 12.0, 18.0, 24.0])).abs().max() < 3.0
