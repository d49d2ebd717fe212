"""The fuzzer's report (bench/fuzz.py): counts per command and per mutation, internal-error groups
with a replay command each, hangs and crashes, projects written from mutants the oracle calls
invalid; as one JSON document (`FuzzReport.to_json`) or text tables (`render`)."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FuzzReport:
    seed: int
    models: list[str]
    backends: list[str]
    alternate: bool
    jobs: int
    cases: list[dict]
    wall_seconds: float
    baseline: dict = field(default_factory=dict)  # model -> oracle flags of the unmutated model (should be [])
    tensorflow_in_parent: bool = False
    setup_seconds: float = 0.0

    def outcomes(self):
        return [(case, command, r) for case in self.cases for command, r in case["commands"].items()]

    def count(self, status: str) -> int:
        return sum(r["status"] == status for _, _, r in self.outcomes())

    def invalid_projects(self) -> list[tuple[dict, str]]:
        return [(c, cmd) for c, cmd, r in self.outcomes() if r.get("project") and c.get("oracle")]

    def refused_valid(self) -> list[tuple[dict, str, dict]]:
        """Typed errors on mutants the oracle accepts: not a goal, but a verifier that refuses everything shows here."""
        return [(c, cmd, r) for c, cmd, r in self.outcomes() if r["status"] == "typed" and c.get("oracle") == []]

    internal_errors = property(lambda self: self.count("internal"))
    hangs = property(lambda self: self.count("hang"))
    crashes = property(lambda self: self.count("crash"))
    harness_errors = property(lambda self: sum(bool(c.get("harness_error")) for c in self.cases))

    def replay(self, case: dict, command: str) -> str:
        models = " ".join(os.path.relpath(m, ROOT) for m in self.models)
        backend = f" --backends {command.split(':')[1]}" if ":" in command else ""
        return f".venv/bin/python bench/fuzz.py --seed {self.seed} --models {models} --only {case['case']}{backend}"

    def _brief(self, c: dict, cmd: str, **extra) -> dict:
        return {"case": c["case"], "command": cmd, "model": os.path.relpath(c["model"], ROOT), "kind": c["kind"],
                "mutation": c["mutation"], **extra, "replay": self.replay(c, cmd)}

    def to_json(self) -> dict:
        rows = defaultdict(lambda: {"runs": 0, "success": 0, "typed": Counter(), "internal": 0, "hang": 0,
                                    "crash": 0, "other": 0, "projects": 0, "projects_from_invalid": 0,
                                    "ok_on_invalid": 0, "refused_valid": 0, "seconds": 0.0})
        groups, kinds = {}, defaultdict(Counter)
        for case, command, r in self.outcomes():
            row, status, invalid = rows[command], r["status"], bool(r.get("project") and case.get("oracle"))
            refused_valid = status == "typed" and case.get("oracle") == []
            row["ok_on_invalid"] += bool(status == "ok" and case.get("oracle"))
            row["refused_valid"] += refused_valid
            row["runs"] += 1
            row["seconds"] += r.get("seconds", 0.0)
            if status == "typed":
                row["typed"][str(r["exit"])] += 1
            else:
                row["success" if status == "ok" else status] += 1
            row["projects"] += bool(r.get("project"))
            row["projects_from_invalid"] += invalid
            if status == "internal":
                g = groups.setdefault(r["group"], {"group": r["group"], "count": 0, "commands": Counter(),
                                                   "example": self._brief(case, command, traceback=r["traceback"])})
                g["count"] += 1
                g["commands"][command] += 1
            for kind in case["kind"].split("+"):
                kinds[kind].update({"runs": 1, status: 1, "projects_from_invalid": invalid,
                                    "refused_valid": refused_valid})
        for row in rows.values():
            row["typed"] = dict(sorted(row["typed"].items(), key=lambda i: int(i[0])))
            row["seconds_per_run"] = round(row.pop("seconds") / row["runs"], 3)
        invalid = [self._brief(c, cmd, oracle=c["oracle"]) for c, cmd in self.invalid_projects()]
        n = len(self.cases)
        return {"cases": n, "seed": self.seed, "models": self.models, "backends": self.backends,
                "alternate_backends": self.alternate, "jobs": self.jobs, "wall_seconds": round(self.wall_seconds, 1),
                "setup_seconds": round(self.setup_seconds, 1),
                "cases_per_second": round(n / self.wall_seconds, 2) if self.wall_seconds else None,
                "tensorflow_in_parent": self.tensorflow_in_parent, "oracle_on_unmutated_models": self.baseline,
                "commands": dict(sorted(rows.items())), "internal_errors": self.internal_errors,
                "hangs": self.hangs, "crashes": self.crashes, "projects_from_invalid": len(invalid),
                "harness_errors": self.harness_errors, "goal_met": not (self.internal_errors or invalid),
                "internal_groups": sorted(({**g, "commands": dict(g["commands"])} for g in groups.values()),
                                          key=lambda g: -g["count"]),
                "hangs_and_crashes": [self._brief(c, cmd, status=r["status"], signal=r.get("signal"))
                                      for c, cmd, r in self.outcomes() if r["status"] in ("hang", "crash")],
                "projects_from_invalid_models": invalid,
                "refused_valid": len(self.refused_valid()),  # the first 200 of them:
                "refused_valid_models": [self._brief(c, cmd, message=r.get("message"))
                                         for c, cmd, r in self.refused_valid()[:200]],
                "mutations": {k: dict(v) for k, v in sorted(kinds.items())},
                "harness_error_cases": [{"case": c["case"], "error": c["harness_error"]}
                                        for c in self.cases if c.get("harness_error")]}

    def summary(self) -> str:
        return (f"{len(self.cases)} cases: {self.internal_errors} internal errors, {self.hangs} hangs, "
                f"{self.crashes} crashes, {len(self.invalid_projects())} projects from invalid models, "
                f"{self.harness_errors} harness errors")

    def text(self, limit: int = 20) -> str:
        return render(self.to_json(), limit)


def render(doc: dict, limit: int = 20) -> str:
    """The report as text tables, from its JSON document."""
    cols = ("runs", "success", "internal", "hang", "crash", "projects", "projects_from_invalid", "ok_on_invalid",
            "refused_valid", "seconds_per_run")
    lines = [f"fuzz: {doc['cases']} cases, seed {doc['seed']}, models {', '.join(doc['models'])}; backends "
             f"{'/'.join(doc['backends'])}{' (alternating per case)' if doc['alternate_backends'] else ''}; "
             f"{doc['jobs']} jobs; {doc['wall_seconds']} s (+{doc['setup_seconds']} s of set-up), "
             f"{doc['cases_per_second']} cases/s",
             *(f"WARNING: the oracle flags the unmutated {m}: {f}" for m, f in doc["oracle_on_unmutated_models"].items()
               if f), "",
             *_table(["command", *cols, "typed errors (exit:count)"],
                     [[k, *(row[c] for c in cols), " ".join(f"{e}:{n}" for e, n in row["typed"].items())
                       + (f" other:{row['other']}" if row["other"] else "")]
                      for k, row in doc["commands"].items()]),
             "", f"internal error groups: {len(doc['internal_groups'])}"]
    for g in doc["internal_groups"]:
        ex = g["example"]
        lines += [f"  {g['count']:>5}  {g['group']}  ({', '.join(f'{c} {n}' for c, n in g['commands'].items())})",
                  f"         e.g. case {ex['case']} ({ex['mutation']}): {ex['traceback'][-1][:150]}",
                  f"         replay: {ex['replay']}"]
    lines += ["", f"hangs and crashes: {len(doc['hangs_and_crashes'])}"]
    lines += [f"  case {h['case']} {h['command']}: {h['status']} {h['signal'] or ''} ({h['mutation']}); "
              f"replay: {h['replay']}" for h in doc["hangs_and_crashes"][:limit]]
    lines += ["", f"projects from invalid models: {doc['projects_from_invalid']}"]
    for p in doc["projects_from_invalid_models"][:limit]:
        lines += [f"  case {p['case']} {p['command']} {p['model']}: {p['mutation']}",
                  *(f"      oracle: {flag[:160]}" for flag in p["oracle"][:3])]
    lines += ["", f"typed errors on mutants the oracle accepts (informative): {doc['refused_valid']}"]
    lines += [f"  case {p['case']} {p['command']}: {p['mutation']}: {p['message'][:140]}"
              for p in doc["refused_valid_models"][:limit]]
    kinds = ("runs", "ok", "typed", "internal", "hang", "crash", "projects_from_invalid", "refused_valid")
    lines += ["", *_table(["mutation", *kinds], [[k, *(v.get(c, 0) for c in kinds)]
                                                 for k, v in doc["mutations"].items()]), "",
              f"goal (0 internal errors, 0 projects from invalid models): {'met' if doc['goal_met'] else 'NOT met'}"
              f"; harness errors: {doc['harness_errors']}"]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list]) -> list[str]:
    cells = [header, *([str(c) for c in row] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(r[i].replace(".", "", 1).isdigit() for r in cells[1:]) for i in range(len(header))]
    return ["  ".join(c.rjust(w) if right else c.ljust(w) for c, w, right in zip(r, widths, numeric, strict=True))
            .rstrip() for r in cells]
