"""Continual-learning metrics from the accuracy matrix (all in percent).

R[t][j]  accuracy on task j's test images after training task t (class-IL: argmax over all classes seen so far)
A_t      accuracy over all test images of the tasks seen after task t
Last-Acc    = A_T
Inc-Acc     = mean_t A_t
Forgetting  = mean_{j<T} ( max_{j<=t<T} R[t][j] - R[T][j] )
BWT         = mean_{j<T} ( R[T][j] - R[j][j] )
Task-IL     = mean_j (accuracy on task j after task T with the argmax taken within task j's own classes)
"""

FORMULAS = [
    "Last-Acc   = A_T  (accuracy over all seen classes after the last task)",
    "Inc-Acc    = mean_t A_t",
    "Forgetting = mean_{j<T} ( max_{j<=t<T} R[t][j] - R[T][j] )",
    "BWT        = mean_{j<T} ( R[T][j] - R[j][j] )",
    "Task-IL    = mean_j accuracy on task j with the argmax within its own classes, after the last task",
]


def forgetting(R: list) -> float | None:
    """R: T rows, row t holding R[t][0..t]. None for a single task."""
    T = len(R)
    if T < 2:
        return None
    return sum(max(R[t][j] for t in range(j, T - 1)) - R[T - 1][j] for j in range(T - 1)) / (T - 1)


def bwt(R: list) -> float | None:
    T = len(R)
    if T < 2:
        return None
    return sum(R[T - 1][j] - R[j][j] for j in range(T - 1)) / (T - 1)


def summarize(R: list, seen_acc: list, task_il: list) -> dict:
    """R: accuracy rows (row t has t+1 entries); seen_acc: A_t per task; task_il: last row's task-IL accuracies."""
    return {"last_acc": seen_acc[-1], "inc_acc": sum(seen_acc) / len(seen_acc),
            "forgetting": forgetting(R), "bwt": bwt(R), "task_il_acc": sum(task_il) / len(task_il)}


def fmt(v, width=7):
    return f"{'-':>{width}}" if v is None else f"{v:{width}.1f}"


def report_table(rows: list) -> str:
    """rows: results dicts (one per method) -> a text table with the formulas underneath."""
    head = f"{'method':<22}{'Last':>7}{'Inc':>7}{'Forget':>8}{'BWT':>8}{'TaskIL':>8}{'trainable':>11}{'total':>10}{'sec':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<22}{fmt(r['last_acc'])}{fmt(r['inc_acc'])}{fmt(r['forgetting'], 8)}"
                     f"{fmt(r['bwt'], 8)}{fmt(r['task_il_acc'], 8)}{r['trainable_params']:>11,}"
                     f"{r['total_params']:>10,}{sum(r['task_seconds']):>7.0f}")
    return "\n".join(lines + ["", "All numbers in percent. " + FORMULAS[0]] + [" " * 24 + f for f in FORMULAS[1:]])
