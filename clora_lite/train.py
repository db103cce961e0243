"""The continual loop: per task, train, evaluate on every task seen so far, consolidate, checkpoint.

A run lives in a folder: config.json, results.json, checkpoints/task_XX.pt (all written atomically).
Running again into the same folder resumes after the last finished task and ends with the same results as an
uninterrupted run (every task's randomness is seeded from (seed, task)); a folder holding another config is
refused, never overwritten.
"""
import copy
import json
import os
from pathlib import Path
import platform
import time

import torch
from tqdm.auto import tqdm

from . import __version__, adapters as ad, data, metrics, vit
from .config import Config, ConfigError, check
from .methods import make_learner

PROGRESS_KEYS = ("rows", "seen_acc", "task_il_rows", "task_seconds", "images_per_second")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} is not available here: use cpu (no CUDA device found)")
    return torch.device(name)


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename: a reader never sees half a file, a crash never leaves one."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=1)))


def load_benchmark(cfg: Config) -> data.Benchmark:
    kw = {}
    if cfg.benchmark.startswith("synthetic"):
        kw = dict(num_classes=cfg.classes, train_per_class=cfg.train_per_class, test_per_class=cfg.test_per_class)
    return data.load_benchmark(cfg.benchmark, cfg.tasks, seed=cfg.seed, order=cfg.order,
                               data_dir=cfg.data_dir or vit.DATA_DIR, **kw)


def prepare_out(out: Path, cfg: Config) -> None:
    """Create the run folder, or check that it holds this same config (then we resume)."""
    cfg_path = out / "config.json"
    if cfg_path.exists():
        try:
            old = json.loads(cfg_path.read_text())
        except json.JSONDecodeError:
            raise ConfigError(f"{cfg_path} is not valid JSON: choose another --out") from None
        if old != cfg.to_dict():
            diff = sorted(k for k in set(old) | set(cfg.to_dict()) if old.get(k) != cfg.to_dict().get(k))
            raise ConfigError(f"{out} holds a run with another config (differs in {', '.join(diff)}): "
                              "use another --out, or the same settings to resume")
        return
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_json(cfg_path, cfg.to_dict())
    except OSError as e:
        raise ConfigError(f"out={str(out)!r} is not writable ({e.strerror})") from None


@torch.no_grad()
def evaluate(learner, bench: data.Benchmark, seen: int, device, eval_batch: int, amp) -> tuple:
    """After `seen` tasks: (R row over tasks 0..seen-1, A over all seen classes, task-IL row), in percent.
    Runs on a merged copy of the backbone (adapters folded into W0: what inference would deploy)."""
    backbone = ad.merge_adapters(copy.deepcopy(learner.backbone).eval())
    n_seen = sum(len(t) for t in bench.tasks[:seen])
    cfgv = backbone.config
    x, y = bench.split(list(range(seen)), train=False)
    preds, task_preds = [], []
    for xb, yb in zip(x.split(eval_batch), y.split(eval_batch)):
        with amp():
            logits = learner.logits(backbone(data.prepare(xb, cfgv.image_size, cfgv.mean, cfgv.std))).float()[:, :n_seen]
        preds.append(logits.argmax(1))
        # task-IL: the argmax within the true task's own classes
        k = len(bench.tasks[0])
        lo = (yb // k) * k
        masked = logits.gather(1, lo[:, None] + torch.arange(k, device=logits.device))
        task_preds.append(lo + masked.argmax(1))
    pred, tpred = torch.cat(preds), torch.cat(task_preds)
    row, trow = [], []
    for j in range(seen):
        m = (y >= bench.tasks[j][0]) & (y <= bench.tasks[j][-1])
        row.append(100.0 * (pred[m] == y[m]).float().mean().item())
        trow.append(100.0 * (tpred[m] == y[m]).float().mean().item())
    return row, 100.0 * (pred == y).float().mean().item(), trow


def run(cfg: Config, out: str | Path | None = None, progress: bool = True, log=print) -> dict:
    """Train cfg.method over the benchmark's tasks; return (and write, if out) the results dict."""
    check(cfg)
    device = resolve_device(cfg.device)
    out = Path(out) if out is not None else None
    if out is not None and (out / "results.json").exists() and (out / "config.json").exists():
        prepare_out(out, cfg)   # refuses a folder holding another config
        log(f"{out}: already finished, results loaded")
        return json.loads((out / "results.json").read_text())
    # Everything that can fail on bad input (data, weights) happens before anything is written.
    bench = load_benchmark(cfg).to(device)
    torch.manual_seed(cfg.seed)
    backbone = vit.build(cfg.backbone, pretrained=cfg.pretrained)
    learner = make_learner(backbone, bench.num_classes, cfg).to(device)
    if out is not None:
        prepare_out(out, cfg)
    use_bf16 = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    amp = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)
    if cfg.compile:
        learner.backbone.compile()   # in place: state-dict names unchanged, so checkpoints stay portable

    joint = cfg.method == "joint"
    stream = [sum(bench.tasks, [])] if joint else bench.tasks   # joint: one task holding every class
    state = {k: [] for k in PROGRESS_KEYS}   # per-task progress, saved in every checkpoint
    start = 0
    if out is not None:
        ckpts = sorted((out / "checkpoints").glob("task_*.pt"))
        if ckpts:
            blob = torch.load(ckpts[-1], map_location=device, weights_only=True)
            start = blob["task"] + 1
            for t in range(start):  # replay the bookkeeping of finished tasks (adapter resets, head ranges)
                learner.begin_task(t, stream[t])
            learner.load_state_dict(blob["state"])
            state = {k: blob[k] for k in PROGRESS_KEYS}
            log(f"{out}: resuming after task {start}")

    cv = backbone.config
    for t in range(start, len(stream)):
        torch.manual_seed(cfg.seed * 1000 + t)
        g = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + t)
        learner.begin_task(t, stream[t])
        learner.train()
        opt = torch.optim.AdamW(learner.param_groups(), weight_decay=0.0)
        x, y = bench.split(list(range(len(bench.tasks))) if joint else t, train=True)
        steps_per_epoch = max(1, len(y) // cfg.batch)
        total = steps_per_epoch * cfg.epochs
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1))
        t0 = time.perf_counter()
        bar = tqdm(total=total, desc=f"{cfg.method} task {t + 1}/{len(stream)}", disable=not progress, leave=False)
        for step in range(total):
            if step % steps_per_epoch == 0:
                perm = torch.randperm(len(y), device=device, generator=g)
            idx = perm[(step % steps_per_epoch) * cfg.batch:][:cfg.batch]   # static shapes: full batches only
            images = data.prepare(x[idx], cv.image_size, cv.mean, cv.std, train=True, hflip=bench.hflip,
                                  generator=g)
            with amp():
                loss = learner.loss(images, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        bar.close()
        learner.end_task()
        seen = len(bench.tasks) if joint else t + 1
        if cfg.align_head:
            n_seen = sum(len(c) for c in bench.tasks[:seen])
            learner.eval()
            with torch.no_grad(), amp():
                feats = torch.cat([learner.backbone(data.prepare(xb, cv.image_size, cv.mean, cv.std)).float()
                                   for xb in x.split(cfg.eval_batch)])
            learner.record_class_stats(feats, y)
            learner.align_head(n_seen, cfg.align_steps, generator=g)
        row, seen_acc, trow = evaluate(learner, bench, seen, device, cfg.eval_batch, amp)
        state["rows"].append(row)
        state["seen_acc"].append(seen_acc)
        state["task_il_rows"].append(trow)
        state["task_seconds"].append(seconds)
        state["images_per_second"].append(total * cfg.batch / seconds if seconds > 0 else 0.0)
        log(f"{cfg.method} task {t + 1}/{len(stream)}: accuracy on seen classes {seen_acc:.1f} % ({seconds:.1f} s)")
        if out is not None:
            blob = {"task": t, "state": learner.state_dict(), **state}
            atomic_write(out / "checkpoints" / f"task_{t:02d}.pt", lambda p: torch.save(blob, p))
            for old in sorted((out / "checkpoints").glob("task_*.pt"))[:-1]:
                old.unlink()   # keep the last one: enough to resume, and small on disk

    results = {
        "method": cfg.method, "benchmark": bench.name, "seed": cfg.seed, "class_order": bench.class_order,
        "class_names": bench.class_names, "tasks": bench.tasks, "acc_matrix": state["rows"],
        "seen_acc": state["seen_acc"], "task_il_matrix": state["task_il_rows"],
        **metrics.summarize(state["rows"], state["seen_acc"], state["task_il_rows"][-1]),
        "trainable_params": learner.trainable_params(), "total_params": learner.stored_params(),
        "task_seconds": state["task_seconds"],
        "train_images_per_second": sum(ips * s for ips, s in zip(state["images_per_second"], state["task_seconds"]))
        / max(sum(state["task_seconds"]), 1e-9),
        "device": str(device), "config": cfg.to_dict(),
        "versions": {"torch": torch.__version__, "python": platform.python_version(), "clora_lite": __version__},
    }
    if out is not None:
        write_json(out / "results.json", results)
    return results
