"""The router's prompts: versions, their governance and A/B tests.

`text` builds the system prompt and the fenced user turn from a PromptVersion; `services`
appends, activates and experiments (permission-checked, every switch recorded); `selectors`
reads versions, diffs and experiment results; `stats` holds the experiment statistics;
`admin` is the Django admin for all of it (registered from `apps/orchestrator/admin.py`).
"""
