"""A local emulator of RunPod: GraphQL and REST v2 on loopback, pods reachable over real SSH.

Modules: `catalog` (GPU types, prices, data centers), `state` (pods, capacity, the state file),
`schema` (graphql-core over schemas/runpod.graphql and the resolvers), `faults` (injected
failures), `app` (the ASGI app: auth, faults, /graphql, /_sandbox admin), `rest` (REST v2
at /v2: routes, kept request schema, views over the same store), `procs` (commands in
a private mount namespace, killing a pod's processes), `ssh` (one asyncssh server per pod,
kept in step with the store), `ssh_server` (the asyncssh pieces, imported lazily),
`server` (the entry point), `layout` (files in the data dir) and `control` (start/stop/status
from another process, `ensure_running`). Nothing here imports click; the commands live in
`reconciler.cli.sandbox`.
"""
