"""Notifications as Slack messages: a line of text (what notifications and phones show) and
Block Kit blocks (what the channel shows), with a link to the run."""

from __future__ import annotations

from typing import Any

HEADLINES = {
    "run.started": ":arrow_forward: A run of *{title}* started",
    "run.finished": ":white_check_mark: A run of *{title}* passed",
    "run.deviated": ":warning: A run of *{title}* deviated",
    "run.failed": ":x: A run of *{title}* failed ({outcome})",
    "run.aborted": ":stop_button: A run of *{title}* was aborted",
    "run.interrupted": ":grey_exclamation: A run of *{title}* was interrupted",
    "run.refused": ":no_entry: A run of *{title}* was refused",
    "schedule.skipped": ":fast_forward: A scheduled run of *{title}* was skipped",
    "killswitch.engaged": ":rotating_light: The kill switch was engaged",
    "killswitch.released": ":large_green_circle: The kill switch was released",
    "experiment.changed": ":pencil2: The experiment *{title}* changed",
    "ping": ":wave: ChaosHub says hello: this Slack webhook works",
}


def message(type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The Slack message for a notification of `type` with `data`."""
    run = data.get("run") if isinstance(data.get("run"), dict) else {}
    experiment = data.get("experiment") if isinstance(data.get("experiment"), dict) else {}
    title = _escaped(run.get("experiment_title") or experiment.get("title")
                     or data.get("experiment_title") or "an experiment")
    headline = HEADLINES.get(type, f"ChaosHub: {_escaped(type)}").format(
        title=title, outcome=_escaped(str(run.get("outcome") or "error")))
    details = []
    reason = run.get("reason") or data.get("reason")
    if reason:
        details.append(f"Reason: {_escaped(str(reason))[:500]}")
    if run.get("started_by"):
        details.append(f"Started by {_escaped(str(run['started_by']))}")
    link = run.get("url") or experiment.get("url")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}}]
    if details:
        blocks.append({"type": "context",
                       "elements": [{"type": "mrkdwn", "text": " · ".join(details)}]})
    if link:
        label = "Open the run" if run.get("url") else "Open the experiment"
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": link}]})
    text = headline + (f" <{link}|{label.lower()}>" if link else "")
    return {"text": text, "blocks": blocks}


def _escaped(text: str) -> str:
    # Slack's mrkdwn reads these three as markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
