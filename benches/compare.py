#!/usr/bin/env python3
"""Compare short commands on a shared, noisy machine.

hyperfine runs all runs of one command, then all of the next: a busy spell on
the machine lands on one command only. This runs the commands in turn, round
after round, so drift hits all of them alike, and reports medians (and the
ratio of each median to the first command's). With --instructions it also
counts each command's instructions once under callgrind: those counts do not
depend on what else the machine is doing.

    benches/compare.py [--runs N] [--warmup N] [--instructions] [--markdown FILE]
                       [--prepare NAME=COMMAND ...] NAME=COMMAND [NAME=COMMAND ...]

--prepare runs its command (untimed) before every run of the command NAME,
e.g. to tear down what the previous run made.
"""
import argparse
import shlex
import statistics
import subprocess
import sys
import time


def run_once(argv):
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"compare: {shlex.join(argv)} exited with {done.returncode}")
    return elapsed * 1000.0


def instructions(argv):
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in out.stderr.splitlines():
        if "Collected" in line:
            return int(line.split()[-1].replace(",", ""))
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--markdown")
    parser.add_argument("--prepare", action="append", default=[], metavar="NAME=COMMAND")
    parser.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    args = parser.parse_args()

    def split(item):
        name, sep, command = item.partition("=")
        if not sep:
            sys.exit(f"compare: expected NAME=COMMAND, got {item!r}")
        return name, shlex.split(command)

    named = [split(item) for item in args.commands]
    prepare = dict(split(item) for item in args.prepare)

    def timed(name, argv):
        if name in prepare:
            run_once(prepare[name])
        return run_once(argv)

    for _ in range(args.warmup):
        for name, argv in named:
            timed(name, argv)
    times = {name: [] for name, _ in named}
    for _ in range(args.runs):
        for name, argv in named:
            times[name].append(timed(name, argv))

    counts = {name: instructions(argv) for name, argv in named} if args.instructions else {}
    base_name = named[0][0]
    base_median = statistics.median(times[base_name])
    base_count = counts.get(base_name)
    header = "| Command | Median [ms] | P25 [ms] | Min [ms] | Mean ± σ [ms] | Median ratio |"
    rule = "|:---|---:|---:|---:|---:|---:|"
    if args.instructions:
        header += " Instructions | Ratio |"
        rule += "---:|---:|"
    lines = [header, rule]
    for name, _ in named:
        t = sorted(times[name])
        median = statistics.median(t)
        row = (
            f"| {name} | {median:.1f} | {t[len(t) // 4]:.1f} | {t[0]:.1f} | "
            f"{statistics.mean(t):.1f} ± {statistics.stdev(t):.1f} | {median / base_median:.2f} |"
        )
        if args.instructions:
            c = counts.get(name)
            ratio = f"{c / base_count:.2f}" if c and base_count else "?"
            row += f" {c / 1e6:.1f} M | {ratio} |" if c else " ? | ? |"
        lines.append(row)
    table = "\n".join(lines)
    print(f"{args.runs} rounds, commands interleaved; ratios against {base_name}.\n")
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
