"""RunPod's serverless data plane (`https://api.runpod.ai/v2/{endpoint_id}/...`): the job API.

`client.JobApi` sends /run, /runsync, /status, /stream, /cancel, /retry, /purge-queue and
/health over httpx, with bounded answers, 429 and Retry-After honoured and backoff with
jitter; `errors` holds its exceptions (without httpx), `SubmitLost` among them: a /run whose
reply was lost, so the job may exist.
"""
