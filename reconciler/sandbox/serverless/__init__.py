"""RunPod Serverless in the sandbox: endpoints (control plane) and queue jobs run by local workers.

Modules: `endpoints` (the endpoint resource: validation, defaults, rendering; pure; errors are
`rest.api.Problem`), `store` (endpoints and jobs in `serverless.json`),
`jobs` (the job record and its states), `engine` (queue, retention, TTL, worker supervisor),
`worker` (the worker subprocess: runs a handler file, stdlib only), `routes` (`/v2/serverless...`
as a route of the REST v2 transport, the data plane under `/serverless/v2/{endpoint_id}/...`).
Facts come from the shared reference `runpod-serverless.md` (sections cited as "§n").
"""
