#!/usr/bin/env python3
"""Runs RCAEval's BARO on cases exported by `blastradius export rcaeval` and reports where the
true root-cause service ranks.

    python3 -m venv /tmp/rca && /tmp/rca/bin/pip install RCAEval
    cargo run -p sim-faults --example faults_cli -- export rcaeval --system online-boutique \
        --faults cpu,delay --runs 1 --seed 1 --out /tmp/re --pre 120 --post 120
    /tmp/rca/bin/python sim-faults/scripts/check_rcaeval.py /tmp/re
"""
import glob
import os
import sys

import pandas as pd
from RCAEval.e2e.baro import baro

root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/re"
cases = sorted(glob.glob(os.path.join(root, "*_*", "*", "data.csv")))
if not cases:
    sys.exit(f"no cases under {root}")
hits = 0
for path in cases:
    case = os.path.dirname(path)
    service, fault = os.path.basename(os.path.dirname(case)).rsplit("_", 1)
    data = pd.read_csv(path)
    inject = int(open(os.path.join(case, "inject_time.txt")).read().strip())
    out = baro(data=data, inject_time=inject, dataset="online-boutique")
    ranks = out["ranks"]
    services = []
    for r in ranks:
        s = r.rsplit("_", 1)[0]
        if s not in services:
            services.append(s)
    rank = services.index(service) + 1 if service in services else None
    hits += rank is not None and rank <= 3
    print(f"{service}_{fault}: true service rank {rank}; top-3 {services[:3]}")
print(f"BARO read {len(cases)} case(s); AC@3 = {hits / len(cases):.2f}")
