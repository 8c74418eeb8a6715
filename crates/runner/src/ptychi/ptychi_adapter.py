"""dose-overlap's pty-chi adapter: reconstructs both splits of a job with pty-chi 2.2 and writes
the two objects on objectGuess's grid, for the toolkit's one scoring code.

Shipped inside the dose-overlap binary and written into each job's artifact dir; run there with
$PTYCHI_PYTHON. It imports pty-chi at run time and copies none of its code.

Each split is reconstructed on its own, from a flat object (ones, as the native solver starts)
unless --init truth asks for the original study's initialisation from objectGuess (which in
synthetic data IS the ground truth: dose-overlap then names the method `...+truth-init`). The
probe starts at probeGuess, fixed unless --probe refine; positions are never refined.

Conventions (they must match or the comparison is meaningless; see benches/peers):
- counts: the file stores amplitudes a = sqrt(counts) / s with s = _metadata.intensity_scale;
  pty-chi gets the counts (a s)^2, so its Poisson model sees the real photon counts;
- pty-chi's far field is |fft2(P O)|^2 with an unnormalised FFT, ours orthonormal: the probe is
  given as probeGuess * s / N;
- positions: the native solver's integer top-left corners t = round(c - N/2) (ties to even),
  given as pty-chi's probe centres relative to its object origin round(M/2) - 0.5.
Before reconstructing, the adapter runs pty-chi's forward model on the truth at EVERY position
and compares it (a) with the file's counts: predicted / measured (about 1 when the counts
convention holds; Poisson noise and the data's subpixel positions aside) and (b) with an
independent NumPy model of the same conventions (|fftshift(fft2(P O_t))|^2 s^2 / N^2 at the
integer corners): it refuses to go on when (a) is off by more than 10 % or (b) by more than
0.1 %. pty-chi warns that positions are not zero-centred (its SUPPORT-origin heuristic counts
N // 2 where the patch spans (N - 1) / 2 either side of its centre) and that the object needs a
2 px margin: check (b) shows every patch, edges included, is taken where the conventions say.

Output: --out NPZ with `train_object` and `test_object` (complex64), written atomically;
--facts JSON: the settings pty-chi used (read back from its options), versions, device, per
split the losses per epoch, the forward checks and seconds. Progress on stdout:
`<split> epoch E/N loss L`.
"""

import argparse
import json
import math
import os
import sys
import time

ALGORITHMS = ("lsqml", "epie", "rpie", "pie", "dm")
# The forward checks' limits: predicted / measured counts, and pty-chi against NumPy.
MAX_COUNT_RATIO_ERROR = 0.10
MAX_MODEL_DIFFERENCE = 1e-3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="training split NPZ (DATA-001)")
    p.add_argument("--test", required=True, help="test split NPZ (DATA-001)")
    p.add_argument("--out", required=True, help="NPZ to write (train_object, test_object)")
    p.add_argument("--facts", required=True, help="JSON to write: settings, losses, times")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="lsqml")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch", type=int, default=96)
    p.add_argument("--noise", choices=("poisson", "gaussian"), default="poisson")
    p.add_argument("--probe", choices=("fixed", "refine"), default="fixed")
    p.add_argument("--init", choices=("flat", "truth"), default="flat")
    p.add_argument("--step", type=float, help="object step size (default: pty-chi's)")
    p.add_argument("--tv-weight", type=float,
                   help="total-variation weight on the object each epoch (default: off)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def fail(msg, code=1):
    print("ptychi_adapter: error: " + msg, file=sys.stderr, flush=True)
    sys.exit(code)


def load_split(path):
    import numpy as np
    with np.load(path, allow_pickle=False) as d:
        meta = json.loads(str(d["_metadata"]))
        s = float(meta["intensity_scale"])
        amp = d["diffraction"].astype(np.float64)
        counts = np.round((amp * s) ** 2).astype(np.float32)
        probe = d["probeGuess"].astype(np.complex64)
        truth = d["objectGuess"].astype(np.complex64)
        xs = np.asarray(d["xcoords"], dtype=np.float64)
        ys = np.asarray(d["ycoords"], dtype=np.float64)
    if not (math.isfinite(s) and s > 0):
        fail(f"{path}: _metadata.intensity_scale {s} is not a positive number")
    n, big_n = counts.shape[0], counts.shape[-1]
    h, w = truth.shape
    # np.round rounds half to even, as the native solver's corners do.
    ty = np.round(ys - big_n / 2).astype(np.int64)
    tx = np.round(xs - big_n / 2).astype(np.int64)
    if ty.min() < 0 or tx.min() < 0 or ty.max() + big_n > h or tx.max() + big_n > w:
        fail(f"{path}: a position's patch leaves objectGuess ({h} x {w})")
    pos_y = (ty + (big_n - 1) / 2 - (round(h / 2) - 0.5)).astype(np.float32)
    pos_x = (tx + (big_n - 1) / 2 - (round(w / 2) - 0.5)).astype(np.float32)
    return dict(counts=counts, probe=probe, truth=truth, s=s, n=n, N=big_n, h=h, w=w,
                ty=ty, tx=tx, pos_x=pos_x, pos_y=pos_y)


def probe_for_ptychi(d):
    import numpy as np
    return d["probe"] * np.float32(d["s"] / d["N"])


def options_for(api, args, device):
    name = args.algorithm
    if name == "lsqml":
        o = api.LSQMLOptions()
        o.reconstructor_options.noise_model = (
            api.NoiseModels.POISSON if args.noise == "poisson" else api.NoiseModels.GAUSSIAN)
    elif name == "epie":
        o = api.EPIEOptions()
    elif name == "rpie":
        o = api.RPIEOptions()
    elif name == "pie":
        o = api.PIEOptions()
    else:
        o = api.DMOptions()
    o.data_options.fft_shift = True
    o.object_options.optimizable = True
    if args.step is not None:
        o.object_options.step_size = args.step
    if args.tv_weight is not None:
        o.object_options.total_variation.enabled = True
        o.object_options.total_variation.weight = args.tv_weight
    o.probe_options.optimizable = args.probe == "refine"
    o.probe_position_options.optimizable = False
    o.reconstructor_options.default_device = device
    o.reconstructor_options.default_dtype = api.Dtypes.FLOAT32
    o.reconstructor_options.batch_size = args.batch
    o.reconstructor_options.num_epochs = args.epochs
    o.reconstructor_options.random_seed = args.seed
    return o


def settings_of(o):
    """What pty-chi actually used, read back from its options."""
    def get(obj, name):
        v = getattr(obj, name, None)
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        return str(getattr(v, "name", v))
    r = o.reconstructor_options
    out = {
        "options_class": type(o).__name__,
        "batch_size": get(r, "batch_size"),
        "num_epochs": get(r, "num_epochs"),
        "random_seed": get(r, "random_seed"),
        "default_dtype": get(r, "default_dtype"),
        "object_step_size": get(o.object_options, "step_size"),
        "object_optimizer": get(o.object_options, "optimizer"),
        "object_total_variation_weight": (o.object_options.total_variation.weight
                                          if o.object_options.total_variation.enabled else None),
        "probe_optimizable": get(o.probe_options, "optimizable"),
        "probe_step_size": get(o.probe_options, "step_size"),
        "positions_optimizable": get(o.probe_position_options, "optimizable"),
        "fft_shift": get(o.data_options, "fft_shift"),
    }
    for name in ("noise_model", "chunk_length", "alpha"):
        if hasattr(r, name):
            out[name] = get(r, name)
    return out


def forward_check(torch, api, PtychographyTask, d, device):
    """pty-chi's forward model on the truth at every position, against the file's counts and
    against NumPy's model of the same conventions."""
    import numpy as np
    o = api.EPIEOptions()
    o.probe_options.optimizable = False
    o.data_options.fft_shift = True
    o.reconstructor_options.default_device = device
    t = PtychographyTask(
        o,
        diffraction_data=torch.from_numpy(d["counts"]),
        object_data=torch.from_numpy(d["truth"])[None],
        probe_data=torch.from_numpy(probe_for_ptychi(d))[None, None],
        probe_position_x_px=torch.from_numpy(d["pos_x"]),
        probe_position_y_px=torch.from_numpy(d["pos_y"]),
    )
    n, big_n = d["n"], d["N"]
    predicted = np.zeros(n)
    measured = np.zeros(n)
    model_diff = 0.0
    chunk = 64
    with torch.no_grad():
        for start in range(0, n, chunk):
            idx = torch.arange(start, min(start + chunk, n))
            pred = t.reconstructor.forward_model.forward(idx).cpu().numpy().astype(np.float64)
            # pty-chi keeps the patterns with the zero frequency at the corner (fft_shift).
            meas = t.dataset.patterns[idx].cpu().numpy().astype(np.float64)
            predicted[start:start + len(idx)] = pred.sum(axis=(1, 2))
            measured[start:start + len(idx)] = meas.sum(axis=(1, 2))
            for k, j in enumerate(range(start, start + len(idx))):
                y, x = d["ty"][j], d["tx"][j]
                wave = d["probe"].astype(np.complex128) * d["truth"][y:y + big_n, x:x + big_n]
                ours = np.abs(np.fft.fft2(wave, norm="ortho")) ** 2 * d["s"] ** 2
                scale = max(float(ours.max()), 1e-30)
                model_diff = max(model_diff, float(np.abs(pred[k] - ours).max()) / scale)
    total = float(measured.sum())
    lit = measured > 0
    per_position = predicted[lit] / measured[lit]
    return {
        "positions": int(n),
        "predicted_over_measured": float(predicted.sum()) / total if total > 0 else float("nan"),
        "per_position_min": float(per_position.min()) if per_position.size else None,
        "per_position_max": float(per_position.max()) if per_position.size else None,
        "numpy_model_max_rel_diff": model_diff,
    }


def reconstruct(torch, api, PtychographyTask, d, args, device, label):
    import numpy as np
    o = options_for(api, args, device)
    start = d["truth"] if args.init == "truth" else np.ones((d["h"], d["w"]), np.complex64)
    t0 = time.perf_counter()
    task = PtychographyTask(
        o,
        diffraction_data=torch.from_numpy(d["counts"]),
        object_data=torch.from_numpy(start.copy())[None],
        probe_data=torch.from_numpy(probe_for_ptychi(d))[None, None],
        probe_position_x_px=torch.from_numpy(d["pos_x"]),
        probe_position_y_px=torch.from_numpy(d["pos_y"]),
    )
    setup_s = time.perf_counter() - t0
    epoch_s = []
    for e in range(args.epochs):
        t = time.perf_counter()
        task.run(n_epochs=1, reset_timer_globals=False)
        epoch_s.append(time.perf_counter() - t)
        losses = task.reconstructor.loss_tracker.table["loss"].tolist()
        loss = float(losses[-1]) if losses else float("nan")
        print(f"{label} epoch {e + 1}/{args.epochs} loss {loss:.6g}", flush=True)
        if not math.isfinite(loss):
            fail(f"pty-chi diverged on the {label} split at epoch {e + 1} (loss {loss})")
    losses = [float(x) for x in task.reconstructor.loss_tracker.table["loss"].tolist()]
    obj = task.get_data_to_cpu("object", as_numpy=True)[0].astype(np.complex64)
    if obj.shape != (d["h"], d["w"]):
        fail(f"pty-chi returned a {obj.shape} object for objectGuess's {(d['h'], d['w'])}")
    if not np.all(np.isfinite(obj)):
        fail(f"pty-chi's {label} object holds NaN or infinite values")
    return obj, {
        "positions": int(d["n"]),
        "losses": losses,
        "setup_s": setup_s,
        "epoch_s_median": float(np.median(epoch_s)) if epoch_s else None,
        "total_s": setup_s + float(sum(epoch_s)),
        "settings": settings_of(o),
    }


def write_atomic(path, write):
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       "." + os.path.basename(path) + ".tmp-" + str(os.getpid()))
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    args = parse_args()
    if args.epochs < 1 or args.batch < 1:
        fail("--epochs and --batch must be at least 1", 2)
    try:
        import numpy as np
        import torch
        import ptychi
        import ptychi.api as api
        from ptychi.api.task import PtychographyTask
    except ImportError as e:
        fail(f"cannot import pty-chi with {sys.executable}: {e}; point $PTYCHI_PYTHON at the "
             "interpreter of a venv with ptychi 2.2 (scripts/setup-ptychi-venv.sh)")
    import logging
    logging.basicConfig(level=logging.WARNING)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cuda = torch.cuda.is_available()
    if args.device == "gpu" and not cuda:
        fail("--accelerator gpu, but torch sees no CUDA device "
             f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})", 3)
    if args.device == "gpu" or (args.device == "auto" and cuda):
        device = api.Devices.GPU
        device_name, device_kind = "cuda:0 " + torch.cuda.get_device_name(0), "gpu"
    else:
        device = api.Devices.CPU
        device_name, device_kind = "cpu", "cpu"
    version = getattr(ptychi, "__version__", None)
    print(f"ptychi_adapter: pty-chi {version} (torch {torch.__version__}) on {device_name}, "
          f"{torch.get_num_threads()} thread(s)", flush=True)

    facts = {
        "engine": "pty-chi",
        "ptychi_version": version,
        "torch_version": torch.__version__,
        "device": device_kind,
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "algorithm": args.algorithm,
        "init": args.init,
        "probe": args.probe,
        "noise": args.noise if args.algorithm == "lsqml" else None,
        "splits": {},
    }
    objects = {}
    for label, path in (("train", args.train), ("test", args.test)):
        d = load_split(path)
        if args.batch > d["n"]:
            print(f"ptychi_adapter: batch {args.batch} > the {d['n']} positions of the {label} "
                  "split: one batch per epoch", flush=True)
        check = forward_check(torch, api, PtychographyTask, d, device)
        ratio, diff = check["predicted_over_measured"], check["numpy_model_max_rel_diff"]
        print(f"ptychi_adapter: {label}: forward check at {check['positions']} positions: "
              f"predicted / measured counts {ratio:.5f} (per position {check['per_position_min']:.4f}"
              f" to {check['per_position_max']:.4f}); pty-chi against NumPy's model: max "
              f"relative difference {diff:.2e}", flush=True)
        if not (math.isfinite(ratio) and abs(ratio - 1.0) <= MAX_COUNT_RATIO_ERROR):
            fail(f"{path}: pty-chi's forward model on the truth predicts {ratio:.4g} x the "
                 f"measured counts (expected about 1): the counts convention does not match")
        if not diff <= MAX_MODEL_DIFFERENCE:
            fail(f"{path}: pty-chi's forward model differs from NumPy's by {diff:.3g} (relative): "
                 "the probe scale or the positions convention does not match")
        obj, split_facts = reconstruct(torch, api, PtychographyTask, d, args, device, label)
        split_facts["forward_check"] = check
        facts["splits"][label] = split_facts
        objects[label + "_object"] = obj
        print(f"ptychi_adapter: {label}: {args.epochs} epoch(s) in {split_facts['total_s']:.1f} s "
              f"({split_facts['epoch_s_median']:.3f} s per epoch)", flush=True)

    write_atomic(args.out, lambda f: np.savez(f, **objects))
    write_atomic(args.facts, lambda f: f.write(json.dumps(facts, indent=2).encode()))
    print(f"ptychi_adapter: wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
