#!/usr/bin/env python3
"""Runs the ctest tests that carry one label, one group per process, and records what each group did.

A group is one source file of a doctest executable (`--source-file=`), so a crash, a sanitizer
report or a hang names its file and spares the others; executables that are not doctest's run
once per ctest test. With --sanitizer, every group runs under compute-sanitizer's memcheck; a group
that runs out of time there runs once more without it, so the test verdict is known anyway.

A group counts as skipped when it exits with its tests' SKIP_RETURN_CODE (77), prints a line that
starts with "SKIPPED" (what the CUDA tests print when they skip), or holds test cases doctest
skips. Skipped, failed, timed-out and unrun groups all make the exit status non-zero: a label
whose tests did not all run has not been validated.

Results go to OUT_DIR/tests-NAME.json after every group, so they survive a run that is cut short.

usage: run_test_groups.py BUILD_DIR OUT_DIR --label REGEX --name NAME [--sanitizer PATH]
                          [--group-timeout S] [--budget S]
"""
import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree

SANITIZER_EXIT = 86  # what compute-sanitizer returns when it found errors (--error-exitcode)
SKIP_LINE = re.compile(r"(^\s*|MESSAGE: )SKIPPED\b")
DOCTEST_SUMMARY = re.compile(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed")


def ctest_tests(build, label):
    listing = subprocess.run(["ctest", "--test-dir", build, "-L", label, "--show-only=json-v1"],
                             check=True, capture_output=True, text=True).stdout
    return json.loads(listing).get("tests", [])


def test_property(test, name, default=None):
    for prop in test.get("properties", []):
        if prop["name"] == name:
            return prop["value"]
    return default


def doctest_cases(executable):
    """The test cases an executable lists as doctest would, or None when it is not doctest's."""
    try:
        listing = subprocess.run([executable, "--list-test-cases", "--reporters=xml"], capture_output=True,
                                 text=True, timeout=60)
        root = ElementTree.fromstring(listing.stdout)
    except (OSError, subprocess.SubprocessError, ElementTree.ParseError):
        return None
    cases = root.findall(".//TestCase")
    return cases if root.tag == "doctest" and cases else None


def groups_of(tests):
    """Groups to run: per source file of each doctest executable, else per ctest test."""
    groups, seen = [], set()
    for test in tests:
        command = test.get("command") or []
        if not command:
            continue
        executable = command[0]
        skip_code = int(test_property(test, "SKIP_RETURN_CODE", 77))
        workdir = test_property(test, "WORKING_DIRECTORY")
        if executable in seen:
            continue
        cases = doctest_cases(executable)
        if cases is None:
            groups.append({"name": test["name"], "command": command, "cases": None, "doctest_skipped": 0,
                           "skip_code": skip_code, "workdir": workdir})
            continue
        seen.add(executable)
        files = {}
        for case in cases:
            files.setdefault(case.get("filename"), []).append(case)
        # Names relative to the folder the files share, which is long and the same for all.
        common = os.path.dirname(next(iter(files))) if len(files) == 1 else os.path.commonpath(list(files))
        for file, file_cases in files.items():
            groups.append({"name": f"{os.path.basename(executable)}: {os.path.relpath(file, common)}",
                           "command": [executable, f"--source-file={file}", "--duration=true"],
                           "cases": len(file_cases),
                           "doctest_skipped": sum(c.get("skipped") == "true" for c in file_cases),
                           "skip_code": skip_code, "workdir": workdir})
    return groups


def stop_on_terminate(process):
    """Takes the group's processes down with this one when a limit above it terminates it."""
    def terminate(signum, frame):
        os.killpg(process.pid, signal.SIGKILL)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


def run_streaming(command, timeout, workdir):
    """Runs a command, echoing its output as it comes; returns (exit status or None on timeout, output)."""
    print("$ " + shlex.join(command), flush=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", cwd=workdir, start_new_session=True)
    stop_on_terminate(process)
    lines = []

    def echo():
        for line in process.stdout:
            lines.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()

    reader = threading.Thread(target=echo, daemon=True)
    reader.start()
    try:
        status = process.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        status = None
    reader.join(timeout=5)
    return status, "".join(lines)


def verdict(group, status, output):
    """What a finished run of a group says: (status word, cases run, note)."""
    summary = DOCTEST_SUMMARY.findall(output)
    ran = int(summary[-1][0]) if summary else None
    if status is None:
        return "timed out", ran, ""
    if status == group["skip_code"] or any(SKIP_LINE.search(line) for line in output.splitlines()):
        return "skipped", ran, "the tests skipped themselves (see the log)"
    if status == SANITIZER_EXIT:
        return "sanitizer errors", ran, "compute-sanitizer reported errors (see the log)"
    if status != 0:
        return "failed", ran, f"exit status {status}"
    if group["doctest_skipped"]:
        return "skipped", ran, f"{group['doctest_skipped']} test cases are marked skip"
    if group["cases"] is not None and ran != group["cases"]:
        return "failed", ran, f"ran {ran} of {group['cases']} test cases"
    return "passed", ran, ""


def run_group(group, sanitizer, timeout):
    command = group["command"]
    if sanitizer:
        command = [sanitizer, "--tool", "memcheck", "--error-exitcode", str(SANITIZER_EXIT)] + command
    start = time.monotonic()
    status, output = run_streaming(command, timeout, group["workdir"])
    word, ran, note = verdict(group, status, output)
    return {"status": word, "cases": group["cases"], "ran": ran, "note": note,
            "seconds": round(time.monotonic() - start, 1), "sanitizer": bool(sanitizer)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build")
    parser.add_argument("out")
    parser.add_argument("--label", required=True, help="ctest label regex, e.g. ^gpu$")
    parser.add_argument("--name", required=True, help="names the results file tests-NAME.json")
    parser.add_argument("--sanitizer", help="compute-sanitizer to run every group under")
    parser.add_argument("--group-timeout", type=float, default=120)
    parser.add_argument("--budget", type=float, default=300, help="seconds for all groups together")
    args = parser.parse_args()

    deadline = time.monotonic() + args.budget
    tests = [t for t in ctest_tests(args.build, args.label) if "bench" not in (test_property(t, "LABELS") or [])]
    groups = groups_of(tests)
    results = {"label": args.label, "sanitizer": args.sanitizer, "tests": len(tests), "groups": []}
    path = os.path.join(args.out, f"tests-{args.name}.json")

    def save():
        with open(path, "w") as f:
            json.dump(results, f, indent=1)

    if not groups:
        results["groups"].append({"name": f"label {args.label}", "status": "failed", "cases": 0, "ran": 0,
                                  "note": "ctest lists no test with this label", "seconds": 0, "sanitizer": False})
    for group in groups:
        left = deadline - time.monotonic()
        print(f"\n--- {group['name']} ({left:.0f}s of the test budget left)", flush=True)
        if left < 5:
            result = {"status": "not run", "cases": group["cases"], "ran": None, "note": "test budget spent",
                      "seconds": 0, "sanitizer": False}
        else:
            result = run_group(group, args.sanitizer, min(args.group_timeout, left))
            left = deadline - time.monotonic()
            if result["status"] == "timed out" and args.sanitizer and left >= 5:
                print(f"--- {group['name']}: timed out under compute-sanitizer; once more without it", flush=True)
                seconds = result["seconds"]
                result = run_group(group, None, min(args.group_timeout, left))
                result["note"] = (f"timed out after {seconds:.0f}s under compute-sanitizer, so run without it; "
                                  + result["note"]).rstrip("; ")
        result["name"] = group["name"]
        results["groups"].append(result)
        save()
        print(f"--- {group['name']}: {result['status'].upper()} in {result['seconds']}s {result['note']}", flush=True)
    save()
    bad = [g for g in results["groups"] if g["status"] != "passed"]
    print(f"\n=== label {args.label}: {len(results['groups']) - len(bad)} of {len(results['groups'])} groups passed"
          + "".join(f"\n    {g['status'].upper()}: {g['name']} {g['note']}" for g in bad), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
