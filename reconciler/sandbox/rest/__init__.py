"""RunPod's REST API v2 (`/v2/...`) served by the sandbox over the GraphQL state."""
