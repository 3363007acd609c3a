"""Detection quality on real labelled data, with default options, in one run:
`detect_anomalies` on every NAB series and `detect_breakouts` on every univariate TCPD
series. Prints both tables and writes bench/results/detection.json (each part also writes
its own file when run alone: bench/detection_nab.py, bench/detection_tcpd.py).

    python bench/detection.py
    python bench/detection.py --cv

`--cv` measures the defaults honestly: choosing defaults is part of the method, so it is
scored on series the choice never saw. Over the search space of bench/sweep.py, NAB is
scored leave-one-category-out and TCPD leave-one-series-out, each held-out part with the
setting that bench/sweep.py's committed rule (choose_nab, choose_tcpd) picks on the rest. Prints the out-of-fold figures per
fold beside the in-sample figures of the current defaults, and writes
bench/results/detection_cv.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import detection_nab  # noqa: E402  (bench scripts import each other as siblings)
import detection_tcpd  # noqa: E402
import sweep  # noqa: E402

CV_RESULTS = ROOT / "bench" / "results" / "detection_cv.json"


def spread(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values),
            "min": min(values), "max": max(values), "folds": len(values)}


def options_only(scores: dict, kind: str) -> dict:
    """The settings with every searched module constant at its first value (the rule
    off): the search over the options alone, to tell whether a rule earns its place."""
    off = {n: values[0] for n, values in sweep.SPACE[kind].items() if n.isupper()}
    return {s: v for s, v in scores.items()
            if all(json.loads(s)[n] == value for n, value in off.items())}


def cv_nab(restrict: bool = False) -> dict:
    """Leave one NAB category out: the held-out category's files are scored with the
    setting chosen on every other file; the total pools all files so scored."""
    scores = sweep.nab_scores(sweep.detections("anomalies"))
    if restrict:
        scores = options_only(scores, "anomalies")
    default = sweep.key(sweep.defaults("anomalies"))
    if default not in scores:  # the rule is on by default: the restricted search's ties
        default = sweep.key({**sweep.defaults("anomalies"), **{
            n: v[0] for n, v in sweep.SPACE["anomalies"].items() if n.isupper()}})
    files = sorted(scores[default])
    categories = sorted({scores[default][f]["category"] for f in files})
    folds, out_of_fold = [], []
    for category in categories:
        held = [f for f in files if scores[default][f]["category"] == category]
        chosen = sweep.choose_nab(scores, [f for f in files if f not in held], default)
        out_of_fold += [scores[chosen][f] for f in held]
        folds.append({"category": category, "files": len(held),
                      "chosen": json.loads(chosen),
                      "in_sample_defaults": sweep.nab_summary(
                          [scores[default][f] for f in held]),
                      "out_of_fold": sweep.nab_summary([scores[chosen][f] for f in held])})
    best = sweep.choose_nab(scores, files, default)
    return {
        "protocol": "leave one category out; among settings with training standard score "
                    f">= {sweep.NAB_STANDARD_FLOOR}, the highest training window F1 (else "
                    "the best standard score)",
        "space": sweep.SPACE["anomalies"], "defaults": sweep.defaults("anomalies"),
        "folds": folds,
        "total": {"in_sample_defaults": sweep.nab_summary([scores[default][f] for f in files]),
                  "out_of_fold": sweep.nab_summary(out_of_fold),
                  "in_sample_best": {"setting": json.loads(best), **sweep.nab_summary(
                      [scores[best][f] for f in files])}},
        "spread_out_of_fold": {m: spread([f["out_of_fold"][m] for f in folds])
                               for m in ("standard", "precision", "f1")},
    }


def cv_rule_alone(name: str) -> dict:
    """One searched rule (a module constant) chosen leave one category out with every
    option at its current default: does the rule itself win out of fold?"""
    scores = sweep.nab_scores(sweep.detections("anomalies"))
    base = sweep.defaults("anomalies")
    arms = {value: sweep.key({**base, name: value}) for value in sweep.SPACE["anomalies"][name]}
    off = arms[sweep.SPACE["anomalies"][name][0]]
    candidates = {k: scores[k] for k in arms.values()}
    files = sorted(scores[off])
    chosen, out_of_fold = {}, []
    for category in sorted({f.split("/")[0] for f in files}):
        held = [f for f in files if f.startswith(category + "/")]
        pick = sweep.choose_nab(candidates, [f for f in files if f not in held], off)
        chosen[category] = json.loads(pick)[name]
        out_of_fold += [scores[pick][f] for f in held]
    return {"rule": name, "values": sweep.SPACE["anomalies"][name], "chosen": chosen,
            "rule_off": sweep.nab_summary([scores[off][f] for f in files]),
            "out_of_fold": sweep.nab_summary(out_of_fold)}


def cv_tcpd() -> dict:
    """Leave one TCPD series out: each series the benchmark averages is scored with the
    setting chosen on the others."""
    scores = sweep.tcpd_scores(sweep.detections("breakouts"))
    default = sweep.key(sweep.defaults("breakouts"))
    names = sorted(scores[default])
    folds = []
    for name in names:
        chosen = sweep.choose_tcpd(scores, [n for n in names if n != name], default)
        folds.append({"series": name, "chosen": json.loads(chosen),
                      "in_sample_defaults": scores[default][name],
                      "out_of_fold": scores[chosen][name]})
    best = sweep.choose_tcpd(scores, names, default)
    return {
        "protocol": "leave one series out; the lowest mean rank of F1 and Cover over "
                    "the other series",
        "space": sweep.SPACE["breakouts"], "defaults": sweep.defaults("breakouts"),
        "folds": folds,
        "total": {"in_sample_defaults": sweep.tcpd_summary([f["in_sample_defaults"]
                                                            for f in folds]),
                  "out_of_fold": sweep.tcpd_summary([f["out_of_fold"] for f in folds]),
                  "in_sample_best": {"setting": json.loads(best), **sweep.tcpd_summary(
                      [scores[best][n] for n in names])}},
        "spread_out_of_fold": {m: spread([f["out_of_fold"][m] for f in folds])
                               for m in ("f1", "cover")},
    }


def _f(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_cv(nab: dict, tcpd: dict) -> None:
    print("NAB, leave one category out (in-sample = current defaults on all series)")
    print(f"{'category':22} {'std in':>7} {'std oof':>7} {'P in':>5} {'P oof':>5} "
          f"{'F1 in':>5} {'F1 oof':>6} {'FP in':>5} {'FP oof':>6}  chosen on the others")
    for fold in nab["folds"] + [{"category": "total", **nab["total"], "chosen": ""}]:
        i, o = fold["in_sample_defaults"], fold["out_of_fold"]
        print(f"{fold['category']:22} {_f(i['standard'], 1):>7} {_f(o['standard'], 1):>7} "
              f"{_f(i['precision'], 2):>5} {_f(o['precision'], 2):>5} {_f(i['f1'], 2):>5} "
              f"{_f(o['f1'], 2):>6} {i['false_positives']:>5} {o['false_positives']:>6}  "
              f"{fold['chosen']}")
    for metric, s in nab["spread_out_of_fold"].items():
        print(f"  out of fold {metric} per category: mean {_f(s['mean'], 3)} sd {_f(s['sd'], 3)}"
              f" range {_f(s['min'], 3)}..{_f(s['max'], 3)} ({s['folds']} categories)")
    best = nab["total"]["in_sample_best"]
    print(f"  best setting in-sample: {_f(best['standard'], 1)} {best['setting']}")
    if "options_only" in nab:
        o = nab["options_only"]["total"]["out_of_fold"]
        print(f"  searching the options alone, searched rules off: out of fold "
              f"standard {_f(o['standard'], 1)} precision {_f(o['precision'], 2)} F1 "
              f"{_f(o['f1'], 2)} FP {o['false_positives']}")
    for rule in nab.get("rules_alone", []):
        off, o = rule["rule_off"], rule["out_of_fold"]
        print(f"  {rule['rule']} alone, other options at their defaults: off {_f(off['standard'], 1)}"
              f" (P {_f(off['precision'], 2)}, FP {off['false_positives']}) -> out of fold "
              f"{_f(o['standard'], 1)} (P {_f(o['precision'], 2)}, FP {o['false_positives']});"
              f" chosen per category {sorted(set(rule['chosen'].values()))}")
    print()
    print("TCPD, leave one series out")
    print(f"{'series':22} {'F1 in':>6} {'F1 oof':>6} {'Cov in':>6} {'Cov oof':>7}  chosen")
    for fold in tcpd["folds"] + [{"series": "mean", **tcpd["total"], "chosen": ""}]:
        i, o = fold["in_sample_defaults"], fold["out_of_fold"]
        print(f"{fold['series']:22} {_f(i['f1']):>6} {_f(o['f1']):>6} {_f(i['cover']):>6} "
              f"{_f(o['cover']):>7}  {fold['chosen']}")
    for metric, s in tcpd["spread_out_of_fold"].items():
        print(f"  out of fold {metric} per series: mean {_f(s['mean'])} sd {_f(s['sd'])} "
              f"range {_f(s['min'])}..{_f(s['max'])} ({s['folds']} series)")
    best = tcpd["total"]["in_sample_best"]
    print(f"  best setting in-sample: F1 {_f(best['f1'])} Cover {_f(best['cover'])} "
          f"{best['setting']}")


def main_cv() -> None:
    nab, tcpd = cv_nab(), cv_tcpd()
    if any(name.isupper() for name in sweep.SPACE["anomalies"]):
        base = cv_nab(restrict=True)
        nab["options_only"] = {"total": base["total"], "spread_out_of_fold":
                               base["spread_out_of_fold"],
                               "chosen": [f["chosen"] for f in base["folds"]]}
        nab["rules_alone"] = [cv_rule_alone(n) for n in sweep.SPACE["anomalies"]
                              if n.isupper()]
    print_cv(nab, tcpd)
    CV_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    CV_RESULTS.write_text(json.dumps({"nab": nab, "tcpd": tcpd}, indent=2) + "\n")
    print(f"written {CV_RESULTS.relative_to(ROOT)}")


def main() -> None:
    nab = detection_nab.run()
    detection_nab.print_table(nab)
    print()
    tcpd = detection_tcpd.run()
    detection_tcpd.print_table(tcpd)
    out = ROOT / "bench" / "results" / "detection.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"nab": nab, "tcpd": tcpd}, indent=2, default=str) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true",
                        help="score the choice of defaults out of fold (bench/sweep.py's space)")
    if parser.parse_args().cv:
        main_cv()
    else:
        main()
