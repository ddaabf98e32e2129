#!/usr/bin/env python3
"""Summarizes a GPU run: the CUDA benchmarks' JSON (Google Benchmark) and the PyTorch peer's JSON
into one markdown table set with the project's speed targets, printed and written to a file.

usage: summarize.py BENCH_JSON PUBLISHED_JSON SUMMARY_MD
"""
import json
import re
import sys

NAME = re.compile(r"^(?P<family>[a-z_]+)(?:<(?P<types>[^>]*)>)?(?P<args>(?:/[0-9]+)*)")


def parse(benchmarks):
    rows = []
    for b in benchmarks:
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        m = NAME.match(b["name"])
        if not m:
            continue
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        rows.append({
            "family": m.group("family"),
            "types": (m.group("types") or "").replace("ogpsa::", "").replace(" ", ""),
            "args": [int(a) for a in m.group("args").split("/")[1:]],
            "seconds": b["real_time"] * scale,
            "rate": b.get("bytes_per_second"),
            "blocks": b.get("blocks"),
            "parameters": b.get("parameters"),
        })
    return rows


def gbs(rate):
    return f"{rate / 1e9:.0f}" if rate else "-"


def verdict(ok):
    return "PASS" if ok else "**FAIL**"


def main():
    bench_path, published_path, out_path = sys.argv[1:4]
    with open(bench_path) as f:
        bench = json.load(f)
    try:
        with open(published_path) as f:
            published = {r["model"]: r for r in json.load(f)}
    except (OSError, ValueError):
        published = {}
    rows = parse(bench["benchmarks"])
    context = bench.get("context", {})
    lines = [f"# ogpsa CUDA backend on {context.get('device', 'an unknown device')}", ""]

    copies = [r for r in rows if r["family"] == "device_copy"]
    roofline = max((r["rate"] for r in copies), default=None)
    lines += ["## Device-to-device copy (the roofline; bytes read + written)", "",
              "| floats | GB/s |", "|---:|---:|"]
    lines += [f"| {r['args'][0]} | {gbs(r['rate'])} |" for r in copies]
    lines.append("")

    def fraction(rate):
        return f"{rate / roofline:.2f}" if rate and roofline else "-"

    lines += ["## Flat projection (one block; target: >= 0.80 of copy at d >= 64M, k <= 8)", "",
              "| gradient,basis | d | k | time (us) | GB/s | of copy | target |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in (r for r in rows if r["family"] == "flat_projection"):
        d, k = r["args"]
        target = verdict(r["rate"] / roofline >= 0.80) if roofline and d >= 64 << 20 and k <= 8 else ""
        lines.append(f"| {r['types']} | {d >> 20}M | {k} | {r['seconds'] * 1e6:.0f} | {gbs(r['rate'])} | "
                     f"{fraction(r['rate'])} | {target} |")
    lines.append("")

    lines += ["## Matrix-side projection (left basis m x k of an m x n gradient, batched cuBLAS GEMMs)", "",
              "| gradient,basis | m x n | k | math | time (us) | GB/s | of copy |", "|---|---|---:|---|---:|---:|---:|"]
    for r in (r for r in rows if r["family"] == "matrix_projection"):
        m, n, k, tf32 = r["args"]
        lines.append(f"| {r['types']} | {m} x {n} | {k} | {'tf32' if tf32 else 'exact'} | {r['seconds'] * 1e6:.0f} | "
                     f"{gbs(r['rate'])} | {fraction(r['rate'])} |")
    lines.append("")

    singles = {(r["types"], r["args"][0], r["args"][1]): r for r in rows if r["family"] == "one_block"}
    lines += ["## Whole model in one call vs one block of equal size (target: <= 1.2x)", "",
              "| gradient,basis | model | blocks | rank | time (ms) | GB/s | one block (ms) | ratio | target |",
              "|---|---|---:|---|---:|---:|---:|---:|---|"]
    for r in (r for r in rows if r["family"] == "whole_model"):
        model, k, matrix_k = r["args"]
        name = "100M" if model == 0 else "1B"
        blocks = f"{r['blocks']:.0f}" if r["blocks"] else "-"
        if matrix_k:
            lines.append(f"| {r['types']} | {name} | {blocks} | right {matrix_k} (weights), flat {k} (vectors) | "
                         f"{r['seconds'] * 1e3:.2f} | {gbs(r['rate'])} | - | - | |")
            continue
        single = singles.get((r["types"], model, k))
        ratio = r["seconds"] / single["seconds"] if single else float("nan")
        lines.append(f"| {r['types']} | {name} | {blocks} | flat {k} | {r['seconds'] * 1e3:.2f} | {gbs(r['rate'])} | "
                     f"{single['seconds'] * 1e3 if single else float('nan'):.2f} | {ratio:.2f} | {verdict(ratio <= 1.2)} |")
    lines.append("")

    estimators = [r for r in rows if r["family"] in
                  ("exact_svd_estimate", "svd_estimate", "cusolver_gram_syevd", "cusolver_gesvd", "cusolver_gesvdj",
                   "mean_gradient_estimate")]
    lines += ["## Estimators (d x 64 float snapshots, rank 8) vs cuSOLVER", "",
              "| estimator | d | time (ms) |", "|---|---:|---:|"]
    lines += [f"| {r['family']}{'<' + r['types'] + '>' if r['types'] else ''} | {r['args'][0] >> 20}M | "
              f"{r['seconds'] * 1e3:.2f} |" for r in estimators]
    lines.append("")

    lines += ["## Against the published procedure (PyTorch, host bases copied per tensor per step; bf16, rank 1)", "",
              "| model | published, pageable (ms) | published, pinned (ms) | ogpsa whole model (ms) | speedup | target |",
              "|---|---:|---:|---:|---:|---|"]
    ogpsa_runs = {r["args"][0]: r for r in rows
                  if r["family"] == "whole_model" and r["types"] == "bfloat16,bfloat16" and r["args"][1:] == [1, 0]}
    for model, name in ((0, "100M"), (1, "1B")):
        peer, ours = published.get(name), ogpsa_runs.get(model)
        if not peer or not ours:
            lines.append(f"| {name} | missing | | | | |")
            continue
        speedup = peer["seconds_per_step_pageable"] / ours["seconds"]
        target = verdict(speedup >= 50) if name == "1B" else ""
        lines.append(f"| {name} | {peer['seconds_per_step_pageable'] * 1e3:.1f} | {peer['seconds_per_step_pinned'] * 1e3:.1f} | "
                     f"{ours['seconds'] * 1e3:.2f} | {speedup:.0f}x | {target} |")
    lines.append("")

    text = "\n".join(lines)
    print(text)
    with open(out_path, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
