#!/usr/bin/env python3
"""Check persona YAML files or utterance JSONL files written for the briefs.

python3 /work/briefs/check.py personas DIR
python3 /work/briefs/check.py utterances FILE.jsonl
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

TOPICS = {
    "identity",
    "card_purpose",
    "fund_source",
    "card_custody",
    "counterparty",
    "occupation",
    "default",
}
OUTCOMES = {"completed", "wrong_person", "refused", "voicemail"}
BANDS = {"low", "medium", "high"}
ENT = {"person", "relationship", "occupation", "employer", "location", "amount", "purpose"}
PURPOSES = {
    "salary",
    "daily_spending",
    "savings_investment",
    "business",
    "loan_repayment",
    "collect_for_others",
    "other",
}
SCEN = {"new_account", "dormant", "suspicious_txn"}
ACTS = {
    "confirm",
    "deny",
    "third_party",
    "wrong_number",
    "announcement",
    "ask_who",
    "ask_repeat",
    "hard_of_hearing",
    "doubt_caller",
    "want_human",
    "busy",
    "refuse",
    "dont_know",
    "hostile",
    "greeting",
    "answer",
}
HOLDER = {None, "self", "family", "other", "unknown"}
CUSTODY = {"lent", "rented", "sold", "credentials_shared", "lost"}
FUNDS = {
    "salary",
    "business",
    "family",
    "asset_sale",
    "rent",
    "loan",
    "pension",
    "savings",
    "reimbursement",
    "spending",
    "gambling",
    "for_others",
    "task_rebate",
    "stranger_investment",
    "scam_payment",
    "crypto_otc",
    "unexplained",
}
CPARTY = {None, "named", "known_unnamed", "stranger", "unknown"}


def personas(d: Path) -> int:
    bad = 0
    accts, phones, ids = Counter(), Counter(), Counter()
    files = sorted(d.glob("*.yaml"))
    counts = Counter()
    for f in files:
        probs = []
        try:
            p = yaml.safe_load(f.read_text(encoding="utf-8"))
        except Exception as e:
            print(f"{f.name}: YAML error: {e}")
            bad += 1
            continue
        if not isinstance(p, dict) or set(p) - {"id", "language", "account", "answers", "expected"}:
            print(f"{f.name}: top-level keys must be id, language, account, answers, expected")
            bad += 1
            continue
        pid = p.get("id", "")
        ids[pid] += 1
        if f.stem != pid:
            probs.append("file name must be <id>.yaml")
        if not re.fullmatch(r"[a-z]\d{3}_[a-z0-9_]+", str(pid)):
            probs.append("id must look like b001_slug")
        a = p.get("account") or {}
        if not re.fullmatch(r"\d{16,19}", str(a.get("account_id", ""))):
            probs.append("account_id: 16-19 digits, quoted")
        if not re.fullmatch(r"\+86\d{11}", str(a.get("phone", ""))):
            probs.append("phone: +86 and 11 digits, quoted")
        if not re.fullmatch(r"\d{4}", str(a.get("card_last4", ""))):
            probs.append("card_last4: 4 digits, quoted")
        if a.get("scenario") not in SCEN:
            probs.append(f"scenario must be one of {sorted(SCEN)}")
        if not isinstance(a.get("model_score"), (int, float)) or not 0 <= a["model_score"] <= 1:
            probs.append("model_score 0..1")
        if not a.get("name"):
            probs.append("account.name missing")
        extra = set(a) - {
            "account_id",
            "name",
            "phone",
            "card_last4",
            "scenario",
            "model_score",
            "branch",
            "gender",
            "txn",
        }
        if extra:
            probs.append(f"unknown account keys {extra}")
        if a.get("gender") not in (None, "M", "F"):
            probs.append("gender M or F")
        txn = a.get("txn")
        if txn is not None:
            if set(txn) - {"amount", "date", "counterparty"} or not isinstance(
                txn.get("amount"), (int, float)
            ):
                probs.append('txn: {amount: number, date: "YYYY-MM-DD", counterparty: name}')
        accts[str(a.get("account_id"))] += 1
        phones[str(a.get("phone"))] += 1
        ans = p.get("answers") or {}
        if set(ans) - TOPICS:
            probs.append(f"answers keys must be among {sorted(TOPICS)}")
        if not all(v is None or isinstance(v, str) for v in ans.values()):
            probs.append("answers are strings or null")
        ex = p.get("expected") or {}
        out = ex.get("outcome")
        if out not in OUTCOMES:
            probs.append(f"expected.outcome in {sorted(OUTCOMES)}")
        band = ex.get("risk_band")
        ents = ex.get("entities") or {}
        if out == "completed":
            if band not in BANDS:
                probs.append("completed needs risk_band low/medium/high")
            if not 1 <= len(ents) <= 4:
                probs.append("completed needs 1-4 entities")
        else:
            if band is not None or ents:
                probs.append("only completed personas have risk_band and entities")
        ident = ans.get("identity") or ""
        if re.search(r"\d|万|块|元|卡号|尾号", ident):
            probs.append("identity answer must not mention account details/numbers")
        txn_topics = {"fund_source", "counterparty"}
        said = " ".join(v for k, v in ans.items() if v and (txn is not None or k not in txn_topics))
        for k, v in ents.items():
            if k not in ENT:
                probs.append(f"entity label {k} not in {sorted(ENT)}")
                continue
            for item in v if isinstance(v, list) else [v]:
                item = str(item)
                if k == "purpose" and item not in PURPOSES:
                    probs.append(f"purpose {item} not in {sorted(PURPOSES)}")
                elif k == "amount" and not re.fullmatch(r"\d+(\.\d+)?", item):
                    probs.append("amount in Arabic digits, quoted")
                elif k in {"person", "occupation", "employer", "location"} and item not in said:
                    probs.append(
                        f"{k} '{item}' is not said verbatim in an answer the bot will ask"
                        + ("" if txn else " (no txn: fund_source/counterparty are not asked)")
                    )
        counts[(out, band)] += 1
        if probs:
            bad += 1
            print(f"{f.name}: " + "; ".join(probs))
    for k, n in list(accts.items()) + list(phones.items()) + list(ids.items()):
        if n > 1:
            print(f"duplicate {k} x{n}")
            bad += 1
    print(
        f"{len(files)} files, {bad} with problems; counts: "
        + ", ".join(f"{o}/{b}={n}" for (o, b), n in sorted(counts.items(), key=str))
    )
    return 1 if bad else 0


def utterances(f: Path) -> int:
    bad = 0
    n = 0
    seen = set()
    topics = Counter()
    for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        n += 1
        try:
            r = json.loads(line)
        except Exception as e:
            print(f"line {i}: not JSON: {e}")
            bad += 1
            continue
        probs = []
        keys = {"topic", "text", "acts", "holder", "custody", "funds", "counterparty", "entities"}
        if set(r) - keys - {"note"} or keys - set(r):
            probs.append(f"keys must be {sorted(keys)} (+ optional note)")
        if r.get("topic") not in TOPICS:
            probs.append("topic")
        if not isinstance(r.get("text"), str) or not r["text"].strip():
            probs.append("text")
        if r.get("text") in seen:
            probs.append("duplicate text")
        seen.add(r.get("text"))
        if not isinstance(r.get("acts"), list) or not r["acts"] or set(r["acts"]) - ACTS:
            probs.append(f"acts: non-empty list from {sorted(ACTS)}")
        if r.get("holder") not in HOLDER:
            probs.append(f"holder in {HOLDER}")
        if not isinstance(r.get("custody"), list) or set(r["custody"]) - CUSTODY:
            probs.append(f"custody: list from {sorted(CUSTODY)}")
        if not isinstance(r.get("funds"), list) or set(r["funds"]) - FUNDS:
            probs.append(f"funds: list from {sorted(FUNDS)}")
        if r.get("counterparty") not in CPARTY:
            probs.append(f"counterparty in {CPARTY}")
        ents = r.get("entities")
        if not isinstance(ents, dict):
            probs.append("entities: object label -> list")
        else:
            for k, v in ents.items():
                if k not in ENT or not isinstance(v, list):
                    probs.append(f"entities.{k}")
                    continue
                for item in v:
                    if k == "purpose" and item not in PURPOSES:
                        probs.append(f"purpose {item}")
                    elif k == "amount" and not re.fullmatch(r"\d+(\.\d+)?", str(item)):
                        probs.append("amount digits")
                    elif k in {"person", "occupation", "employer", "location"} and str(
                        item
                    ) not in r.get("text", ""):
                        probs.append(f"{k} '{item}' not verbatim in text")
        topics[r.get("topic")] += 1
        if probs:
            bad += 1
            print(f"line {i}: " + "; ".join(probs))
    print(f"{n} rows, {bad} with problems; by topic: {dict(topics)}")
    return 1 if bad else 0


if __name__ == "__main__":
    kind, path = sys.argv[1], Path(sys.argv[2])
    sys.exit(personas(path) if kind == "personas" else utterances(path))
