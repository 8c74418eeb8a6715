"""pty-chi 2.2 LSQML (Poisson noise model) on one split of a dose-overlap study file.

Usage: python ptychi_lsqml_study.py SPLIT_NPZ OUT_NPZ [EPOCHS] [BATCH] [THREADS]

SPLIT_NPZ is a DATA-001 file of the toolkit (e.g. STUDY/phase_c/dose_1000/patched_test.npz):
amplitudes a = sqrt(counts) / s with s = _metadata.intensity_scale, patch centres xcoords /
ycoords, the probe fixed at probeGuess, the object started at ones on the objectGuess grid (as
the native solver does). pty-chi gets the counts themselves (a s)^2 and the probe scaled by
s / N (its FFT is unnormalised; ours is orthonormal), so its Poisson model sees the real counts.
Positions: the native solver's integer top-left corners t = round(c - N/2), converted to
pty-chi's probe-centre coordinates (see ../shared/peers/bench_ptychi.py).

Writes OUT_NPZ with `object` (complex64, the objectGuess grid) for `dose-overlap score`, and
prints one line `RESULT {json}`: seconds per epoch (median), the loss per epoch.
"""
import json
import sys
import time

import numpy as np
import torch
import ptychi.api as api
from ptychi.api.task import PtychographyTask

src, out = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 100
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 100
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
torch.set_num_threads(threads)

d = np.load(src)
meta = json.loads(str(d["_metadata"]))
s = float(meta["intensity_scale"])
amp = d["diffraction"].astype(np.float32)
counts = np.round((amp.astype(np.float64) * s) ** 2).astype(np.float32)
probe = d["probeGuess"].astype(np.complex64)
truth = d["objectGuess"]
n, N = counts.shape[0], counts.shape[-1]
H, W = truth.shape
ty = np.round(d["ycoords"] - N / 2)
tx = np.round(d["xcoords"] - N / 2)
pos_y = (ty + (N - 1) / 2 - (round(H / 2) - 0.5)).astype(np.float32)
pos_x = (tx + (N - 1) / 2 - (round(W / 2) - 0.5)).astype(np.float32)

options = api.LSQMLOptions()
options.reconstructor_options.noise_model = api.NoiseModels.POISSON
options.data_options.fft_shift = True
options.object_options.optimizable = True
options.probe_options.optimizable = False
options.probe_position_options.optimizable = False
options.reconstructor_options.default_device = api.Devices.CPU
options.reconstructor_options.default_dtype = api.Dtypes.FLOAT32
options.reconstructor_options.batch_size = batch
options.reconstructor_options.num_epochs = epochs
options.reconstructor_options.random_seed = 0

task = PtychographyTask(
    options,
    diffraction_data=torch.from_numpy(counts),
    object_data=torch.ones((1, H, W), dtype=torch.complex64),
    probe_data=torch.from_numpy(probe * np.float32(s / N))[None, None],
    probe_position_x_px=torch.from_numpy(pos_x),
    probe_position_y_px=torch.from_numpy(pos_y),
)
ep = []
for _ in range(epochs):
    t = time.perf_counter()
    task.run(n_epochs=1, reset_timer_globals=False)
    ep.append(time.perf_counter() - t)
losses = [float(x) for x in task.reconstructor.loss_tracker.table["loss"].tolist()]
rec = task.get_data_to_cpu("object", as_numpy=True)[0].astype(np.complex64)
np.savez(out, object=rec)
print("RESULT " + json.dumps(dict(
    file=src, epochs=epochs, batch=batch, torch_threads=torch.get_num_threads(),
    positions=n, epoch_s_median=float(np.median(ep)), losses=losses)), flush=True)
