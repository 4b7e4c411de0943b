"""The benchmark's results as a Markdown page, with the machine they were measured on."""

import datetime
import os
import platform

import psutil

TARGETS = """\
Targets, for a 2-core machine:
- end to end at 0 ms gateway latency: at least half the raw ceiling measured in the same run;
- at 50 ms latency: at least 90% of what the concurrency allows (concurrency / latency);
- jobs of a 1,000,000-contact campaign created in under 10 s;
- contact import at 50,000 rows per second or more;
- email_client's peak memory under 150 MB whatever the campaign's size;
- campaign and contact pages in under 100 ms with 1,000,000 contacts.
"""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}")


def verdict(passed: bool) -> str:
    return "met" if passed else "**not met**"


def render(results: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `python -m bench.run` on {datetime.date.today().isoformat()}, on {machine()}.",
        "Every phase runs the whole stack as `python -m stack mock` does, with the mock gateway accepting",
        "every message. Ratios compare numbers measured in the same run.",
        "",
        TARGETS,
        "| measure | value | target | |",
        "|---|---|---|---|",
    ]
    zero = results.get("latency_0")
    if zero:
        ratio = zero["emails_per_second"] / zero["ceiling_per_second"]
        lines += [
            f"| raw ceiling: plain client to the mock gateway, concurrency {zero['concurrency']} "
            f"| {zero['ceiling_per_second']:,.0f} emails/s | | |",
            f"| end to end, 0 ms latency, {zero['contacts']:,} contacts | {zero['emails_per_second']:,.0f} emails/s "
            f"({ratio:.0%} of the ceiling) | ≥ 50% | {verdict(ratio >= 0.5)} |",
            f"| contact import, {zero['contacts']:,} rows | {zero['import_rows_per_second']:,.0f} rows/s "
            f"| ≥ 50,000 | {verdict(zero['import_rows_per_second'] >= 50_000)} |",
            f"| job creation, {zero['contacts']:,} contacts | {zero['job_creation_seconds']:.2f} s | | |",
        ]
    fifty = results.get("latency_50")
    if fifty:
        allowed = fifty["concurrency"] / 0.050
        ratio = fifty["emails_per_second"] / allowed
        lines.append(
            f"| end to end, 50 ms latency, {fifty['contacts']:,} contacts | {fifty['emails_per_second']:,.0f} emails/s "
            f"({ratio:.0%} of {allowed:,.0f}) | ≥ 90% | {verdict(ratio >= 0.9)} |")
    million = results.get("million")
    if million:
        lines += [
            f"| job creation, {million['contacts']:,} contacts | {million['job_creation_seconds']:.2f} s | < 10 s "
            f"| {verdict(million['job_creation_seconds'] < 10)} |",
            f"| contact import, {million['contacts']:,} rows | {million['import_rows_per_second']:,.0f} rows/s "
            f"| ≥ 50,000 | {verdict(million['import_rows_per_second'] >= 50_000)} |",
        ]
        for page, milliseconds in million["page_ms"].items():
            lines.append(f"| {page}, {million['contacts']:,} contacts (median of 5) | {milliseconds:.1f} ms "
                         f"| < 100 ms | {verdict(milliseconds < 100)} |")
    lines += ["", "Peak memory of each process, in MB (PostgreSQL: proportional set of all its processes):", ""]
    phases = [(name, result) for name, result in results.items()]
    names = sorted({process for _, result in phases for process in result["peak_rss_mb"]})
    lines.append("| phase | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for name, result in phases:
        label = {"latency_0": "0 ms latency", "latency_50": "50 ms latency"}.get(name)
        if label is None:
            label = f"{result['contacts']:,}-contact campaign, {result['watch_seconds']:.0f} s of sending"
        cells = [f"{result['peak_rss_mb'].get(process, 0):.0f}" for process in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    email_client_peak = max(result["peak_rss_mb"].get("email_client", 0) for _, result in phases)
    lines += ["", f"email_client's peak: {email_client_peak:.0f} MB (target < 150 MB: {verdict(email_client_peak < 150)}).", ""]
    return "\n".join(lines)
