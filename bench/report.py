"""Write BENCHMARKS.md from the wrk outputs and crypto rates that bench/run.sh collected.

Each case has RESULTS/<case>.max.txt (full load) and RESULTS/<case>.half.txt (paced at half
that rate), both wrk --latency outputs, and RESULTS/crypto.json contains the one-thread aws-lc-rs
rates. A case whose files are missing is reported as not measured.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess

# Full-load cases: name, label, baseline kind, minimum ratio to the baseline.
# Baseline kinds:
#   "baseline"  the bare axum server
#   "jwt:ALG"   the lower of the bare axum server and the raw verify rate of ALG times the cores
#   "case:NAME" another case
#   "sign:ALG"  the raw signing rate of ALG times the cores
THROUGHPUT_CASES = [
    ("baseline", "bare axum baseline", None, None),
    ("api-key", "native API key, POST /v1/verify", "baseline", 0.85),
    ("jwt-RS256", "native JWT RS256, POST /v1/verify", "jwt:RS256", 0.75),
    ("jwt-ES256", "native JWT ES256, POST /v1/verify", "jwt:ES256", 0.75),
    ("jwt-EdDSA", "native JWT EdDSA, POST /v1/verify", "jwt:EdDSA", 0.75),
    ("legacy-jwt", "legacy JWT RS256 (inline JWKS), POST /v1/verify", "case:jwt-RS256", 0.9),
    ("legacy-api-key", "legacy API key (sql_keys, SHA-256, cached)", "case:api-key", 0.9),
    ("issue-RS256", "client_credentials issuance RS256, POST /oauth/token", "sign:RS256", 0.6),
    ("introspect", "introspection (RFC 7662), POST /oauth/introspect", None, None),
]
# Cases served from caches in memory, for which p99 at half load must stay below this many ms.
CACHED_CASES = {"api-key", "jwt-RS256", "jwt-ES256", "jwt-EdDSA", "legacy-jwt", "legacy-api-key"}
P99_LIMIT_MS = 2.0
PEER_CASES = [
    ("issue", "client_credentials issuance", "issue-RS256", "peer-issue"),
    ("introspect", "introspection (RFC 7662)", "introspect", "peer-introspect"),
]
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(path):
    """Return {rps, p50, p99, requests, errors} from a wrk --latency output, or None."""
    if not os.path.exists(path):
        return None
    text = open(path, encoding="utf-8").read()
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not rate:
        return None

    def percentile(label):
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m)\b", text, re.M)
        return float(match.group(1)) * UNITS_MS[match.group(2)] if match else None

    requests = re.search(r"^\s+(\d+) requests in", text, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if sockets:
        errors += sum(int(value) for value in sockets.groups())
    return {
        "rps": float(rate.group(1)),
        "p50": percentile(50),
        "p99": percentile(99),
        "requests": int(requests.group(1)) if requests else None,
        "errors": errors,
    }


def command_output(arguments):
    try:
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def machine_lines(cores):
    cpu = "unknown"
    memory = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    return [
        f"- CPU: {cpu}, {cores} cores (`nproc`)",
        f"- memory: {memory}",
        f"- kernel: {platform.system()} {platform.release()}",
        f"- tools: {command_output(['wrk', '-v'])}; {command_output(['rustc', '--version'])}; "
        f"node {command_output(['node', '--version'])}",
    ]


def peer_version():
    package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer", "node_modules",
                           "oidc-provider", "package.json")
    try:
        with open(package, encoding="utf-8") as package_file:
            return json.load(package_file)["version"]
    except (OSError, ValueError, KeyError):
        return "(version unknown)"


def ms(value):
    return "n/a" if value is None else f"{value:.2f} ms"


def rate(value):
    return "n/a" if value is None else f"{value:,.0f}/s"


def baseline_for(kind, results, crypto, cores):
    """Return (description, value) of a throughput case's baseline."""
    base = results.get("baseline")
    base_rps = base["rps"] if base else None
    if kind == "baseline":
        return "bare axum", base_rps
    if kind.startswith("jwt:"):
        algorithm = kind[4:]
        verify = crypto.get(algorithm, {}).get("verify_per_second")
        if verify is None or base_rps is None:
            return f"min(axum, {algorithm} verify x {cores})", None
        raw = verify * cores
        if raw < base_rps:
            return f"{algorithm} verify x {cores} cores", raw
        return "bare axum (below raw verify)", base_rps
    if kind.startswith("case:"):
        other = results.get(kind[5:])
        return f"native `{kind[5:]}`", other["rps"] if other else None
    if kind.startswith("sign:"):
        algorithm = kind[5:]
        sign = crypto.get(algorithm, {}).get("sign_per_second")
        return f"{algorithm} sign x {cores} cores", sign * cores if sign else None
    raise ValueError(kind)


def verdict(ratio, target):
    if ratio is None or target is None:
        return "n/a"
    return "met" if ratio >= target else "missed"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True)
    parser.add_argument("--cores", type=int, required=True)
    parser.add_argument("--seconds", required=True)
    parser.add_argument("--threads", required=True)
    parser.add_argument("--connections", required=True)
    parser.add_argument("--pacing-delay-ms", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--note", default="")
    parser.add_argument("--limits", required=True)
    parser.add_argument("--section", action="append", default=[],
                        help="Markdown file of another benchmark script, included when it exists")
    parser.add_argument("--output", required=True)
    options = parser.parse_args()

    cores = options.cores
    results = {}
    half = {}
    names = [case[0] for case in THROUGHPUT_CASES] + [case[3] for case in PEER_CASES]
    for name in names:
        results[name] = parse_wrk(os.path.join(options.results, f"{name}.max.txt"))
        half[name] = parse_wrk(os.path.join(options.results, f"{name}.half.txt"))
    with open(os.path.join(options.results, "crypto.json"), encoding="utf-8") as crypto_file:
        crypto = json.load(crypto_file)

    out = ["# Benchmarks", ""]
    if options.note:
        out += [f"**{options.note}**", ""]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out += [
        f"Written by `bench/run.sh` on {now} at commit {options.commit}. Every figure below comes "
        "from that one run, with the load generator on the same machine as the servers.",
        "",
        "## Machine",
        "",
        *machine_lines(cores),
        "",
        "## Commands",
        "",
        "```sh",
        f"BENCH_SECONDS={options.seconds} bench/run.sh",
        "```",
        "",
        "For each case the script runs, against servers it starts on 127.0.0.1:",
        "",
        "```sh",
        f"wrk -t{options.threads} -c{options.connections} -d{options.seconds}s --latency "
        "-s bench/verify.lua URL   # or bench/form.lua for /oauth/token and introspection",
        f"BENCH_DELAY_MS={options.pacing_delay_ms} wrk -t{options.threads} -cN -d{options.seconds}s "
        "--latency -s ... URL   # paced run, N chosen for half the full-load rate",
        "```",
        "",
        "The daemon runs with `AUTHBRIDGE_LOGGING__LEVEL=warn`, the default batched audit mode and "
        "SQLite in a fresh temporary data directory per signing algorithm. The bare axum baseline "
        "(`bench/baseline`, binary `baseline`) answers `POST /v1/verify` with a fixed 200 JSON on "
        "the same axum and tokio versions, without the daemon's middleware, check and audit.",
        "",
        "The paced runs use wrk's `delay()` hook: each connection waits "
        f"{options.pacing_delay_ms} ms between requests, so the rate is set by the number of "
        "connections and lands somewhat below half, by the latency of each request. wrk 4 has no "
        "constant-rate mode and this pacing is closed-loop, so the p99 figures do not include "
        "the queueing that a request sent on schedule behind a slow one would see (coordinated "
        "omission). The \"paced rate\" column shows the rate reached.",
        "",
        "## Raw signature rates (aws-lc-rs, in-process)",
        "",
        "`crypto-rates` (in `bench/baseline`) signs and verifies a 400-byte message on one thread "
        f"for 2 s per figure. The targets use these rates times {cores} cores.",
        "",
        "| algorithm | sign, 1 thread | verify, 1 thread | sign x cores | verify x cores |",
        "|---|---|---|---|---|",
    ]
    for algorithm, rates in crypto.items():
        out.append(
            f"| {algorithm} | {rate(rates['sign_per_second'])} | {rate(rates['verify_per_second'])} "
            f"| {rate(rates['sign_per_second'] * cores)} | {rate(rates['verify_per_second'] * cores)} |"
        )

    out += [
        "",
        "## Throughput at full load",
        "",
        "| case | throughput | p50 | p99 | baseline | baseline value | ratio | target | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label, kind, target in THROUGHPUT_CASES:
        measured = results.get(name)
        if measured is None:
            out.append(f"| {label} | not measured | | | | | | | |")
            continue
        description, value = ("", None) if kind is None else baseline_for(kind, results, crypto, cores)
        ratio = measured["rps"] / value if value else None
        result = verdict(ratio, target)
        if measured["errors"]:
            result += f" ({measured['errors']} errors or non-2xx answers)"
        out.append(
            f"| {label} | {rate(measured['rps'])} | {ms(measured['p50'])} | {ms(measured['p99'])} "
            f"| {description} | {rate(value) if value else ''} "
            f"| {'' if ratio is None else f'{ratio:.2f}'} | {'' if target is None else f'>= {target}'} "
            f"| {result} |"
        )

    out += [
        "",
        "## Latency at half load",
        "",
        f"Target on the cached paths: p99 below {P99_LIMIT_MS:g} ms.",
        "",
        "| case | paced rate | share of full-load rate | p50 | p99 | result |",
        "|---|---|---|---|---|---|",
    ]
    for name, label, _, _ in THROUGHPUT_CASES:
        paced, full = half.get(name), results.get(name)
        if paced is None or full is None:
            out.append(f"| {label} | not measured | | | | |")
            continue
        result = "n/a"
        if name in CACHED_CASES and paced["p99"] is not None:
            result = "met" if paced["p99"] < P99_LIMIT_MS else "missed"
        if paced["errors"]:
            result += f" ({paced['errors']} errors or non-2xx answers)"
        out.append(
            f"| {label} | {rate(paced['rps'])} | {paced['rps'] / full['rps']:.2f} "
            f"| {ms(paced['p50'])} | {ms(paced['p99'])} | {result} |"
        )

    out += [
        "",
        "## Peer: node oidc-provider",
        "",
        f"`bench/peer/server.mjs` runs oidc-provider {peer_version()} on Node.js "
        f"{command_output(['node', '--version'])} with one `client_secret_basic` client, "
        "`clientCredentials` and `introspection` enabled, its in-memory adapter, and one Node.js "
        "process, which uses one core for JavaScript. It "
        "issues opaque access tokens that it stores in memory; authbridge issues signed RS256 "
        "JWTs and writes an audit event per request. Ratio = authbridge / oidc-provider.",
        "",
    ]
    unavailable = os.path.join(options.results, "peer.unavailable")
    if os.path.exists(unavailable):
        out += ["Not measured: " + open(unavailable, encoding="utf-8").read().strip()[:500], ""]
    out += [
        "| endpoint | authbridge | p50 / p99 | oidc-provider | p50 / p99 | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for _, label, ours_name, theirs_name in PEER_CASES:
        ours, theirs = results.get(ours_name), results.get(theirs_name)
        if ours is None or theirs is None:
            out.append(f"| {label} | {rate(ours['rps']) if ours else 'not measured'} | | "
                       f"{rate(theirs['rps']) if theirs else 'not measured'} | | |")
            continue
        flag = " (errors in a run)" if ours["errors"] or theirs["errors"] else ""
        out.append(
            f"| {label} | {rate(ours['rps'])} | {ms(ours['p50'])} / {ms(ours['p99'])} "
            f"| {rate(theirs['rps'])} | {ms(theirs['p50'])} / {ms(theirs['p99'])} "
            f"| {ours['rps'] / theirs['rps']:.2f}{flag} |"
        )

    out += ["", "## Profiles", ""]
    profiles = sorted(name for name in os.listdir(options.results) if name.endswith(".perf.txt"))
    if os.path.exists(os.path.join(options.results, "perf.unavailable")):
        out += ["perf could not record on this machine, so this run has no profiles.", ""]
    for name in profiles:
        case = name[: -len(".perf.txt")]
        with open(os.path.join(options.results, name), encoding="utf-8") as profile:
            lines = [line.rstrip().rstrip("- ").strip() for line in profile]
        text = "\n".join(line for line in lines if line)
        by_thread = any("[k]" not in line and "[.]" not in line for line in lines if line)
        order = "by thread name, then " if by_thread else ""
        out += [
            f"`perf record -F 499 -g` of the daemon during the `{case}` case at full load; "
            f"self time {order}by shared object and symbol (entries of 1.5 % and more):",
            "",
            "```",
            text or "(perf report printed nothing)",
            "```",
            "",
        ]

    for section in options.section:
        if os.path.exists(section):
            out += [open(section, encoding="utf-8").read().strip(), ""]

    out += ["## What limits it", ""]
    if os.path.exists(options.limits):
        out.append(open(options.limits, encoding="utf-8").read().strip())
    out.append("")

    with open(options.output, "w", encoding="utf-8") as report:
        report.write("\n".join(out))


if __name__ == "__main__":
    main()
