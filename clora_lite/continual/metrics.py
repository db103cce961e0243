"""Continual-learning metrics from the accuracy matrix (all in percent).

acc[t][j]    accuracy on task j's test images after training task t (class-IL: argmax over all classes seen so far)
seen_acc[t]  accuracy over all test images of the tasks seen after task t (each image counts once, so a larger
             task weighs more)
Last-Acc    = seen_acc[T]
Inc-Acc     = mean_t seen_acc[t]
Forgetting  = mean_{j<T} ( max_{j<=t<T} acc[t][j] - acc[T][j] )
BWT         = mean_{j<T} ( acc[T][j] - acc[j][j] )
Task-IL     = mean_j (accuracy on task j after task T with the argmax taken within task j's own classes)
Forgetting, BWT and Task-IL weigh every task alike, whatever its size.
"""

FORMULAS = [
    "Last-Acc   = seen_acc[T]  (accuracy over all seen classes after the last task)",
    "Inc-Acc    = mean_t seen_acc[t]",
    "Forgetting = mean_{j<T} ( max_{j<=t<T} acc[t][j] - acc[T][j] )",
    "BWT        = mean_{j<T} ( acc[T][j] - acc[j][j] )",
    "Task-IL    = mean_j accuracy on task j with the argmax within its own classes, after the last task",
]


def forgetting(acc: list) -> float | None:
    """acc: T rows, row t holding acc[t][0..t]. None for a single task."""
    T = len(acc)
    if T < 2:
        return None
    return sum(max(acc[t][j] for t in range(j, T - 1)) - acc[T - 1][j] for j in range(T - 1)) / (T - 1)


def bwt(acc: list) -> float | None:
    T = len(acc)
    if T < 2:
        return None
    return sum(acc[T - 1][j] - acc[j][j] for j in range(T - 1)) / (T - 1)


def summarize(acc: list, seen_acc: list, task_il: list) -> dict:
    """acc: accuracy rows (row t has t+1 entries); seen_acc: per task; task_il: last row's task-IL accuracies."""
    return {"last_acc": seen_acc[-1], "inc_acc": sum(seen_acc) / len(seen_acc),
            "forgetting": forgetting(acc), "bwt": bwt(acc), "task_il_acc": sum(task_il) / len(task_il)}


def fmt(v, width=7):
    return f"{'-':>{width}}" if v is None else f"{v:{width}.1f}"


def report_table(rows: list) -> str:
    """rows: results dicts (one per method) -> a text table with the formulas underneath."""
    head = (f"{'method':<22}{'Last':>7}{'Inc':>7}{'Forget':>8}{'BWT':>8}{'TaskIL':>8}{'trainable':>11}"
            f"{'total params':>14}{'sec':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<22}{fmt(r['last_acc'])}{fmt(r['inc_acc'])}{fmt(r['forgetting'], 8)}"
                     f"{fmt(r['bwt'], 8)}{fmt(r['task_il_acc'], 8)}{r['trainable_params']:>11,}"
                     f"{r['total_params']:>14,}{sum(r['task_seconds']):>7.0f}")
    return "\n".join(lines + ["", "All numbers in percent. " + FORMULAS[0]] + [" " * 24 + f for f in FORMULAS[1:]])
