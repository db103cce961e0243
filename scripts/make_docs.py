"""Render the tables in docs/ from the data they quote, so they cannot go stale.

    python scripts/make_docs.py            # rewrite docs/headroom_study.md's table from data/headroom_study.json
    python scripts/make_docs.py --check    # exit 1, with one line, if the file is not what the data gives

Only the part between the marker comments `<!-- table:start -->` and `<!-- table:end -->` is generated; the prose
around it is written by hand and kept. Reads the JSON by path and imports nothing from clora_lite, so it works
whatever the package's layout.
"""
import argparse
import json
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "data" / "headroom_study.json"
DOC = ROOT / "docs" / "headroom_study.md"
START, END = "<!-- table:start -->", "<!-- table:end -->"

# protocol (scripts/study.py BENCHES) -> (column header, name in the caption); columns in this order, then any others
PROTOCOLS = {
    "inverted": ("synthetic_inverted 5 × 10", "inverted"),
    "fashion": ("fashion 5 × 2, 200/class", "fashion 5 × 2"),
    "fashion_1k": ("fashion 5 × 2, 1000/class", "fashion 5 × 2 with 1000 images per class"),
    "fashion_b4": ("fashion 4 + 2 + 2 + 2, 200/class", "fashion 4 + 2 + 2 + 2"),
    "domains": ("synthetic_domains 5 × 10, a domain per task", "domains"),
}
# row label (scripts/study.py ORDER) -> how the table names it; rows in the JSON's order
LABELS = {
    "frozen": "frozen backbone",
    "joint": "joint (upper bound)",
    "first_session": "first_session (baseline: adapt on task 1 only)",
    "ncm": "ncm (baseline: nearest class mean, frozen)",
    "inflora": "inflora (peer)",
    "sdlora": "sdlora (peer)",
    "clora": "clora (the paper's, as we read it)",
    "clora_warm_drift": "**clora_warm_drift (ours: the kit's best C-LoRA)**",
    "seq_lora_warm_drift": "seq_lora_warm_drift (ours, tuned alike)",
    "clora_warm": "clora_warm (ablation, borrowed: no drift compensation)",
    "clora_drift": "clora_drift (ablation, borrowed: no warm start)",
    "inflora_warm_drift": "inflora_warm_drift (borrowed)",
    "sdlora_warm_drift": "sdlora_warm_drift (borrowed)",
}
REFERENCES = ("frozen", "joint")   # the gap's two ends: no gap share of their own


def _seeds(seeds) -> str:
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


def _cell(m: dict, label: str) -> tuple:
    acc = f"{m['test_last_mean']:.1f}"
    if m.get("test_last_std") is not None:
        acc += f" ± {m['test_last_std']:.1f}"
    if label not in REFERENCES and m.get("gap_fraction") is not None:
        acc += f" ({m['gap_fraction']:+.2f})"
    forgetting = "–" if m.get("forgetting_mean") is None else f"{m['forgetting_mean']:.1f}"
    return acc, forgetting


def headroom_table(study: dict) -> str:
    """The caption and the table: test Last-Acc (gap share) and forgetting of every row on every protocol."""
    benches = [b for b in PROTOCOLS if b in study] + sorted(set(study) - set(PROTOCOLS))
    names = {b: PROTOCOLS.get(b, (b, b)) for b in benches}
    seeds = {s for b in benches for m in study[b]["methods"].values() for s in m["seeds"]}
    gaps = [f"{study[b]['joint_minus_frozen']:.1f}" + (" points" if i == 0 else "") + f" on {names[b][1]}"
            for i, b in enumerate(benches)]
    caption = (f"Test Last-Acc, mean ± std over {_seeds(seeds)}; in brackets the share of the joint − frozen gap "
               f"recovered, (method − frozen) / (joint − frozen), on the same seeds ({', '.join(gaps)}):")
    lines = textwrap.wrap(caption, 115, break_long_words=False, break_on_hyphens=False) + [""]
    header = ["method"]
    for i, b in enumerate(benches):
        header += [names[b][0] + (": Last-Acc (gap share)" if i == 0 else ""), "forgetting"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    labels = list(dict.fromkeys(label for b in benches for label in study[b]["methods"]))
    for label in labels:
        cells = [LABELS.get(label, label)]
        for b in benches:
            m = study[b]["methods"].get(label)
            cells += _cell(m, label) if m else ("–", "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(text: str, table: str) -> str:
    """text with everything between the markers replaced by table."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"needs one {START} before one {END}")
    head, rest = text.split(START)
    return head + START + "\n" + table + "\n" + END + rest.split(END, 1)[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if the file is stale")
    a = p.parse_args(argv)
    doc = DOC.relative_to(ROOT)
    text = DOC.read_text(encoding="utf-8")
    try:
        new = render(text, headroom_table(json.loads(STUDY.read_text(encoding="utf-8"))))
    except ValueError as e:
        print(f"make_docs: {doc}: {e}", file=sys.stderr)
        return 1
    if a.check:
        if new != text:
            print(f"make_docs: {doc} is stale (its table is not what {STUDY.relative_to(ROOT)} gives): "
                  f"run python scripts/make_docs.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        DOC.write_text(new, encoding="utf-8")
        print(f"make_docs: rewrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
