"""OCR-path line accuracy: studio PDF pages rasterized like a scan, ingested through the CLI with
`--ocr always`, scored against the labels of the same lines read from the text layer.

    uv run python bench/ocr_accuracy.py --base /tmp/base-heldout [--hold-out SLUG ...] [--pages 6]
        [--dpi 200 300] [--noise 0] [--rotate 0]

For each held-out script, `--pages` pages (evenly spread, title page skipped; `--page-list SLUG:P,P`
picks them) are rendered to an image-only PDF at each `--dpi` (optionally with Gaussian noise and a
small rotation), then ingested by `scriptlabel ingest --ocr always` in a fresh database, which stores
the OCR lines and the suggestions (the effective label a person sees: the model's, or the INT./EXT.
rule's) of the line model (`--base`, a model built without the held-out
scripts: `python -m labeling.build_pretrained --no-cv --out DIR --hold-out SLUG ...`). The truth is
each text-layer line of those pages with its label projected from the script's Fountain file over the
whole script (`labeling.corpus.load_studio_pdfs`). OCR lines are matched one-to-one to text-layer
lines of the same page by position and text (rapidfuzz); a text-layer line no OCR line matches is
*lost* and counts as an error. The same pages ingested from their text layer (`--ocr never`, same
model, same page subset) give the ceiling the OCR path is measured against.

Prints JSON: per dpi, accuracy including lost lines, accuracy on the lines found, the text-layer
ceiling, per-class recall, lines lost by kind, and per script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

DATA = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
HELD_OUT = ["rick-and-morty-105-meeseeks-and-destroy", "mr-right", "dirk-gently-102-lost-and-found", "me-him-her"]
MATCH_MIN_RATIO = 60.0  # rapidfuzz ratio (0-100) for an OCR line to count as reading a text-layer line
MAX_DY_PT = 8.0  # an OCR line's top within this many points of the text-layer line's (same row)


def pick_pages(n_pages: int, k: int) -> list[int]:
    """`k` pages spread over the script, title page skipped."""
    candidates = list(range(2, n_pages + 1))
    if len(candidates) <= k:
        return candidates
    idx = np.linspace(0, len(candidates) - 1, k).round().astype(int)
    return sorted({candidates[i] for i in idx})


def rasterize(pdf: Path, pages: list[int], out: Path, *, dpi: int, noise: float = 0.0, rotate: float = 0.0,
              seed: int = 0) -> Path:
    """An image-only PDF of `pages`: what a scan of them looks like to the OCR path."""
    from pdf2image import convert_from_path
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = []
    for page in pages:
        image = convert_from_path(str(pdf), dpi=dpi, first_page=page, last_page=page, grayscale=True)[0]
        if rotate:
            image = image.rotate(float(rng.uniform(-rotate, rotate)), resample=Image.BICUBIC, fillcolor=255)
        if noise:
            pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, noise, (image.height, image.width))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        images.append(image)
    images[0].save(out, save_all=True, append_images=images[1:], resolution=dpi)
    return out


def text_layer_subset(pdf: Path, pages: list[int], out: Path) -> Path:
    import pymupdf

    src = pymupdf.open(pdf)
    doc = pymupdf.open()
    for page in pages:
        doc.insert_pdf(src, from_page=page - 1, to_page=page - 1)
    doc.save(out)
    return out


def ingest_cli(db: Path, pdf: Path, *, ocr: str, env: dict, dpi: int | None = None) -> None:
    """`scriptlabel ingest` as a user runs it: the CLI path, a fresh process (`dpi`: its --dpi, else its default)."""
    cmd = [sys.executable, "-m", "labeling", "--db", str(db), "ingest", str(pdf), "--ocr", ocr, "--workers", "2",
           *(["--dpi", str(dpi)] if dpi else [])]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{pdf.name}: ingest failed: {done.stderr.strip()[-500:]}")


def stored_lines(db_path: Path) -> list[dict]:
    from store.db import open_db
    from store import labels as label_store

    db = open_db(db_path)
    rows = [dict(zip(("line_id", "page", "text", "x0", "y0", "x1", "y1"), r)) for r in db.execute(
        "SELECT line_id, page, text, x0, y0, x1, y1 FROM lines ORDER BY line_no")]
    # what a person sees and exports: the model's suggestion, or a rule's (INT./EXT. headings)
    shown = label_store.effective_labels(db).set_index("line_id")["label"].to_dict()
    for row in rows:
        row["pred"] = shown.get(row["line_id"])
    db.close()
    return rows


def match_page(truth: list[dict], found: list[dict]) -> dict[int, int]:
    """One-to-one matching of text-layer lines (truth) to OCR lines of one page: index → index."""
    from rapidfuzz import fuzz

    pairs = []
    for i, t in enumerate(truth):
        for j, f in enumerate(found):
            if abs(f["y0"] - t["y0"]) > MAX_DY_PT or f["x1"] < t["x0"] or f["x0"] > t["x1"]:
                continue
            ratio = fuzz.ratio(t["text"], f["text"])
            if ratio >= MATCH_MIN_RATIO:
                pairs.append((ratio, -abs(f["y0"] - t["y0"]), i, j))
    pairs.sort(reverse=True)
    out: dict[int, int] = {}
    used = set()
    for _ratio, _dy, i, j in pairs:
        if i not in out and j not in used:
            out[i] = j
            used.add(j)
    return out


def score_run(truth_pages: dict[int, list[dict]], found_pages: dict[int, list[dict]]) -> dict:
    """truth_pages/found_pages: page (1-based in the subset) → lines with `label` / `pred`."""
    n = correct = matched = matched_correct = 0
    lost: Counter = Counter()
    per_class_total: Counter = Counter()
    per_class_hit: Counter = Counter()
    spurious = 0
    lost_examples = []
    predicted: dict[tuple[int, int], str | None] = {}
    for page, truth in truth_pages.items():
        found = found_pages.get(page, [])
        pairing = match_page(truth, found)
        spurious += len(found) - len(pairing)
        for i, t in enumerate(truth):
            n += 1
            per_class_total[t["label"]] += 1
            if i not in pairing:
                predicted[(page, i)] = None
                lost[t["label"]] += 1
                if len(lost_examples) < 40:
                    lost_examples.append({"page": page, "label": t["label"], "text": t["text"][:60]})
                continue
            matched += 1
            predicted[(page, i)] = found[pairing[i]]["pred"]
            ok = found[pairing[i]]["pred"] == t["label"]
            correct += ok
            matched_correct += ok
            per_class_hit[t["label"]] += ok
    return {
        "lines": n,
        "accuracy_incl_lost": round(correct / n, 4) if n else None,
        "accuracy_on_found": round(matched_correct / matched, 4) if matched else None,
        "lost": n - matched,
        "lost_by_kind": dict(lost.most_common()),
        "spurious_ocr_lines": spurious,
        "recall_by_class": {c: round(per_class_hit[c] / per_class_total[c], 4) for c in sorted(per_class_total)},
        "support_by_class": dict(sorted(per_class_total.items())),
        "lost_examples": lost_examples,
        "_predicted": predicted,
    }


def by_page(rows: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for row in rows:
        out.setdefault(int(row["page"]), []).append(row)
    return out


def merge_scores(parts: list[dict]) -> dict:
    """Pool per-script scores (counts add up; rates recomputed)."""
    n = sum(p["lines"] for p in parts)
    lost = sum(p["lost"] for p in parts)
    correct = sum(round(p["accuracy_incl_lost"] * p["lines"]) for p in parts if p["lines"])
    found = n - lost
    lost_by = Counter()
    support = Counter()
    hits = Counter()
    for p in parts:
        lost_by.update(p["lost_by_kind"])
        support.update(p["support_by_class"])
        for c, r in p["recall_by_class"].items():
            hits[c] += round(r * p["support_by_class"][c])
    return {"lines": n, "accuracy_incl_lost": round(correct / n, 4) if n else None,
            "accuracy_on_found": round(correct / found, 4) if found else None, "lost": lost,
            "lost_by_kind": dict(lost_by.most_common()), "spurious_ocr_lines": sum(p["spurious_ocr_lines"] for p in parts),
            **({"worse_than_text_layer": sum(p["worse_than_text_layer"] for p in parts)}
               if all("worse_than_text_layer" in p for p in parts) else {}),
            "recall_by_class": {c: round(hits[c] / support[c], 4) for c in sorted(support)},
            "support_by_class": dict(sorted(support.items()))}


def run_script(slug: str, script, pages: list[int], *, dpis: list[int], noise: float, rotate: float, env: dict,
               tmp: Path, ingest_dpi: int | None = None) -> dict:
    pdf = DATA / "studio_pdfs" / "pdf" / f"{slug}.pdf"
    frame = script.lines
    truth_pages: dict[int, list[dict]] = {}
    for k, page in enumerate(pages, 1):
        sel = frame[frame["page"] == page]
        truth_pages[k] = [{"text": r.text, "x0": r.x0, "y0": r.y0, "x1": r.x1, "y1": r.y1, "label": lab}
                          for r, lab in zip(sel.itertuples(), script.labels[sel.index.to_numpy()])]
    result = {"pages": pages}
    subset = text_layer_subset(pdf, pages, tmp / f"{slug}-text.pdf")
    ingest_cli(tmp / f"{slug}-text.db", subset, ocr="never", env=env)
    result["text_layer"] = score_run(truth_pages, by_page(stored_lines(tmp / f"{slug}-text.db")))
    text_pred = result["text_layer"].pop("_predicted")
    for dpi in dpis:
        started = time.perf_counter()
        scan = rasterize(pdf, pages, tmp / f"{slug}-{dpi}.pdf", dpi=dpi, noise=noise, rotate=rotate)
        ingest_cli(tmp / f"{slug}-{dpi}.db", scan, ocr="always", env=env, dpi=ingest_dpi)
        scored = score_run(truth_pages, by_page(stored_lines(tmp / f"{slug}-{dpi}.db")))
        ocr_pred = scored.pop("_predicted")
        # lines the text layer's suggestion got right and the OCR path's did not (lost or misread)
        worse = [{"page": page, "label": truth_pages[page][i]["label"], "ocr": ocr_pred[(page, i)],
                  "text": truth_pages[page][i]["text"][:60]}
                 for (page, i), label in text_pred.items()
                 if label == truth_pages[page][i]["label"] and ocr_pred[(page, i)] != label]
        result[f"ocr_{dpi}"] = {**scored, "worse_than_text_layer": len(worse), "worse_examples": worse[:20],
                                "seconds": round(time.perf_counter() - started, 1)}
    return result


def check_base(base: Path | None, slugs: list[str]) -> bool:
    """True when the model never saw `slugs` (its config records what it was trained on)."""
    from labeling.training.lines import base_dir

    directory = base or base_dir()
    try:
        trained = json.loads((Path(directory) / "config.json").read_text())["metrics"]["scripts"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return not any(f"studio_pdf/{slug}" in trained for slug in slugs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=None,
                        help="a base line model built without the --hold-out scripts (default: the shipped one, "
                             "which saw them: the JSON then says held_out false)")
    parser.add_argument("--hold-out", nargs="+", default=HELD_OUT, metavar="SLUG")
    parser.add_argument("--pages", type=int, default=6, help="pages per script (spread evenly; title page skipped)")
    parser.add_argument("--page-list", nargs="*", default=[], metavar="SLUG:P,P",
                        help="exact pages for a script, e.g. mr-right:82,83")
    parser.add_argument("--dpi", nargs="+", type=int, default=[200, 300])
    parser.add_argument("--noise", type=float, default=0.0, help="Gaussian pixel noise (std, 0-255 scale)")
    parser.add_argument("--rotate", type=float, default=0.0, help="random rotation up to this many degrees")
    parser.add_argument("--examples", action="store_true", help="list lost lines (text) in the JSON")
    parser.add_argument("--ingest-dpi", type=int, default=None,
                        help="the resolution `ingest --dpi` renders the scans at (default: ingest's own default)")
    args = parser.parse_args()
    if not (DATA / "studio_pdfs").exists():
        raise SystemExit(f"{DATA / 'studio_pdfs'}: not found; this bench needs ../shared/data "
                         "(or $SCRIPTLABEL_SHARED_DATA)")
    from labeling.corpus.sources import load_studio_pdfs

    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    if args.base is not None:
        env["SCRIPTLABEL_LINE_BASE"] = str(args.base.resolve())
    chosen = {}
    for spec in args.page_list:
        slug, _, pages = spec.partition(":")
        chosen[slug] = sorted({int(p) for p in pages.split(",") if p})
    started = time.perf_counter()
    scripts = {s.script_id.split("/")[-1]: s for s in load_studio_pdfs(slugs=args.hold_out)}
    missing = sorted(set(args.hold_out) - set(scripts))
    if missing:
        raise SystemExit(f"--hold-out: no studio PDF with a Fountain transcription named {missing}")
    report: dict = {"base": str(args.base) if args.base else "shipped", "held_out": check_base(args.base, args.hold_out),
                    "dpi": args.dpi, "ingest_dpi": args.ingest_dpi or "default", "noise": args.noise, "rotate": args.rotate, "scripts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for slug in args.hold_out:
            script = scripts[slug]
            pages = chosen.get(slug) or pick_pages(int(script.lines["page"].max()), args.pages)
            report["scripts"][slug] = run_script(slug, script, pages, dpis=args.dpi, noise=args.noise,
                                                 rotate=args.rotate, env=env, tmp=Path(tmp), ingest_dpi=args.ingest_dpi)
            print(json.dumps({slug: {k: v.get("accuracy_incl_lost") for k, v in report["scripts"][slug].items()
                                     if isinstance(v, dict)}}), file=sys.stderr, flush=True)
    for key in ["text_layer"] + [f"ocr_{d}" for d in args.dpi]:
        report[key] = merge_scores([s[key] for s in report["scripts"].values()])
    if not args.examples:
        for s in report["scripts"].values():
            for key, value in s.items():
                if isinstance(value, dict):
                    value.pop("lost_examples", None)
                    value.pop("worse_examples", None)
    report["target"] = {"ocr_200_accuracy_incl_lost": 0.98}
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
