"""The continual loop: per task, train, snapshot the adapters, consolidate, align the head, evaluate on every task
seen so far, checkpoint.

A run lives in a folder: config.json, results.json, checkpoints/task_XX.pt (the latest: enough to resume) and
adapters/task_XX.pt (every task: the adapter tensors, for the analysis), all written atomically.
Running again into the same folder resumes after the last finished task and ends with the same results and the
same files as an uninterrupted run (every task's randomness is seeded from (seed, task)); a folder holding
another config, or a damaged checkpoint, is refused in one line and left as it is.
"""
import copy
import hashlib
import json
import os
import pickle
from pathlib import Path
import platform
import time
import warnings

import torch
from tqdm.auto import tqdm

from . import __version__, adapters as ad, data, env, metrics, vit
from .config import Config, ConfigError, check
from .methods import Learner, make_learner

PROGRESS_KEYS = ("rows", "seen_acc", "task_il_rows", "val_rows", "val_seen_acc", "task_seconds",
                 "images_per_second")
ADAPTER_TENSORS = ("lora_A", "lora_B", "R_old", "R_delta")


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
    elif cfg.benchmark == "split_fashion_mnist":
        kw = dict(train_per_class=cfg.train_per_class, test_per_class=cfg.test_per_class)
    bench = data.load_benchmark(cfg.benchmark, cfg.tasks, seed=cfg.seed, order=cfg.order, data_dir=cfg.data_dir,
                                task_sizes=cfg.task_sizes, **kw)
    return bench.hold_out(cfg.val_fraction, cfg.seed)


def prepare_out(out: Path, cfg: Config) -> None:
    """Create the run folder, or check that it holds this same config (then we resume)."""
    cfg_path = out / "config.json"
    if cfg_path.exists():
        try:
            old = json.loads(cfg_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{cfg_path} is not valid JSON: choose another --out") from None
        if old != cfg.to_dict():
            diff = sorted(k for k in set(old) | set(cfg.to_dict()) if old.get(k) != cfg.to_dict().get(k))
            raise ConfigError(f"{out} holds a run with another config (differs in {', '.join(diff)}): "
                              "use another --out, or the same settings to resume")
        return
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "adapters").mkdir(exist_ok=True)
        write_json(cfg_path, cfg.to_dict())
    except OSError as e:
        raise ConfigError(f"out={str(out)!r} is not writable ({e.strerror})") from None


def predictions(logits: torch.Tensor, labels: torch.Tensor, tasks: list) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (N, C_seen), labels (N,) -> (class-IL predictions, task-IL predictions), each (N,).
    Class-IL: the argmax over every seen class. Task-IL: the argmax within the true label's own task
    (tasks[t] = its contiguous labels; tasks may differ in size)."""
    bounds = torch.tensor([[t[0], t[-1] + 1] for t in tasks], device=labels.device)
    task_of = torch.cat([torch.full((len(t),), i) for i, t in enumerate(tasks)]).to(labels.device)
    lo, hi = bounds[task_of[labels]].unbind(1)                                       # (N,), (N,)
    cols = torch.arange(logits.shape[1], device=logits.device)
    inside = (cols >= lo[:, None]) & (cols < hi[:, None])
    return logits.argmax(1), logits.masked_fill(~inside, float("-inf")).argmax(1)


@torch.no_grad()
def evaluate(learner: Learner, bench: data.Benchmark, seen: int, device, eval_batch: int, amp_dtype,
             part: str = "test") -> tuple:
    """After `seen` tasks: (acc row over tasks 0..seen-1, accuracy over all seen classes, task-IL row), in percent.
    Runs on a merged copy of the backbone (adapters folded into W0: what inference would deploy)."""
    backbone = ad.merge_adapters(copy.deepcopy(learner.backbone).eval())
    tasks = bench.tasks[:seen]
    n_seen = tasks[-1][-1] + 1
    x, y = bench.split(list(range(seen)), part)
    preds, task_preds = [], []
    for xb, yb in zip(x.split(eval_batch), y.split(eval_batch)):
        with env.autocast(device, amp_dtype):
            logits = learner.logits(backbone(backbone.prepare(xb))).float()[:, :n_seen]
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


def train_task(learner: Learner, x: torch.Tensor, y: torch.Tensor, cfg: Config, desc: str, hflip: bool,
               g: torch.Generator, amp_dtype, scaler: torch.amp.GradScaler, progress: bool,
               lr_scale: float = 1.0) -> tuple[float, int]:
    """cfg.epochs over (x uint8 (N, 3, H, W), y (N,)) with a fresh AdamW and cosine schedule, full batches only
    (static shapes); every group but the head's (group 0) at lr_scale times its lr. amp_dtype: the autocast dtype
    (None: float32); fp16 scales the loss with `scaler` (env.grad_scaler: the run's one scaler, so that each
    task starts at the scale the last one found). Returns (seconds, images seen)."""
    device = y.device
    learner.train()
    groups = learner.param_groups()
    for group in groups[1:]:
        group["lr"] = group["lr"] * lr_scale
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    steps_per_epoch = max(1, len(y) // cfg.batch)
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total, 1))
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    for step in range(total):
        if step % steps_per_epoch == 0:
            perm = torch.randperm(len(y), device=device, generator=g)
        idx = perm[(step % steps_per_epoch) * cfg.batch:][:cfg.batch]
        images = learner.backbone.prepare(x[idx], train=True, hflip=hflip, generator=g)
        with env.autocast(device, amp_dtype):
            loss = learner.loss(images, y[idx])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        with warnings.catch_warnings():   # fp16: a step the scaler skipped (inf gradients) still moves the schedule
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            sched.step()
        bar.update()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    bar.close()
    return time.perf_counter() - t0, total * min(cfg.batch, len(y))


@torch.no_grad()
def features(learner: Learner, x: torch.Tensor, cfg: Config, amp_dtype) -> torch.Tensor:
    """x uint8 (N, 3, H, W) -> backbone features (N, D), float32, eval mode, no augmentation."""
    learner.eval()
    with env.autocast(x.device, amp_dtype):
        return torch.cat([learner.backbone(learner.backbone.prepare(xb)).float() for xb in x.split(cfg.eval_batch)])


@torch.no_grad()
def align_head(learner: Learner, x: torch.Tensor, y: torch.Tensor, n_seen: int, cfg: Config,
               g: torch.Generator, amp_dtype, before: torch.Tensor | None = None) -> None:
    """Store the current task's class statistics (features of its training images), then retrain the head over
    all n_seen classes on features sampled from every seen class's Gaussian (our addition, `align_head`).
    before (N, D): the same images' features before the task; given, old classes' statistics first follow the
    drift (cfg.drift_ridge, our addition)."""
    feats = features(learner, x, cfg, amp_dtype)
    if before is not None:
        learner.compensate_drift(before, feats, int(y.min()), cfg.drift_ridge)
    learner.record_class_stats(feats, y)
    with torch.enable_grad():
        learner.align_head(n_seen, cfg.align_steps, generator=g)


def adapter_tensors(learner: Learner) -> dict:
    """{state-dict name: tensor} of every lora_A, lora_B, R_old, R_delta (a flat, weights_only-loadable dict)."""
    return {k: v.detach().cpu().clone() for k, v in learner.state_dict().items()
            if k.rsplit(".", 1)[-1] in ADAPTER_TENSORS}


def load_checkpoint(path: Path, device) -> dict:
    """A checkpoint, or a one-line ConfigError saying the file is damaged and what to do (nothing is deleted)."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        missing = [k for k in ("task", "state", "rows") if k not in blob]   # a truncated dict is damaged too
        if missing:
            raise KeyError(missing[0])
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path} is damaged ({type(e).__name__}): nothing was changed; move it out of the folder "
                          "to redo the run from its start, or use another --out") from None
    return blob


def build_learner(cfg: Config, num_classes: int) -> Learner:
    """The learner as a run starts it (on the CPU): backbone weights, adapters and head, seeded by cfg.seed.
    Building it twice gives the same tensors, which is what lets checkpoints leave the frozen weights out."""
    torch.manual_seed(cfg.seed)
    return make_learner(vit.build(cfg.backbone, pretrained=cfg.pretrained), num_classes, cfg)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)   # -0.0 and 0.0 differ, NaNs compare


def fingerprint(initial: dict, prints: dict, k: str) -> str:
    """A short sha256 of initial[k]'s bits, computed once per name (prints is the cache)."""
    if k not in prints:
        prints[k] = hashlib.sha256(_bits(initial[k]).numpy().tobytes()).hexdigest()[:16]
    return prints[k]


def changed_state(learner: Learner, initial: dict, prints: dict) -> tuple[dict, dict]:
    """(the entries of learner's state dict that differ from `initial`, {name: fingerprint} of those that do not).

    initial: the learner's state as built (on the CPU); prints: the fingerprint cache. A checkpoint keeps only
    what training changed (adapters, head, class statistics; every weight for finetune): the frozen backbone is
    rebuilt bit for bit from the same weights and seed (`build_learner`), and the fingerprints prove it was.
    ViT-B/16's frozen weights are 344 MB."""
    state, same = {}, {}
    for k, v in learner.state_dict().items():
        if k in initial and initial[k].shape == v.shape and torch.equal(_bits(initial[k]), _bits(v)):
            same[k] = fingerprint(initial, prints, k)
        else:
            state[k] = v
    return state, same


def restore(learner: Learner, blob: dict, initial: dict | None = None, prints: dict | None = None,
            path: Path | str = "checkpoint") -> None:
    """Load a checkpoint into learner: its saved entries, and for the names it left out the values the learner
    was built with (initial; by default the learner's own state, right for a freshly built one; prints: their
    fingerprint cache). A one-line ConfigError when they do not fit, or when the rebuilt weights are not the
    ones the run was trained from."""
    initial = {k: v.detach().cpu() for k, v in learner.state_dict().items()} if initial is None else initial
    prints = {} if prints is None else prints
    unchanged = blob.get("unchanged", {})
    try:
        for k, digest in unchanged.items():
            if k not in initial or fingerprint(initial, prints, k) != digest:
                raise RuntimeError(f"{k} is not the tensor this run was trained from (other weights, or another "
                                   "torch version's initialisation)")
        learner.load_state_dict({**{k: initial[k] for k in unchanged}, **blob["state"]})
    except RuntimeError as e:
        raise ConfigError(f"{path} does not fit this run ({str(e).splitlines()[0]}): move it out of the "
                          "folder to redo the run, or use another --out") from None


def load_learner(run_dir: Path | str, num_classes: int, device="cpu") -> Learner:
    """The learner a run folder's latest checkpoint holds (after its last finished task), in eval mode: for
    notebooks that look inside a finished run."""
    run_dir = Path(run_dir)
    cfg = Config.from_dict(json.loads((run_dir / "config.json").read_text()))
    ckpt = sorted((run_dir / "checkpoints").glob("task_*.pt"))[-1]
    learner = build_learner(cfg, num_classes)
    restore(learner, load_checkpoint(ckpt, "cpu"), path=ckpt)
    return learner.to(device).eval()


def resume(out: Path, learner: Learner, stream: list, device, log, initial: dict, prints: dict) -> tuple[dict, int]:
    """The progress saved in the latest checkpoint and the first task still to train (0 if none). initial: the
    learner's state as built (what the checkpoint's "unchanged" names refer to); prints: its fingerprint cache."""
    ckpts = sorted((out / "checkpoints").glob("task_*.pt"))
    if not ckpts:
        return {k: [] for k in PROGRESS_KEYS}, 0
    blob = load_checkpoint(ckpts[-1], device)
    start = blob["task"] + 1
    for t in range(start):   # replay the bookkeeping of finished tasks (adapter resets, head ranges)
        learner.begin_task(t, stream[t])
    restore(learner, blob, initial, prints, ckpts[-1])
    log(f"{out}: resuming after task {start}")
    return {k: blob.get(k, []) for k in PROGRESS_KEYS}, start


def finished_results(out: Path, cfg: Config) -> dict | None:
    """results.json of a finished run with this config, None if the run is not finished."""
    if not ((out / "results.json").exists() and (out / "config.json").exists()):
        return None
    prepare_out(out, cfg)   # refuses a folder holding another config
    try:
        return json.loads((out / "results.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{out / 'results.json'} is damaged: nothing was changed; move it out of the folder to "
                          "rebuild it from the last checkpoint, or use another --out") from None


def run(cfg: Config, out: str | Path | None = None, progress: bool = True, log=print) -> dict:
    """Train cfg.method over the benchmark's tasks; return (and write, if out) the results dict."""
    check(cfg)
    device = env.resolve_device(cfg.device)
    out = Path(out) if out is not None else None
    if out is not None and (done := finished_results(out, cfg)) is not None:
        log(f"{out}: already finished, results loaded")
        return done
    # Everything that can fail on bad input (data, weights) happens before anything is written.
    bench = load_benchmark(cfg).to(device)
    learner = build_learner(cfg, bench.num_classes)
    if out is not None:
        prepare_out(out, cfg)
        initial = {k: v.detach().clone() for k, v in learner.state_dict().items()}   # still on the CPU
        prints = {}   # fingerprints of initial, computed when a checkpoint first needs one
    learner = learner.to(device)
    amp_dtype = env.amp_dtype(cfg.amp, device)
    scaler = env.grad_scaler(device, amp_dtype)
    if cfg.compile:
        learner.backbone.compile()   # in place: state-dict names unchanged, so checkpoints stay portable

    joint = cfg.method == "joint"
    stream = [sum(bench.tasks, [])] if joint else bench.tasks   # joint: one task holding every class
    state, start = ({k: [] for k in PROGRESS_KEYS}, 0) if out is None else \
        resume(out, learner, stream, device, log, initial, prints)
    for t in range(start, len(stream)):
        torch.manual_seed(cfg.seed * 1000 + t)
        g = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + t)
        x, y = bench.split(list(range(len(bench.tasks))) if joint else t, "train")
        # drift is measured from the model as the previous task left it, so that whatever begin_task changes
        # (SD-LoRA's handover) is compensated too
        drifts = cfg.align_head and cfg.drift_ridge is not None and t > 0
        before = features(learner, x, cfg, amp_dtype) if drifts else None
        learner.begin_task(t, stream[t])
        # InfLoRA and clora_inp read the task's inputs (un-augmented) before training and again in end_task
        learner.prepare_task(lambda: (learner.backbone.prepare(xb) for xb in x.split(cfg.eval_batch)))
        warm = cfg.first_lr_scale if t == 0 and not joint else 1.0   # joint, the reference, trains at lr
        seconds, images = train_task(learner, x, y, cfg, f"{cfg.method} task {t + 1}/{len(stream)}", bench.hflip,
                                     g, amp_dtype, scaler, progress, warm)
        if out is not None:   # before end_task: R_delta still holds this task's routing
            tensors = adapter_tensors(learner)
            atomic_write(out / "adapters" / f"task_{t:02d}.pt", lambda p: torch.save(tensors, p))
        learner.end_task()
        seen = len(bench.tasks) if joint else t + 1
        if cfg.align_head:
            align_head(learner, x, y, bench.tasks[seen - 1][-1] + 1, cfg, g, amp_dtype, before)
        row, seen_acc, trow = evaluate(learner, bench, seen, device, cfg.eval_batch, amp_dtype)
        for key, value in zip(PROGRESS_KEYS, (row, seen_acc, trow)):
            state[key].append(value)
        if cfg.val_fraction > 0:
            val_row, val_seen, _ = evaluate(learner, bench, seen, device, cfg.eval_batch, amp_dtype, part="val")
            state["val_rows"].append(val_row)
            state["val_seen_acc"].append(val_seen)
        state["task_seconds"].append(seconds)
        state["images_per_second"].append(images / seconds if seconds > 0 else 0.0)
        if out is not None:
            changed, unchanged = changed_state(learner, initial, prints)
            blob = {"task": t, "state": changed, "unchanged": unchanged, **state}
            atomic_write(out / "checkpoints" / f"task_{t:02d}.pt", lambda p: torch.save(blob, p))
            for old in sorted((out / "checkpoints").glob("task_*.pt"))[:-1]:
                old.unlink()   # keep the last one: enough to resume, and small on disk
        log(f"{cfg.method} task {t + 1}/{len(stream)}: accuracy on seen classes {seen_acc:.1f} % ({seconds:.1f} s)"
            + (", saved" if out is not None else ""))

    results = collect_results(cfg, bench, learner, state, device)
    if out is not None:
        write_json(out / "results.json", results)
    return results


def collect_results(cfg: Config, bench: data.Benchmark, learner: Learner, state: dict, device) -> dict:
    """The results dict of DESIGN section 6 (accuracies in percent)."""
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
        "trainable_params": learner.trainable_params(), "total_params": learner.total_params(),
        "task_seconds": seconds,
        "train_images_per_second": sum(ips * s for ips, s in zip(state["images_per_second"], seconds))
        / max(sum(seconds), 1e-9),
        "device": str(device), "config": cfg.to_dict(),
        "versions": {"torch": torch.__version__, "python": platform.python_version(), "clora_lite": __version__},
    }
