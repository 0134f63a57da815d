"""schemathesis hooks of `cargo xtask fuzz` (xtask/src/fuzz.rs writes this file next to
each run's configuration).

schemathesis reuses generated header values across requests, so one Idempotency-Key
arrives with different commands. The producer refuses the later ones with 422 and the
problem type below, as the IETF Idempotency-Key draft says a server should: that refusal
is the contract, not a schema-valid request wrongly rejected. Only this one answer is
dropped from the positive-data check; every other 422 still fails the run.
"""

import re

import schemathesis

KEY_REUSED = "urn:kafka-cqrs:problem:idempotency-key-reused"
NOT_CAUGHT_UP = "urn:kafka-cqrs:problem:not-caught-up"


def problem_type(response):
    try:
        problem = response.json()
    except ValueError:
        return None
    return problem.get("type") if isinstance(problem, dict) else None


# The patterns of the descriptions' position headers. schemathesis's coverage phase has
# been seen to call a request "schema-valid" while one of these headers broke its pattern
# (`Document-Position: 0`); such a refusal is checked here against the pattern itself.
HEADER_PATTERNS = {
    "document-position": re.compile(r"^[0-2]:[0-9]{1,18}$"),
    "last-event-id": re.compile(r"^(|[0-9]{1,9}:[0-9]{1,18}(,[0-9]{1,9}:[0-9]{1,18})*)$"),
}


def breaks_a_header_pattern(case):
    for name, value in (case.headers or {}).items():
        pattern = HEADER_PATTERNS.get(name.lower())
        if pattern is not None and not pattern.match(str(value)):
            return True
    return False


def names_a_partition_twice(case):
    """A resume token (Last-Event-ID, or the lastEventId query) that names one partition
    twice matches the token's pattern, which cannot say "each partition at most once";
    the description says it, and the notifier refuses such a token with 400."""
    tokens = [v for k, v in (case.headers or {}).items() if k.lower() == "last-event-id"]
    tokens += [v for k, v in (case.query or {}).items() if k == "lastEventId"]
    for token in tokens:
        partitions = [part.split(":", 1)[0] for part in str(token).split(",") if part]
        numbers = [int(p) for p in partitions if p.isdigit()]
        if len(numbers) != len(set(numbers)):
            return True
    return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if (
        failure.code == "ST202"
        and response.status_code == 400
        and (breaks_a_header_pattern(case) or names_a_partition_twice(case))
    ):
        return False
    # A read at a Document-Position the read model has not reached waits the reader's
    # bound, then answers its documented 503 not-caught-up: the contract, not a crash
    # (fuzz.rs counts these apart from the 5xx).
    if response.status_code == 503 and problem_type(response) == NOT_CAUGHT_UP:
        return False
    if failure.code != "ST202" or response.status_code != 422:
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    return not (isinstance(problem, dict) and problem.get("type") == KEY_REUSED)
