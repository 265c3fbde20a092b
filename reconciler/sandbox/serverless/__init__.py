"""RunPod Serverless in the sandbox: endpoints (control plane) and queue jobs run by local workers.

Modules: `endpoints` (the endpoint resource: validation, defaults, rendering; pure),
`problem` (REST v2 problem+json errors), `store` (endpoints and jobs in `serverless.json`),
`jobs` (the job record and its states), `engine` (queue, retention, TTL, worker supervisor),
`worker` (the worker subprocess: runs a handler file, stdlib only), `routes` (the ASGI routes:
`/v2/serverless...` and the data plane under `/serverless/v2/{endpoint_id}/...`).
Facts come from the shared reference `runpod-serverless.md` (sections cited as "§n").
"""
