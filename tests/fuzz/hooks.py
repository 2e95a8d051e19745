"""Schemathesis hooks of tests/fuzz/schemathesis.sh.

- post_stats bodies are signed with LEADERBOARD_SECRET over the exact bytes sent (a requests
  auth object sees the prepared body), so random stats get past authentication. Schemathesis
  still sends unsigned and wrongly signed requests: its negative cases drop or replace the
  Authorization header, and its `ignored_auth` check repeats successful posts without and with
  a wrong signature, each of which must get 403.
- Most generated stats are steered to a registered region of their job type and many reads
  to an orchestrator, model and pipeline that were posted, so the write path stores rows and
  the read routes answer with data, not only with `{}`. Each choice is derived from the
  generated data, so a run with the same seed sends the same requests.
- The requests and answers are counted and printed at the end.
"""

import atexit
import collections
import hashlib
import hmac
import os
import threading
import zlib

import requests
import schemathesis

SECRET = os.environ["LEADERBOARD_SECRET"].encode()

# The seed regions of migration V2 (docs/api.md, "Database").
TRANSCODING_REGIONS = [
    "GLOBAL", "ATL", "ATL2", "MDW", "FRA", "HOU", "LON", "LAX", "MAD", "MIA", "MOS2", "ASH", "NYC",
    "PRG", "SJO", "SAO", "SEA", "SIN", "STO", "SYD", "HND", "TOR",
]
AI_REGIONS = ["GLOBAL", "MDW", "FRA", "LAX"]
READ_PATHS = {"/api/aggregated_stats", "/api/score_history", "/api/raw_stats", "/api/top_ai_score", "/api/pipelines"}

_lock = threading.Lock()
_posted = {"orchestrators": [], "ai": []}
_answers = collections.Counter()


class Signature(requests.auth.AuthBase):
    """`Authorization: <hex HMAC-SHA256 of the body under SECRET>` on the prepared request."""

    def __call__(self, request):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers["Authorization"] = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        return request


schemathesis.auth.set_from_requests(Signature()).apply_to(path="/api/post_stats", method="POST")


def _pick(seed, choices):
    """A choice derived from `seed` (the generated data), so runs are reproducible."""
    return choices[zlib.crc32(repr(seed).encode()) % len(choices)]


def _filled(value):
    return isinstance(value, str) and value != ""


@schemathesis.hook
def before_call(context, case, **kwargs):
    path = case.operation.path
    if path == "/api/post_stats" and isinstance(case.body, dict):
        body = case.body
        # Three stats in four go to a registered region of their job type.
        if isinstance(body.get("region"), str) and zlib.crc32(repr(body).encode()) % 4 != 0:
            ai = _filled(body.get("model")) and _filled(body.get("pipeline"))
            body["region"] = _pick(body, AI_REGIONS if ai else TRANSCODING_REGIONS)
    elif path in READ_PATHS and isinstance(case.query, dict):
        query = case.query
        with _lock:
            orchestrators = list(_posted["orchestrators"])
            ai = list(_posted["ai"])
        # Half of the reads ask for something that was posted.
        if zlib.crc32(repr(sorted(query.items(), key=str)).encode()) % 2 == 0:
            if orchestrators and "orchestrator" in query:
                query["orchestrator"] = _pick(query, orchestrators)
            if ai and "model" in query and "pipeline" in query:
                query["model"], query["pipeline"] = _pick(query, ai)


@schemathesis.hook
def after_call(context, case, response):
    with _lock:
        _answers[(case.method.upper(), case.operation.path, response.status_code)] += 1
        if case.operation.path == "/api/post_stats" and response.status_code == 200:
            body = case.body
            orchestrator = body["orchestrator"].strip().lower()
            if orchestrator not in _posted["orchestrators"]:
                _posted["orchestrators"].append(orchestrator)
            if _filled(body.get("model")) and _filled(body.get("pipeline")):
                pair = (body["model"], body["pipeline"])
                if pair not in _posted["ai"]:
                    _posted["ai"].append(pair)


@atexit.register
def _report():
    total = sum(_answers.values())
    lines = [f"fuzz: {total} requests through the hooks (method path status: count)"]
    for (method, path, status), count in sorted(_answers.items()):
        lines.append(f"fuzz:   {method:7} {path:24} {status}: {count}")
    lines.append(f"fuzz: {len(_posted['orchestrators'])} orchestrators stored, {len(_posted['ai'])} AI model/pipeline pairs")
    report = os.environ.get("FUZZ_REPORT")
    if report:
        with open(report, "w") as f:
            f.write("\n".join(lines) + "\n")
    else:
        print("\n".join(lines))
