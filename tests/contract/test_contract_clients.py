"""The contract matrix: each official client, unchanged but for base URL and token, runs its
scenarios (tests/contract/clients/) against a standalone emulator and a local target.

One test per (client, scenario); every scenario must pass.
"""

from __future__ import annotations

from typing import Any

import pytest
from contract_runs import CLIENTS, Runs

# Scenarios both Python lines share (tests/contract/clients/_qstash_shared.py).
PY_SHARED = [
    "publish_json_receiver",
    "publish_raw_method",
    "delay_and_not_before",
    "callbacks",
    "dlq_list_get_delete",
    "logs_states",
    "messages_get_cancel",
    "deduplication",
    "queues",
    "batch",
    "url_groups",
    "schedules",
    "signing_keys_rotate",
    # What the SDKs expect beyond the happy path (issue 10).
    "finished_message_readable",
    "bulk_cancel_until_zero",
    "empty_bodies_left_out",
    "url_group_delete_missing",
    "batch_json_value_bodies",
    "reserved_headers_not_forwarded",
    "callback_json_compact",
]

MATRIX: dict[str, list[Any]] = {
    "qstash-3": [
        "version",
        "logs_filters_and_labels",
        "schedule_upsert_by_id",
        "batch_url_group_and_redaction",
        "flow_control",
        "async_client",
        "llm_publish_via_custom_provider",
        "labels_first_label",
        "log_fields",
        "flow_control_period_default",
        *PY_SHARED,
    ],
    "qstash-2.0.5": [
        "version",
        "events_list",
        "cancel_all",
        *PY_SHARED,
        "chat_create",
        "chat_stream",
        "chat_prompt",
        "chat_prompt_stream",
        "chat_token_counts",
        "chat_custom_provider",
        "chat_async",
        "llm_publish_upstash",
    ],
    "qstash-js": [
        "version",
        "publish_json_receiver",
        "publish_raw_method",
        "delay",
        "callbacks",
        "batch",
        "queues",
        "schedules",
        "url_groups",
        "dlq",
        "logs",
        "messages_get_cancel",
        "flow_control",
        "signing_keys_receiver",
        "finished_message_readable",
        "cancel_answers_json",
        "bulk_count_cursor",
        "labels_first_label",
        "log_fields",
        "empty_bodies_left_out",
        "flow_control_period_default",
        "url_group_delete_missing",
        "batch_json_value_bodies",
        "reserved_headers_not_forwarded",
        "callback_json_compact",
    ],
    # Upstash Workflow: both SDKs serve workflows (FastAPI + uvicorn, express) with signatures
    # verified; the Python SDK has no parallel steps or waits.
    "workflow-py": [
        "sequential_steps",
        "sleep",
        "call",
        "call_retried_failure",
        "failure_function",
        "cancel",
        "runs_listing",
    ],
    "workflow-js": [
        "sequential_steps",
        "sleep",
        "parallel_steps",
        "call",
        "wait_notify",
        "wait_timeout",
        "failure_function",
        "cancel",
        "runs_listing",
        "dlq_resume_restart_delete",
        "failure_function_retry",
        "invoke",
        "webhook",
    ],
    "openai": [
        name
        for name in (
            "chat_sync",
            "chat_async",
            "chat_stream_sync",
            "chat_stream_async",
            "chat_v1_base",
            "chat_queue_base",
            "chat_options",
            "embeddings_and_completions",
            "models_list",
            "errors_shape",
        )
    ],
}


def _params() -> list[Any]:
    out = []
    for client, scenarios in MATRIX.items():
        for item in scenarios:
            if isinstance(item, str):
                out.append(pytest.param(client, item, id=f"{client}:{item}"))
            else:
                (name,) = item.values
                out.append(pytest.param(client, name, marks=item.marks, id=f"{client}:{name}"))
    return out


@pytest.mark.parametrize(("client", "scenario"), _params())
def test_client_scenario(contract_runs: Runs, client: str, scenario: str) -> None:
    run = contract_runs.result(client)
    if not run.scenarios:
        pytest.fail(f"{client} printed no results:\n{run.output[-6000:]}")
    result = run.scenarios.get(scenario)
    assert result is not None, f"{client} has no scenario {scenario!r}"
    if not result["ok"]:
        pytest.fail(
            f"{client} {scenario}: {result['error']}\n{result.get('traceback', '')}",
            pytrace=False,
        )


@pytest.mark.parametrize("client", list(CLIENTS))
def test_emulator_kept_serving(contract_runs: Runs, client: str) -> None:
    """Whatever the client sent, its emulator is still up and answering afterwards."""
    run = contract_runs.result(client)
    assert run.emulator_alive, run.output[-4000:]
    assert run.emulator_answered, run.output[-4000:]


@pytest.mark.parametrize("client", list(CLIENTS))
def test_matrix_names_every_scenario(contract_runs: Runs, client: str) -> None:
    """Every scenario a client script ran is in the matrix above (and so is reported)."""
    listed = {p.values[1] for p in _params() if p.values[0] == client}
    ran = set(contract_runs.result(client).scenarios)
    assert ran <= listed, f"not in MATRIX: {sorted(ran - listed)}"
