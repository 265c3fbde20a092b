"""A serverless worker's handler, RunPod's Python SDK convention: `handler(job)` gets
`{"id", "input"}` and returns the output (a generator streams its chunks).

On RunPod it runs in the endpoint's image (`runpod.serverless.start({"handler": handler})`);
the sandbox runs this file itself when the endpoint's env names it (PODCTL_SANDBOX_HANDLER).
"""


def handler(job):
    data = job["input"]
    if isinstance(data, dict) and "prompt" in data:
        words = str(data["prompt"]).split()
        return {"prompt": data["prompt"], "words": len(words), "upper": data["prompt"].upper()}
    return {"echo": data}
