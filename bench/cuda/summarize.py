#!/usr/bin/env python3
"""Summarizes a GPU run from whatever of it finished: the steps' log (steps.tsv), the test groups
(tests-*.json), the CUDA benchmarks' JSON (bench-*.json, Google Benchmark; a file cut short by a
timeout is read up to its last complete benchmark) and the PyTorch peer's JSON (published.json),
into markdown tables with the project's speed targets, printed and written to RESULTS/summary.md.

usage: summarize.py RESULTS_DIR
"""
import csv
import datetime
import glob
import json
import os
import re
import sys

NAME = re.compile(r"^(?P<family>[a-z_]+)(?:<(?P<types>[^>]*)>)?(?P<args>(?:/[0-9]+)*)")
BENCH_STEPS = ["copy", "flat", "matrix", "model", "estimators", "cusolver_svd", "rest"]


def salvage(text):
    """Context and benchmarks of Google Benchmark JSON, also when the file ends mid-way."""
    try:
        data = json.loads(text)
        return data.get("context", {}), data.get("benchmarks", [])
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    context, benchmarks = {}, []
    at = text.find('"context"')
    if at >= 0:
        try:
            context = decoder.raw_decode(text, text.index("{", at))[0]
        except ValueError:
            pass
    at = text.find('"benchmarks"')
    if at < 0:
        return context, benchmarks
    at = text.find("[", at) + 1
    while at > 0:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        try:
            record, at = decoder.raw_decode(text, at)
        except ValueError:
            break
        benchmarks.append(record)
    return context, benchmarks


def load_benchmarks(folder):
    """Every bench-*.json: the first context found and all benchmarks, in the order the steps ran."""
    def order(path):
        step = os.path.basename(path)[len("bench-"):-len(".json")]
        return BENCH_STEPS.index(step) if step in BENCH_STEPS else len(BENCH_STEPS)

    context, benchmarks, partial = {}, [], []
    for path in sorted(glob.glob(os.path.join(folder, "bench-*.json")), key=order):
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        file_context, file_benchmarks = salvage(text)
        context = context or file_context
        benchmarks += file_benchmarks
        try:
            json.loads(text)
        except ValueError:
            partial.append(f"{os.path.basename(path)} (cut short: {len(file_benchmarks)} complete results read)")
    return context, benchmarks, partial


def parse(benchmarks):
    rows = []
    for b in benchmarks:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        m = NAME.match(b.get("name", ""))
        if not m or "real_time" not in b:
            continue
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        rows.append({
            "family": m.group("family"),
            "types": (m.group("types") or "").replace("ogpsa::", "").replace(" ", ""),
            "args": [int(a) for a in m.group("args").split("/")[1:]],
            "seconds": b["real_time"] * scale,
            "rate": b.get("bytes_per_second"),
            "blocks": b.get("blocks"),
        })
    return rows


def load_steps(folder):
    try:
        with open(os.path.join(folder, "steps.tsv"), newline="") as f:
            return [dict(zip(("step", "status", "seconds", "note"), row + [""] * 4))
                    for row in csv.reader(f, delimiter="\t") if row]
    except OSError:
        return []


def load_tests(folder):
    suites = []
    for path in sorted(glob.glob(os.path.join(folder, "tests-*.json"))):
        try:
            with open(path) as f:
                suites.append(json.load(f))
        except (OSError, ValueError):
            suites.append({"label": os.path.basename(path), "groups": [], "unreadable": True})
    return suites


def load_published(folder):
    try:
        with open(os.path.join(folder, "published.json")) as f:
            return {r["model"]: r for r in json.load(f)}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def gbs(rate):
    return f"{rate / 1e9:.0f}" if rate else "-"


def verdict(ok):
    return "PASS" if ok else "**FAIL**"


def verdict_section(steps, suites, partial):
    """The run's verdict first: every reason it is not a validation, one line each."""
    problems = [f"step **{s['step']}**: {s['status']}" + (f" ({s['note']})" if s["note"] else "")
                for s in steps if s["status"] not in ("ok", "skipped")]
    for suite in suites:
        bad = [g for g in suite["groups"] if g["status"] != "passed"]
        for status in sorted({g["status"] for g in bad}):
            names = ", ".join(g["name"] for g in bad if g["status"] == status)
            problems.append(f"tests {suite['label']}: {status.upper()} groups: {names}")
        if suite.get("unreadable"):
            problems.append(f"{suite['label']} is unreadable")
    problems += partial
    skipped = [s for s in steps if s["status"] == "skipped"]
    lines = ["## Verdict", ""]
    if not steps:
        lines.append("**FAIL**: nothing ran (no steps.tsv)")
    elif problems:
        lines.append("**FAIL**: this run does not validate the machine:")
        lines += [f"- {p}" for p in problems]
    else:
        lines.append("PASS: every step finished and every test group passed" +
                     (" (not run: " + ", ".join(s["step"] for s in skipped) + ")" if skipped else ""))
    return lines + [""]


def run_section(steps):
    lines = ["## Steps", "", "| step | status | seconds | note |", "|---|---|---:|---|"]
    lines += [f"| {s['step']} | {s['status']} | {s['seconds']} | {s['note']} |" for s in steps]
    return lines + [""]


def tests_section(suites):
    lines = []
    for suite in suites:
        sanitizer = "under compute-sanitizer memcheck" if suite.get("sanitizer") else "without compute-sanitizer"
        lines += [f"## Tests labelled {suite['label']} ({len(suite['groups'])} groups, {sanitizer})", "",
                  "| group | status | test cases run | seconds | note |", "|---|---|---:|---:|---|"]
        for g in suite["groups"]:
            ran = "-" if g.get("ran") is None else f"{g['ran']}" + (f" of {g['cases']}" if g.get("cases") else "")
            lines.append(f"| {g['name']} | {g['status']} | {ran} | {g['seconds']} | {g.get('note', '')} |")
        lines.append("")
    return lines


def projection_sections(rows):
    copies = [r for r in rows if r["family"] == "device_copy"]
    roofline = max((r["rate"] or 0 for r in copies), default=0) or None
    lines = ["## Device-to-device copy (the roofline; bytes read + written)", "", "| floats | GB/s |", "|---:|---:|"]
    lines += [f"| {r['args'][0]} | {gbs(r['rate'])} |" for r in copies] or ["| not measured | |"]
    lines.append("")

    def fraction(rate):
        return rate / roofline if rate and roofline else None

    def shown(value):
        return "-" if value is None else f"{value:.2f}"

    lines += ["## Flat projection (one block; target: >= 0.80 of copy at d >= 64M, k <= 8)", "",
              "| gradient,basis | d | k | time (us) | GB/s | of copy | target |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in (r for r in rows if r["family"] == "flat_projection" and len(r["args"]) == 2):
        d, k = r["args"]
        share = fraction(r["rate"])
        target = verdict(share >= 0.80) if share is not None and d >= 64 << 20 and k <= 8 else ""
        lines.append(f"| {r['types']} | {d >> 20}M | {k} | {r['seconds'] * 1e6:.0f} | {gbs(r['rate'])} | "
                     f"{shown(share)} | {target} |")
    lines += [] if any(r["family"] == "flat_projection" for r in rows) else ["| not measured | | | | | | |"]
    lines.append("")

    lines += ["## Matrix-side projection (left basis m x k of an m x n gradient, batched cuBLAS GEMMs)", "",
              "| gradient,basis | m x n | k | math | time (us) | GB/s | of copy |", "|---|---|---:|---|---:|---:|---:|"]
    for r in (r for r in rows if r["family"] == "matrix_projection" and len(r["args"]) == 4):
        m, n, k, tf32 = r["args"]
        lines.append(f"| {r['types']} | {m} x {n} | {k} | {'tf32' if tf32 else 'exact'} | {r['seconds'] * 1e6:.0f} | "
                     f"{gbs(r['rate'])} | {shown(fraction(r['rate']))} |")
    lines += [] if any(r["family"] == "matrix_projection" for r in rows) else ["| not measured | | | | | | |"]
    lines.append("")
    return lines


def model_section(rows):
    singles = {(r["types"], r["args"][0], r["args"][1]): r for r in rows if r["family"] == "one_block"}
    lines = ["## Whole model in one call vs one block of equal size (target: <= 1.2x)", "",
             "| gradient,basis | model | blocks | rank | time (ms) | GB/s | one block (ms) | ratio | target |",
             "|---|---|---:|---|---:|---:|---:|---:|---|"]
    for r in (r for r in rows if r["family"] == "whole_model" and len(r["args"]) == 3):
        model, k, matrix_k = r["args"]
        name = "100M" if model == 0 else "1B"
        blocks = f"{r['blocks']:.0f}" if r["blocks"] else "-"
        if matrix_k:
            lines.append(f"| {r['types']} | {name} | {blocks} | right {matrix_k} (weights), flat {k} (vectors) | "
                         f"{r['seconds'] * 1e3:.2f} | {gbs(r['rate'])} | - | - | |")
            continue
        single = singles.get((r["types"], model, k))
        if single:
            ratio = r["seconds"] / single["seconds"]
            compared = f"{single['seconds'] * 1e3:.2f} | {ratio:.2f} | {verdict(ratio <= 1.2)}"
        else:
            compared = "not measured | - |"
        lines.append(f"| {r['types']} | {name} | {blocks} | flat {k} | {r['seconds'] * 1e3:.2f} | {gbs(r['rate'])} | "
                     f"{compared} |")
    lines += [] if any(r["family"] == "whole_model" for r in rows) else ["| not measured | | | | | | | | |"]
    return lines + [""]


def estimator_section(rows):
    families = ("exact_svd_estimate", "svd_estimate", "mean_gradient_estimate", "cusolver_gram_syevd",
                "cusolver_gesvd", "cusolver_gesvdj")
    estimators = [r for r in rows if r["family"] in families and r["args"]]
    references = {(r["family"], r["args"][0]): r["seconds"] for r in estimators}

    def against(reference, r):
        seconds = references.get((reference, r["args"][0]))
        return f"{seconds / r['seconds']:.1f}x" if seconds and r["family"] != reference else "-"

    lines = ["## Estimators (d x 64 float snapshots, rank 8) vs cuSOLVER (speedup = cuSOLVER time / ours)", "",
             "| estimator | d | time (ms) | vs gesvd | vs gesvdj |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['family']}{'<' + r['types'] + '>' if r['types'] else ''} | {r['args'][0] >> 20}M | "
              f"{r['seconds'] * 1e3:.2f} | {against('cusolver_gesvd', r)} | {against('cusolver_gesvdj', r)} |"
              for r in estimators] or ["| not measured | | | | |"]
    return lines + [""]


def published_section(rows, published):
    lines = ["## Against the published procedure (PyTorch, host bases copied per tensor per step; bf16, rank 1)", "",
             "| model | published, pageable (ms) | published, pinned (ms) | ogpsa whole model (ms) | speedup | target |",
             "|---|---:|---:|---:|---:|---|"]
    ogpsa_runs = {r["args"][0]: r for r in rows
                  if r["family"] == "whole_model" and r["types"] == "bfloat16,bfloat16" and r["args"][1:] == [1, 0]}
    for model, name in ((0, "100M"), (1, "1B")):
        peer, ours = published.get(name), ogpsa_runs.get(model)
        if not peer or not ours:
            lines.append(f"| {name} | {'missing' if not peer else ''} | | {'missing' if not ours else ''} | | |")
            continue
        speedup = peer["seconds_per_step_pageable"] / ours["seconds"]
        target = verdict(speedup >= 50) if name == "1B" else ""
        lines.append(f"| {name} | {peer['seconds_per_step_pageable'] * 1e3:.1f} | {peer['seconds_per_step_pinned'] * 1e3:.1f} | "
                     f"{ours['seconds'] * 1e3:.2f} | {speedup:.0f}x | {target} |")
    return lines + [""]


def summary(folder):
    context, benchmarks, partial = load_benchmarks(folder)
    rows = parse(benchmarks)
    steps, suites = load_steps(folder), load_tests(folder)
    date = context.get("date", datetime.date.today().isoformat())[:10]
    lines = [f"# ogpsa CUDA backend on {context.get('device', 'an unknown device')} ({date})", ""]
    lines += verdict_section(steps, suites, partial)
    lines += run_section(steps)
    lines += tests_section(suites)
    lines += projection_sections(rows)
    lines += model_section(rows)
    lines += published_section(rows, load_published(folder))
    lines += estimator_section(rows)
    return "\n".join(lines)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = sys.argv[1]
    text = summary(folder)
    print(text)
    with open(os.path.join(folder, "summary.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
