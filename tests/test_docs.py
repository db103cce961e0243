"""The README and docs/: short front door, tables that quote the shipped data, links that lead somewhere.

Reads files by path only (nothing imported from clora_lite), so it holds whatever the package's layout.
"""
from pathlib import Path
import json
import re
import shutil
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[1]
MAKE_DOCS = ROOT / "scripts" / "make_docs.py"
STUDY_DOC = ROOT / "docs" / "headroom_study.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_is_a_short_front_door():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 210


def test_make_docs_check_passes():
    """docs/headroom_study.md's table is what data/headroom_study.json gives: rerun the study, then make_docs."""
    r = subprocess.run([sys.executable, str(MAKE_DOCS), "--check"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


def test_make_docs_check_fails_in_one_line_on_a_stale_table_and_rewrites_it(tmp_path):
    for rel in ("scripts/make_docs.py", "data/headroom_study.json", "docs/headroom_study.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    doc = tmp_path / "docs" / "headroom_study.md"
    text = doc.read_text(encoding="utf-8")
    doc.write_text(text.replace("| frozen backbone | 57.6 ± 0.6 |", "| frozen backbone | 57.7 ± 0.6 |"),
                   encoding="utf-8")

    def make_docs(*args):
        return subprocess.run([sys.executable, str(tmp_path / "scripts" / "make_docs.py"), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    r = make_docs("--check")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "stale" in r.stderr, r.stderr
    assert make_docs().returncode == 0
    assert doc.read_text(encoding="utf-8") == text           # the table again, the prose around it untouched
    assert make_docs("--check").returncode == 0


def test_headroom_table_quotes_the_shipped_results():
    """Every row of docs/headroom_study.md's table (Last-Acc ± std, gap share, forgetting on each protocol) says
    what data/headroom_study.json says, to the printed digit: rerunning the study without updating the docs
    fails here."""
    d = json.loads((ROOT / "data" / "headroom_study.json").read_text(encoding="utf-8"))
    doc = STUDY_DOC.read_text(encoding="utf-8")
    table = doc[doc.index("| method | synthetic_inverted 5 × 10"):].split("\n\n")[0].splitlines()[2:]
    table = [line for line in table if line.startswith("|")]
    names = {"frozen backbone": "frozen", "joint (upper bound)": "joint"}
    seen = set()
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        label = names.get(cells[0], re.sub(r"[*]", "", cells[0]).split(" ")[0])
        seen.add(label)
        benches = ("inverted", "fashion", "fashion_1k", "fashion_b4", "domains")
        assert len(cells) == 1 + 2 * len(benches), line   # a label and (Last-Acc, forgetting) per protocol
        for bench, (acc, forgetting) in zip(benches, zip(cells[1::2], cells[2::2])):
            m = d[bench]["methods"].get(label)
            if m is None:   # a row run on some protocols only
                assert (acc, forgetting) == ("–", "–"), (bench, label)
                continue
            mean, std, share = re.fullmatch(r"([\d.]+) ± ([\d.]+)(?: \(([-+][\d.]+)\))?", acc).groups()
            quoted, shipped = (float(mean), float(std)), (round(m["test_last_mean"], 1), round(m["test_last_std"], 1))
            assert quoted == shipped, (bench, label)
            if share is not None:
                assert float(share) == round(m["gap_fraction"], 2), (bench, label)
            if forgetting != "–":
                assert float(forgetting) == round(m["forgetting_mean"], 1), (bench, label)
    # every row the study shipped (test_scripts.py checks the JSON holds every label of scripts/study.py)
    assert seen == {label for b in d.values() for label in b["methods"]}


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_relative_links_lead_to_files_that_exist():
    """Every relative link in README.md and docs/*.md to a file of this repository. Links into clora_lite/ are
    left out while the package is reorganised in parallel."""
    broken = []
    for md in DOCS:
        for target in LINK.findall(md.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):   # http:, mailto:, anchors
                continue
            path = (md.parent / target.split("#")[0]).resolve()
            if path.is_relative_to(ROOT / "clora_lite"):
                continue
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{md.relative_to(ROOT)}: {target}")
    assert not broken, broken
