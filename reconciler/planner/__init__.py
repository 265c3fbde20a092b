"""The pure planner: desired + actual + recorded state -> Plan. No I/O.

Modules: `match` (which actual pod is which desired pod), `decide` (the decision table),
`fields` (FIELDS: every pod field once, and the views, create fields and fingerprint shape
read off it), `diff` (the field diff; deepdiff's one home), `placement` (GPU fallback
chain, prices, spot checks), `fingerprint` (hashes), `jobs` (which jobs run and why,
after_jobs), `forget` (records of pods gone outside podctl), `build` (`plan()`), `stale`
(`stale_reasons()`).

Choices worth knowing (where DESIGN.md and issue 4 leave room):
- Addresses: a desired or removed pod is `pod.NAME`; any further pod under that name (an
  orphan, or a second pod of a removed name) is `pod.NAME[POD_ID]`. `--target pod.NAME` takes
  them all. Changes are sorted by pod name, then the main change, then extras by pod id.
- A stopped pod with in-place changes is ONE change: action RESUME with `fields` listed; the
  executor resumes, then edits (podEditJob). A replace field on a stopped pod is a REPLACE.
- desired `stopped` and a pod that differs: STOP (or no-op) and a warning naming the fields
  ("changes wait until the pod runs again"); nothing is edited on a stopped pod.
- Drift needs the record's pod id and fingerprint to match: then differing fields are
  "changed outside podctl". A from_env value that differs is "from_env value differs" (podctl
  cannot tell which side moved). Env values of keys the spec no longer sets are shown as
  `(sensitive)`: they may have been secrets.
- A pod whose status is UNKNOWN is never acted on (a plan warning), even when removed.
- `protect` blocks TERMINATE and REPLACE of the protected spec pod, not the cleanup of its
  orphans; `force` lifts it. Spot: a bid under a placement's minimum is an error for that
  placement (for create, replace and resume), a bid over its on-demand price a warning.
- after_jobs: a pod with jobs, all recorded SUCCEEDED and none pending, converges to stopped
  (stop) or absent (terminate); a pending pod is brought back ("jobs to run: ..."), and a
  stop/terminate change after its run-jobs ends it again in the same apply.
- Jobs (`jobs`): a job runs when its ledger entry is missing, failed, unfinished, of another
  fingerprint (the reason names the inputs that changed), `rerun: always`, when a job it
  needs runs, or when its pod is created anew (a new disk). `rerun: never` runs once. The
  fingerprint hashes run, env (from_env salted), workdir, upload contents and the image.
- from_env values enter `spec_digest` and `Observed.digest` only as PBKDF2-SHA256 hashes salted
  by the variable name (20,000 rounds): a plan file never holds them, nor a cheap hash of them.
- Stopped storage is priced at $0.20/GB/month (730 h), RunPod's published stopped-volume rate;
  the API reference has no figure for it.
"""

from reconciler.planner.build import plan
from reconciler.planner.fingerprint import pod_fingerprint, spec_digest
from reconciler.planner.stale import stale_reasons

__all__ = ["plan", "pod_fingerprint", "spec_digest", "stale_reasons"]
