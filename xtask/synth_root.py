#!/usr/bin/env python3
"""Synthetic N-job artifact root: what a large cluster sweep leaves, for measuring `collect`,
`report` and `verify` at 10,000-100,000 jobs without running them.

    target/release/dose-overlap study --preset tiny --out /tmp/t
    python3 xtask/synth_root.py --template /tmp/t --jobs 10000 --out /tmp/s10k
    target/release/dose-overlap verify /tmp/s10k/artifacts

The template is a finished tiny study (baseline and dense views). The synthetic root has
`--doses` doses spread evenly on a log scale over 1e3..1e6, and at each dose the same
jobs-per-dose views x gridsizes (`baseline`, `dense`, `sparse`, `view_03`, ...; gridsizes 1..4).
Each job's result, training config, plan entry and manifest entry are those of a template job
(baseline for `baseline`, dense for the rest, cycling over the template's doses) with its
identity, paths and config digest rewritten, so `verify` accepts the root. Every job reads the
template's own NPZ files and hard-links the template's bundle (a regular file; verify re-hashes
it): the root costs a few kB of disk per job. Deterministic: same arguments, same bytes.
"""

import argparse
import hashlib
import json
import math
import os
import shutil


def dump(value):
    # The shape serde_json's pretty printer writes (two-space indent, final newline).
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", required=True, help="a finished tiny study folder")
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--doses", type=int, help="default 100, or 1000 above 10,000 jobs")
    ap.add_argument("--out", required=True, help="a new folder")
    a = ap.parse_args()
    doses_n = a.doses or (100 if a.jobs <= 10_000 else 1000)
    if a.jobs % doses_n:
        ap.error("--jobs must be a multiple of --doses")
    per_dose = a.jobs // doses_n
    gridsizes = min(4, per_dose)
    views_n = math.ceil(per_dose / gridsizes)
    views = (["baseline", "dense", "sparse"] + [f"view_{k:02}" for k in range(3, views_n)])[:views_n]
    combos = [(v, g) for v in views for g in range(1, gridsizes + 1)][:per_dose]
    doses = sorted({round(10 ** (3 + 3 * k / max(1, doses_n - 1))) for k in range(doses_n)})
    if len(doses) != doses_n:
        ap.error("too many doses for 1e3..1e6 in whole photons")

    tpl = os.path.join(a.template, "artifacts")
    manifest_t = json.load(open(os.path.join(tpl, "training_manifest.json")))
    plan_t = json.load(open(os.path.join(tpl, "plan.json")))
    old = manifest_t["artifact_root"].rsplit("/", 1)[0]  # the template study's folder as recorded
    name = os.path.basename(os.path.normpath(a.out))
    # Template jobs by kind, in dose order, with their result records and configs.
    kinds = {"baseline": [], "other": []}
    for planned, job in zip(plan_t["jobs"], manifest_t["jobs"]):
        rel = os.path.relpath(job["artifact_dir"], manifest_t["artifact_root"])
        record = json.load(open(os.path.join(tpl, rel, "result.json")))
        kind = "baseline" if job["view"] == "baseline" else "other"
        kinds[kind].append((job, planned["config"], record, rel))

    os.makedirs(a.out)
    for phase in ("phase_c", "phase_d"):
        shutil.copytree(os.path.join(a.template, phase), os.path.join(a.out, phase))
    art = os.path.join(a.out, "artifacts")
    os.makedirs(os.path.join(art, "_template"))
    bundles = {}
    for kind, jobs in kinds.items():
        for job, _, record, rel in jobs:
            src = os.path.join(tpl, rel, record["result"]["bundle_path"])
            dst = os.path.join(art, "_template", rel.replace("/", "_") + ".npz")
            shutil.copyfile(src, dst)
            bundles[rel] = dst

    def renamed(p):
        return name + p[len(old):] if isinstance(p, str) and p.startswith(old + "/") else p

    art_rec = f"{name}/artifacts"
    manifest_jobs, plan_jobs = [], []
    index = 0
    for d_i, dose in enumerate(doses):
        for view, gs in combos:
            pool = kinds["baseline" if view == "baseline" else "other"]
            job_t, config_t, record_t, rel_t = pool[d_i % len(pool)]
            dir_rel = f"dose_{dose}/{view}/gs{gs}"
            job_dir = f"{art_rec}/{dir_rel}"
            job = {
                "dose": float(dose),
                "view": view,
                "gridsize": gs,
                "train_data_path": renamed(job_t["train_data_path"]),
                "test_data_path": renamed(job_t["test_data_path"]),
                "artifact_dir": job_dir,
                "log_path": f"{job_dir}/train.log",
            }
            config = dict(config_t)
            config.update(
                dose=float(dose), view=view, gridsize=gs, nphotons=float(dose),
                train_data_file=job["train_data_path"], test_data_file=job["test_data_path"],
                output_dir=job_dir, log_path=job["log_path"],
            )
            config_text = dump(config)
            record = dict(record_t)
            record.update(
                index=index, dose=float(dose), view=view, gridsize=gs,
                config_sha256=hashlib.sha256(config_text.encode()).hexdigest(),
            )
            d = os.path.join(art, dir_rel)
            os.makedirs(d)
            write(os.path.join(d, "training_config.json"), config_text)
            write(os.path.join(d, "train.log"), f"synthetic job {index}\n")
            os.link(bundles[rel_t], os.path.join(d, record["result"]["bundle_path"]))
            manifest_jobs.append(dict(job, result=record["result"]))
            plan_jobs.append({"index": index, "job": job, "config": config})
            index += 1
            # result.json last: the plan id is needed first (written below, once known).
            record_path = os.path.join(d, "result.json")
            manifest_jobs[-1]["_record"] = (record_path, record)

    head = {k: renamed(v) for k, v in manifest_t.items() if k != "jobs"}
    head.update(artifact_root=art_rec, enumerated_count=len(manifest_jobs))
    plan = {k: renamed(v) for k, v in plan_t.items() if k != "jobs"}
    plan.update(artifact_root=art_rec, enumerated_count=len(manifest_jobs), jobs=plan_jobs)
    plan_text = dump(plan)
    plan_id = hashlib.sha256(plan_text.encode()).hexdigest()
    write(os.path.join(art, "plan.json"), plan_text)
    for job in manifest_jobs:
        path, record = job.pop("_record")
        record["plan_id"] = plan_id
        write(path, dump(record))
    # The manifest's key order: jobs after enumerated_count, as train writes it.
    manifest = {}
    for k, v in head.items():
        manifest[k] = v
        if k == "enumerated_count":
            manifest["jobs"] = manifest_jobs
    write(os.path.join(art, "training_manifest.json"), dump(manifest))
    write(os.path.join(art, "skip_summary.json"), open(os.path.join(tpl, "skip_summary.json")).read())
    print(f"{a.out}: {len(manifest_jobs)} jobs, {doses_n} doses x {len(combos)} view/gridsize")


if __name__ == "__main__":
    main()
