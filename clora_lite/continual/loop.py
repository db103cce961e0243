"""The continual loop. For each task of the stream: train it, snapshot the adapters, end the task (C-LoRA
consolidates), align the head, evaluate on every task seen so far, checkpoint.

    results = run(Config(method="clora", benchmark="synthetic", tasks=5), out="runs/clora")

With `out`, the run lives in a folder (run_folder.py) and running again into it resumes after the last finished
task, ending with the same results and files as an uninterrupted run on the CPU (every task's randomness is
seeded from (seed, task)).
"""
import copy
from dataclasses import dataclass
from pathlib import Path
import platform
import time
import warnings

import torch
from tqdm.auto import tqdm

from .. import env
from .. import adapters as ad
from ..benchmarks import Benchmark, task_of_label
from ..methods import Learner
from . import metrics
from .config import Config, check, load_benchmark
from .run_folder import RunFolder, build_learner, new_progress


@dataclass
class RunContext:
    """How a run computes: device, autocast dtype (None: float32), the run's one GradScaler (fp16 scales the
    loss; a pass-through otherwise, so each task starts at the scale the last one found), progress bars, log."""
    device: torch.device
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    progress: bool = False
    log: object = print

    @classmethod
    def for_config(cls, cfg: Config, progress: bool = False, log=print) -> "RunContext":
        """Also lets float32 matmuls use TF32 tensor cores on CUDA (Ampere and later; a process-wide setting)."""
        device = env.resolve_device(cfg.device)
        if device.type == "cuda":
            torch.set_float32_matmul_precision("high")
        amp_dtype = env.amp_dtype(cfg.amp, device)
        return cls(device, amp_dtype, env.grad_scaler(device, amp_dtype), progress, log)


@dataclass
class StreamTask:
    """One step of the stream: the labels it introduces, the benchmark tasks whose images it trains on, how many
    benchmark tasks are seen after it, and the lr multiplier of its non-head parameters."""
    labels: list
    parts: list
    seen: int
    lr_scale: float = 1.0


def task_stream(cfg: Config, bench: Benchmark) -> list[StreamTask]:
    """The tasks a method trains on. The one place `joint` is special: the upper bound is a single task holding
    every class, trained at the plain lr. Every other method sees the benchmark's tasks in order, the first at
    lr * first_lr_scale (our warm start; 1 by default)."""
    if cfg.method == "joint":
        everything = list(range(bench.num_tasks))
        return [StreamTask(sum(bench.tasks, []), everything, bench.num_tasks)]
    return [StreamTask(labels, [t], t + 1, cfg.first_lr_scale if t == 0 else 1.0)
            for t, labels in enumerate(bench.tasks)]


def predictions(logits: torch.Tensor, labels: torch.Tensor, tasks: list) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (N, C_seen), labels (N,) -> (class-IL predictions, task-IL predictions), each (N,).
    Class-IL: the argmax over every seen class. Task-IL: the argmax within the true label's own task
    (tasks[t] = its contiguous labels; tasks may differ in size)."""
    bounds = torch.tensor([[t[0], t[-1] + 1] for t in tasks], device=labels.device)
    lo, hi = bounds[task_of_label(tasks).to(labels.device)[labels]].unbind(1)        # (N,), (N,)
    cols = torch.arange(logits.shape[1], device=logits.device)
    inside = (cols >= lo[:, None]) & (cols < hi[:, None])
    return logits.argmax(1), logits.masked_fill(~inside, float("-inf")).argmax(1)


@torch.no_grad()
def evaluate(learner: Learner, bench: Benchmark, seen: int, ctx: RunContext, eval_batch: int,
             part: str = "test") -> tuple:
    """After `seen` tasks: (acc row over tasks 0..seen-1, accuracy over all seen classes, task-IL row), in percent.
    Runs on a merged copy of the backbone (adapters folded into W0: what inference would deploy)."""
    backbone = ad.merge_adapters(copy.deepcopy(learner.backbone).eval())
    tasks = bench.tasks[:seen]
    n_seen = tasks[-1][-1] + 1
    x, y = bench.split(list(range(seen)), part)
    preds, task_preds = [], []
    for xb, yb in zip(x.split(eval_batch), y.split(eval_batch)):
        with env.autocast(ctx.device, ctx.amp_dtype):
            feats = backbone(backbone.prepare(xb))
        # the head in float32: its rows for different tasks differ by less than bf16 resolves
        logits = learner.logits(feats.float())[:, :n_seen]
        p, tp = predictions(logits, yb, tasks)
        preds.append(p)
        task_preds.append(tp)
    pred, tpred = torch.cat(preds), torch.cat(task_preds)
    row, trow = [], []
    for labels in tasks:
        m = (y >= labels[0]) & (y <= labels[-1])
        row.append(100.0 * (pred[m] == y[m]).float().mean().item())
        trow.append(100.0 * (tpred[m] == y[m]).float().mean().item())
    return row, 100.0 * (pred == y).float().mean().item(), trow


def train_task(learner: Learner, x: torch.Tensor, y: torch.Tensor, cfg: Config, ctx: RunContext,
               g: torch.Generator, desc: str = "", hflip: bool = True, lr_scale: float = 1.0) -> tuple[float, int]:
    """cfg.epochs over (x uint8 (N, 3, H, W), y (N,)) with a fresh AdamW and cosine schedule, full batches only
    (static shapes); every group but the head's (group 0) at lr_scale times its lr. Returns (seconds, images)."""
    learner.train()
    groups = learner.param_groups()
    if not groups:   # a method that trains nothing (ncm)
        return 0.0, 0
    for group in groups[1:]:
        group["lr"] = group["lr"] * lr_scale
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    steps_per_epoch = max(1, len(y) // cfg.batch)
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1))
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc=desc, disable=not ctx.progress, leave=False)
    for step in range(total):
        if step % steps_per_epoch == 0:
            perm = torch.randperm(len(y), device=y.device, generator=g)
        idx = perm[(step % steps_per_epoch) * cfg.batch:][:cfg.batch]
        images = learner.backbone.prepare(x[idx], train=True, hflip=hflip, generator=g)
        with env.autocast(ctx.device, ctx.amp_dtype):
            loss = learner.loss(images, y[idx])
        opt.zero_grad(set_to_none=True)
        ctx.scaler.scale(loss).backward()
        ctx.scaler.step(opt)
        ctx.scaler.update()
        with warnings.catch_warnings():   # fp16: a step the scaler skipped (inf gradients) still moves the schedule
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            sched.step()
        bar.update()
        if ctx.progress and step % 10 == 0:   # .item() waits for the GPU: only when someone is watching
            bar.set_postfix(loss=f"{loss.item():.3f}")
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    bar.close()
    return time.perf_counter() - t0, total * min(cfg.batch, len(y))


@torch.no_grad()
def features(learner: Learner, x: torch.Tensor, cfg: Config, ctx: RunContext) -> torch.Tensor:
    """x uint8 (N, 3, H, W) -> backbone features (N, D), float32, eval mode, no augmentation."""
    learner.eval()
    with env.autocast(ctx.device, ctx.amp_dtype):
        return torch.cat([learner.backbone(learner.backbone.prepare(xb)).float() for xb in x.split(cfg.eval_batch)])


@torch.no_grad()
def refresh_head(learner: Learner, x: torch.Tensor, y: torch.Tensor, n_seen: int, cfg: Config, ctx: RunContext,
                 g: torch.Generator, before: torch.Tensor | None = None) -> dict | None:
    """After a task: store its class statistics (features of its training images), then `learner.align_head` over
    all n_seen classes. before (N, D): the same images' features before the task; given, old classes'
    statistics first follow the drift (cfg.drift_ridge, ours), which is returned (None without)."""
    feats = features(learner, x, cfg, ctx)
    drift = learner.compensate_drift(before, feats, int(y.min()), cfg.drift_ridge) if before is not None else None
    learner.record_class_stats(feats, y)
    with torch.enable_grad():
        learner.align_head(n_seen, cfg.align_steps, generator=g)
    return drift


def run_task(t: int, stream: list[StreamTask], learner: Learner, bench: Benchmark, cfg: Config, ctx: RunContext,
             progress: dict, folder: RunFolder | None) -> None:
    """Train task t of the stream and record its evaluation in `progress`; save it into `folder`."""
    task, name = stream[t], f"{cfg.method} task {t + 1}/{len(stream)}"
    torch.manual_seed(cfg.seed * 1000 + t)
    g = torch.Generator(device=ctx.device).manual_seed(cfg.seed * 1000 + t)
    x, y = bench.split(task.parts, "train")
    # the drift is measured from the model as the previous task left it, so that whatever begin_task changes
    # (SD-LoRA's handover) is compensated too
    before = features(learner, x, cfg, ctx) if cfg.align_head and cfg.drift_ridge is not None and t > 0 else None
    learner.begin_task(t, task.labels)
    with env.autocast(ctx.device, ctx.amp_dtype):   # InfLoRA's input covariances (accumulated in float32)
        learner.prepare_task(lambda: (learner.backbone.prepare(xb) for xb in x.split(cfg.eval_batch)))
    seconds, images = train_task(learner, x, y, cfg, ctx, g, name, bench.hflip, task.lr_scale)
    if folder is not None:   # before end_task: C-LoRA's R_delta still holds this task's routing
        folder.save_snapshot(t, learner)
    with env.autocast(ctx.device, ctx.amp_dtype):
        learner.end_task()
    if cfg.align_head:
        drift = refresh_head(learner, x, y, bench.tasks[task.seen - 1][-1] + 1, cfg, ctx, g, before)
        if folder is not None:
            folder.save_class_stats(t, learner, task.labels, drift)
    row, seen_acc, trow = evaluate(learner, bench, task.seen, ctx, cfg.eval_batch)
    for key, value in zip(("rows", "seen_acc", "task_il_rows"), (row, seen_acc, trow)):
        progress[key].append(value)
    if cfg.val_fraction > 0:
        val_row, val_seen, _ = evaluate(learner, bench, task.seen, ctx, cfg.eval_batch, part="val")
        progress["val_rows"].append(val_row)
        progress["val_seen_acc"].append(val_seen)
    progress["task_seconds"].append(seconds)
    progress["images_per_second"].append(images / seconds if seconds > 0 else 0.0)
    if folder is not None:
        folder.save_checkpoint(t, learner, progress, ctx.scaler)
    ctx.log(f"{name}: accuracy on seen classes {seen_acc:.1f} % ({seconds:.1f} s)"
            + (", saved" if folder is not None else ""))


def run(cfg: Config, out: str | Path | None = None, progress: bool = True, log=print) -> dict:
    """Train cfg.method over the benchmark's tasks; return (and write, if out) the results dict."""
    check(cfg)
    folder = RunFolder(out, cfg) if out is not None else None
    if folder is not None and (done := folder.finished_results()) is not None:
        log(f"{folder.path}: already finished, results loaded")
        return done
    ctx = RunContext.for_config(cfg, progress, log)
    # Everything that can fail on bad input (data, weights) happens before anything is written.
    bench = load_benchmark(cfg).to(ctx.device)
    learner = build_learner(cfg, bench.num_classes)
    if folder is not None:
        folder.start(learner)
    learner = learner.to(ctx.device)
    if cfg.compile:
        learner.backbone.compile()   # in place: state-dict names unchanged, so checkpoints stay portable
    stream = task_stream(cfg, bench)
    state, start = (new_progress(), 0) if folder is None else folder.resume(learner, stream, ctx, log)
    for t in range(start, len(stream)):
        run_task(t, stream, learner, bench, cfg, ctx, state, folder)
    results = collect_results(cfg, bench, learner, state, ctx.device)
    if folder is not None:
        folder.save_results(results)
    return results


def collect_results(cfg: Config, bench: Benchmark, learner: Learner, state: dict, device) -> dict:
    """The results dict (accuracies in percent; keys listed in docs/run_folders.md). total_params: what a deployment keeps
    (`Learner.stored_params`)."""
    seconds = state["task_seconds"]
    val = {}
    if state["val_rows"]:
        v = metrics.summarize(state["val_rows"], state["val_seen_acc"], [0.0])
        val = {"val_acc_matrix": state["val_rows"], "val_last_acc": v["last_acc"], "val_inc_acc": v["inc_acc"]}
    return {
        "method": cfg.method, "benchmark": bench.name, "seed": cfg.seed, "class_order": bench.class_order,
        "class_names": bench.class_names, "tasks": bench.tasks, "acc_matrix": state["rows"],
        "seen_acc": state["seen_acc"], "task_il_matrix": state["task_il_rows"],
        **metrics.summarize(state["rows"], state["seen_acc"], state["task_il_rows"][-1]), **val,
        "trainable_params": learner.trainable_params(), "total_params": learner.stored_params(),
        "task_seconds": seconds,
        "train_images_per_second": sum(ips * s for ips, s in zip(state["images_per_second"], seconds))
        / max(sum(seconds), 1e-9),
        "device": str(device), "config": cfg.to_dict(),
        "versions": {"torch": torch.__version__, "python": platform.python_version(), "clora_lite": env.__version__},
    }
