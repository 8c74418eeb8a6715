"""Prints the figures of ptychi_compare.sh and the native solver's ratios to pty-chi.

Input: the JSON lines the script collected ({"peer": ..., "r": RESULT}), in one or more files.
Every figure is a median over the epochs of one run (native: the median of three runs).

Two ratios per peer setting: per epoch (peer s/epoch over native s/epoch), and at equal or
lower final loss (the peer's wall time for its epochs over the native solver's wall time for
the epochs it needs to reach a loss at or below the peer's final loss)."""
import json
import statistics
import sys

rows = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
ptychi = [r["r"] for r in rows if r["peer"] == "ptychi"]
native = [r["r"] for r in rows if r["peer"] == "native"]
fft = [r["r"] for r in rows if r["peer"] == "fft"]
if not native:
    sys.exit("no native result: see the build output above")

n_epoch_s = statistics.median(r["epoch_s_median"] for r in native)
n_cpu_s = statistics.median(r["epoch_cpu_s_median"] for r in native)
n_losses = native[0]["losses"]
positions = native[0]["positions"]
n_epochs_run = native[0]["epochs"]

print("%-34s %10s %12s %10s %9s" % ("setting", "s/epoch", "positions/s", "final loss", "obj err"))
for r in ptychi:
    name = "pty-chi %s batch %d step %g, %d thr" % (r["algo"], r["batch"], r["step_size"], r["torch_threads"])
    print("%-34s %10.4f %12.0f %10.4f %9.3f" % (name, r["epoch_s_median"], r["pos_per_s_median"], r["final_loss"], r["obj_rel_err"]))
print("%-34s %10.4f %12.0f %10.4f %9.3f   (after %d epochs)" % ("native epie alpha 1, 1 thread", n_epoch_s, positions / n_epoch_s, n_losses[-1], native[0]["obj_rel_err"], n_epochs_run))
print("native loss per epoch: " + ", ".join("%.4f" % l for l in n_losses))
print("%-34s %10.4f %12.0f" % ("  (its CPU time)", n_cpu_s, positions / n_cpu_s))
if fft:
    bound = fft[0]["frames_per_s_median"]
    bound_cpu = fft[0]["frames_per_s_cpu_median"]
    print("FFT bound N=64 (2-D round trips/s, 1 thread): %.0f wall, %.0f CPU time" % (bound, bound_cpu))
    print("native / FFT bound: %.1f %% wall, %.1f %% CPU time"
          % (100 * positions / n_epoch_s / bound, 100 * positions / n_cpu_s / bound_cpu))
    print("native / the spec's bound (91,768/s): %.1f %%" % (100 * positions / n_epoch_s / 91768))

print()
print("ratios: per epoch, and in wall time to an equal or lower loss than the peer's final one")
results = []
for r in ptychi:
    name = "%s batch %d step %g" % (r["algo"], r["batch"], r["step_size"])
    per_epoch = r["epoch_s_median"] / n_epoch_s
    need = next((k + 1 for k, l in enumerate(n_losses) if l <= r["final_loss"]), None)
    if need is None:
        print("  %-26s %8.1fx per epoch; native loss never reaches %.4f in %d epochs"
              % (name, per_epoch, r["final_loss"], n_epochs_run))
        results.append((r, per_epoch, None))
        continue
    to_loss = r["epochs"] * r["epoch_s_median"] / (need * n_epoch_s)
    print("  %-26s %8.1fx per epoch, %8.1fx to loss %.4f (native: %d epochs, %.4f)"
          % (name, per_epoch, to_loss, r["final_loss"], need, n_losses[need - 1]))
    results.append((r, per_epoch, to_loss))
b1 = [x for x in results if x[0]["algo"] == "epie" and x[0]["batch"] == 1]
if b1:
    print("target >= 100x pty-chi batch-1 ePIE at equal or lower loss: %s"
          % ("%.1fx" % b1[0][2] if b1[0][2] else "not reached"))
fastest = max(results, key=lambda x: x[0]["pos_per_s_median"], default=None)
if fastest:
    r = fastest[0]
    print("target >= 15x pty-chi's fastest CPU setting here (%s batch %d, %.0f positions/s): %s"
          % (r["algo"], r["batch"], r["pos_per_s_median"], "%.1fx" % fastest[2] if fastest[2] else "not reached"))
