"""Turn podctl's data (spec problems, plans, apply results) into text, markdown or JSON.

Pure: decides nothing, reads no files, touches no terminal; colour only when asked.
"""

from __future__ import annotations

import json

from reconciler.plans import Plan, plan_to_dict
from reconciler.render.plan_markdown import plan_markdown
from reconciler.render.plan_text import plan_text
from reconciler.render.problems import problem_dict, problems_json, problems_text
from reconciler.render.summary import summary_json, summary_text


def plan_json(plan: Plan) -> str:
    """The plan file / `--format json` shape, indented."""
    return json.dumps(plan_to_dict(plan), indent=2)


__all__ = [
    "plan_json",
    "plan_markdown",
    "plan_text",
    "problem_dict",
    "problems_json",
    "problems_text",
    "summary_json",
    "summary_text",
]
