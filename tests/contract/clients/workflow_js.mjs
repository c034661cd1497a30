// @upstash/workflow (npm) under express against a standalone emulator, signatures verified:
// `node workflow_js.mjs [scenario ...]`. Same protocol as the other client scripts: the
// environment names the emulator and the recording target; one line `CONTRACT-RESULTS {...}`.
import express from "express";
import { Client } from "@upstash/workflow";
import { createWorkflow, serve, serveMany } from "@upstash/workflow/express";

const env = process.env;
const TARGET = env.CONTRACT_TARGET;
const PREFIX = env.CONTRACT_PREFIX;
const WAIT = Number(env.CONTRACT_WAIT ?? "30") * 1000;
const client = new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN });

const scenarios = new Map();
let current = "";
const scenario = (name, fn) => scenarios.set(name, fn);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class ContractFailure extends Error {}

function check(condition, message, detail) {
  if (!condition) {
    throw new ContractFailure(detail === undefined ? message : `${message} ${JSON.stringify(detail)}`);
  }
}

const targetUrl = (tail) => `${TARGET}${PREFIX}/${current}/${tail.replace(/^\//, "")}`;

async function received(tail) {
  const prefix = `${PREFIX}/${current}/${tail.replace(/^\//, "")}`;
  const answer = await fetch(`${TARGET}/__log?prefix=${encodeURIComponent(prefix)}`);
  return await answer.json();
}

async function eventually(probe, what, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new ContractFailure(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// -- the app: one workflow per route; what the route functions see is recorded here ----------
const seen = new Map(); // run id -> record
const record = (context, fields) => {
  const got = seen.get(context.workflowRunId) ?? {};
  seen.set(context.workflowRunId, Object.assign(got, fields));
};

const app = express();
app.use(express.json());
app.use(express.text({ type: "text/*" }));

app.use(
  "/seq",
  serve(async (context) => {
    const a = await context.run("a", () => `A:${context.requestPayload.n}`);
    const b = await context.run("b", () => `${a}+B`);
    record(context, { result: b });
    return b;
  }),
);

app.use(
  "/sleep",
  serve(async (context) => {
    const before = await context.run("before", () => Date.now());
    await context.sleep("nap", 1);
    const after = await context.run("after", () => Date.now());
    record(context, { before, after });
  }),
);

app.use(
  "/parallel",
  serve(async (context) => {
    const parts = await Promise.all([
      context.run("p1", () => 1),
      context.run("p2", () => 20),
      context.run("p3", () => 300),
    ]);
    const sum = await context.run("sum", () => parts.reduce((x, y) => x + y, 0));
    record(context, { parts, sum });
  }),
);

app.use(
  "/call",
  serve(async (context) => {
    const { okUrl, failUrl } = context.requestPayload;
    const ok = await context.call("ok-call", {
      url: okUrl,
      method: "POST",
      body: { hello: "api" },
      headers: { "X-Call": "yes" },
    });
    const failed = await context.call("failing-call", {
      url: failUrl,
      method: "GET",
      retries: 2,
      retryDelay: "100",
    });
    record(context, { ok, failed });
  }),
);

app.use(
  "/wait",
  serve(async (context) => {
    const { eventId, timeout } = context.requestPayload;
    const got = await context.waitForEvent("approval", eventId, { timeout });
    record(context, { got });
  }),
);

app.use(
  "/fail",
  serve(
    async (context) => {
      await context.run("boom", () => {
        throw new Error("boom! the step failed");
      });
    },
    {
      failureFunction: async ({ context, failStatus, failResponse }) => {
        record(context, { failure: { failStatus, failResponse, payload: context.requestPayload } });
        return "handled";
      },
    },
  ),
);

app.use(
  "/cancel",
  serve(async (context) => {
    await context.run("first", () => "done");
    await context.sleep("long", 120);
    await context.run("never", () => record(context, { reachedNever: true }));
  }),
);

let failureFunctionBroken = true;
app.use(
  "/fail-once",
  serve(
    async (context) => {
      await context.run("boom", () => {
        throw new Error("always fails");
      });
    },
    {
      failureFunction: async ({ context }) => {
        if (failureFunctionBroken) throw new Error("the failure function fails too");
        record(context, { failureHandled: true });
      },
    },
  ),
);

app.use(
  "/webhook",
  serve(async (context) => {
    const hook = await context.createWebhook("hook");
    await context.run("share", () => record(context, { webhookUrl: hook.webhookUrl }));
    const got = await context.waitForWebhook("called", hook, "1d");
    const body = await got.request.text();
    const call = { method: got.request.method, body, tag: got.request.headers.get("x-tag") };
    await context.run("handled", () => record(context, { call }));
  }),
);

const child = createWorkflow(async (context) => {
  const doubled = await context.run("double", () => context.requestPayload.n * 2);
  return { doubled };
});
const parent = createWorkflow(async (context) => {
  const answer = await context.invoke("ask-child", { workflow: child, body: { n: context.requestPayload.n } });
  await context.run("use", () => record(context, { answer }));
});
app.use("/many", serveMany({ parent, child }));

let flakyBroken = true;
app.use(
  "/flaky",
  serve(async (context) => {
    await context.run("a", () => "a done");
    await context.run("b", () => {
      if (flakyBroken) throw new Error("b is broken");
      return "b done";
    });
  }),
);

const server = await new Promise((resolve) => {
  const s = app.listen(0, "127.0.0.1", () => resolve(s));
});
const APP = `http://127.0.0.1:${server.address().port}`;

async function trigger(path, body, options = {}) {
  const { workflowRunId } = await client.trigger({ url: `${APP}${path}`, body, ...options });
  check(workflowRunId?.startsWith("wfr_"), "trigger answers a run id", workflowRunId);
  return workflowRunId;
}

async function runLog(runId) {
  const { runs } = await client.logs({ workflowRunId: runId });
  return runs.find((r) => r.workflowRunId === runId);
}

async function finished(runId, state = "RUN_SUCCESS") {
  const run = await eventually(async () => {
    const found = await runLog(runId);
    return found && found.workflowState !== "RUN_STARTED" ? found : undefined;
  }, `run ${runId} to finish`);
  check(run.workflowState === state, `run state ${state}`, run);
  return run;
}

// Finished steps (a "next" group lists messages on their way, named only when failing).
const stepNames = (run) =>
  run.steps.filter((g) => g.type !== "next").flatMap((g) => g.steps.map((s) => s.stepName));

scenario("sequential_steps", async () => {
  const runId = await trigger("/seq", { n: 7 });
  const run = await finished(runId);
  check(seen.get(runId)?.result === "A:7+B", "route result", seen.get(runId));
  check(JSON.stringify(stepNames(run)) === JSON.stringify(["init", "a", "b"]), "steps", stepNames(run));
  check(run.workflowRunResponse === JSON.stringify("A:7+B"), "run response", run.workflowRunResponse);
  return { steps: stepNames(run) };
});

scenario("sleep", async () => {
  const runId = await trigger("/sleep", {});
  const run = await finished(runId);
  const { before, after } = seen.get(runId);
  check(after - before >= 900, "slept about a second", { before, after });
  const nap = run.steps.flatMap((g) => g.steps).find((s) => s.stepName === "nap");
  check(nap?.stepType === "SleepFor" && nap.sleepFor === 1, "sleep step logged", nap);
  return { sleptMs: after - before };
});

scenario("parallel_steps", async () => {
  const runId = await trigger("/parallel", {});
  const run = await finished(runId);
  const got = seen.get(runId);
  check(got?.sum === 321 && JSON.stringify(got.parts) === "[1,20,300]", "parallel results", got);
  const parallel = run.steps.find((g) => g.type === "parallel");
  check(parallel && parallel.steps.length === 3, "one parallel group of three", run.steps);
  return { groups: run.steps.map((g) => g.type) };
});

scenario("call", async () => {
  const okUrl = targetUrl("api");
  const failUrl = targetUrl("status/503/flaky");
  const runId = await trigger("/call", { okUrl, failUrl });
  const run = await finished(runId);
  const { ok, failed } = seen.get(runId);
  check(ok.status === 200 && ok.body === "ok", "call answer", ok);
  check(failed.status === 503, "failed call's final status reaches the run", failed);
  const [apiCall] = await received("api");
  check(apiCall.method === "POST" && JSON.parse(apiCall.body).hello === "api", "call request", apiCall);
  check(apiCall.headers["x-call"] === "yes", "call headers forwarded", apiCall.headers);
  const attempts = await received("status/503");
  check(attempts.length === 3 && attempts.every((a) => a.method === "GET"), "1 + 2 retries", attempts.length);
  const callStep = run.steps.flatMap((g) => g.steps).find((s) => s.stepName === "ok-call");
  check(callStep?.callUrl === okUrl && callStep.callResponseStatus === 200, "call logged", callStep);
  return { attempts: attempts.length };
});

scenario("wait_notify", async () => {
  const eventId = `evt-${Date.now()}`;
  const runId = await trigger("/wait", { eventId, timeout: "30s" });
  const waiters = await eventually(async () => {
    const found = await client.getWaiters({ eventId });
    return found.length ? found : undefined;
  }, "a waiter");
  check(waiters.length === 1 && waiters[0].url === `${APP}/wait`, "waiter", waiters);
  const answer = await client.notify({ eventId, eventData: { approved: true } });
  check(answer.length === 1 && answer[0].messageId, "notify reached the waiter", answer);
  await finished(runId);
  const { got } = seen.get(runId);
  check(got.timeout === false && got.eventData.approved === true, "event data", got);
  check((await client.getWaiters({ eventId })).length === 0, "waiter gone");
  const nobody = await client.notify({ eventId: `${eventId}-nobody`, eventData: "x" });
  check(Array.isArray(nobody) && nobody.length === 0, "notify without waiters", nobody);
  return { notified: answer.length };
});

scenario("wait_timeout", async () => {
  const eventId = `evt-timeout-${Date.now()}`;
  const runId = await trigger("/wait", { eventId, timeout: "1s" });
  await finished(runId);
  const { got } = seen.get(runId);
  check(got.timeout === true && got.eventData === undefined, "timed out", got);
  return got;
});

scenario("failure_function", async () => {
  // The trigger's retries hold for every step of the run (the SDK sends them only here).
  const runId = await trigger("/fail", { order: 42 }, { retries: 0 });
  const run = await eventually(async () => {
    const found = await runLog(runId);
    return found?.failureFunction?.state === "CALLBACK_SUCCESS" ? found : undefined;
  }, "the failure function to run");
  check(run.workflowState === "RUN_FAILED", "run failed", run);
  const { failure } = seen.get(runId);
  check(failure.failStatus === 500, "fail status", failure);
  check(failure.failResponse === "boom! the step failed", "fail response", failure);
  check(failure.payload.order === 42, "failure function sees the initial payload", failure);
  check(typeof run.dlqId === "string" && run.dlqId.length > 0, "run in the DLQ", run);
  const next = run.steps.at(-1);
  check(next.type === "next" && next.steps[0].state === "STEP_FAILED", "the failed step", next);
  const [error] = next.steps[0].errors;
  check(next.steps[0].stepName === "boom" && error.status === 500, "its error", next.steps[0]);
  return failure;
});

scenario("cancel", async () => {
  const runId = await trigger("/cancel", {});
  await eventually(async () => {
    const found = await runLog(runId);
    return found && stepNames(found).includes("long") ? found : undefined;
  }, "the run to sleep");
  const answer = await client.cancel({ ids: runId });
  check(answer.cancelled === 1, "cancelled one run", answer);
  const run = await runLog(runId);
  check(run.workflowState === "RUN_CANCELED", "run cancelled", run);
  const again = await client.cancel({ ids: runId });
  check(again.cancelled === 0, "cancelling again cancels nothing", again);
  check(!seen.get(runId)?.reachedNever, "the run went no further");
  return answer;
});

scenario("runs_listing", async () => {
  const ids = [await trigger("/seq", { n: 1 }), await trigger("/seq", { n: 2 })];
  await Promise.all(ids.map((id) => finished(id)));
  const { runs } = await client.logs({ workflowUrl: `${APP}/seq` });
  const listed = runs.map((r) => r.workflowRunId);
  check(ids.every((id) => listed.includes(id)), "both runs listed", listed);
  check(runs.every((r) => r.workflowUrl === `${APP}/seq`), "filtered by url", runs);
  const first = await client.logs({ workflowUrl: `${APP}/seq`, count: 1 });
  check(first.runs.length === 1 && first.cursor, "paged", first);
  const next = await client.logs({ workflowUrl: `${APP}/seq`, count: 1, cursor: first.cursor });
  check(next.runs.length === 1 && next.runs[0].workflowRunId !== first.runs[0].workflowRunId, "next page", next);
  const labelled = await trigger("/seq", { n: 3 }, { label: "nightly" });
  await finished(labelled);
  const byLabel = await client.logs({ label: "nightly" });
  check(byLabel.runs.length === 1 && byLabel.runs[0].workflowRunId === labelled, "label filter", byLabel);
  check(byLabel.runs[0].labels?.[0] === "nightly", "run labels", byLabel.runs[0]);
  const failed = await client.logs({ state: "RUN_FAILED" });
  check(failed.runs.every((r) => r.workflowState === "RUN_FAILED"), "state filter", failed);
  return { listed: listed.length };
});

scenario("dlq_resume_restart_delete", async () => {
  flakyBroken = true;
  const ids = [];
  for (const n of [1, 2, 3]) ids.push(await trigger("/flaky", { n }, { retries: 0 }));
  const runs = await Promise.all(ids.map((id) => finished(id, "RUN_FAILED")));
  const { messages } = await client.dlq.list({ filter: { workflowRunId: ids[0] } });
  check(messages.length === 1 && messages[0].workflowRunId === ids[0], "listed", messages);
  check(messages[0].dlqId === runs[0].dlqId && messages[0].workflowUrl === `${APP}/flaky`, "fields", messages[0]);
  flakyBroken = false;
  const resumed = await client.dlq.resume({ dlqId: runs[0].dlqId });
  check(resumed.workflowRunId?.startsWith("wfr_") && resumed.workflowRunId !== ids[0], "resumed", resumed);
  const restarted = await client.dlq.restart(runs[1].dlqId);
  check(restarted.workflowRuns?.length === 1, "restarted", restarted);
  const deleted = await client.dlq.delete(runs[2].dlqId);
  check(deleted.deleted === 1, "deleted", deleted);
  const done = await finished(resumed.workflowRunId);
  check(JSON.stringify(stepNames(done)) === JSON.stringify(["init", "a", "b"]), "resumed steps", stepNames(done));
  await finished(restarted.workflowRuns[0].workflowRunId);
  const left = await client.dlq.list({ filter: { workflowUrl: `${APP}/flaky` } });
  check(left.messages.length === 0, "DLQ emptied", left);
  return { resumed: resumed.workflowRunId };
});

scenario("failure_function_retry", async () => {
  failureFunctionBroken = true;
  const runId = await trigger("/fail-once", {}, { retries: 0 });
  const failed = await eventually(async () => {
    const found = await runLog(runId);
    return found?.failureFunction?.state === "CALLBACK_FAIL" ? found : undefined;
  }, "the failure function to fail");
  failureFunctionBroken = false;
  const answer = await client.dlq.retryFailureFunction({ dlqId: failed.dlqId });
  check(answer.workflowRunId === runId, "retry answers the run", answer);
  await eventually(async () => {
    const found = await runLog(runId);
    return found?.failureFunction?.state === "CALLBACK_SUCCESS" ? found : undefined;
  }, "the failure function to succeed");
  check(seen.get(runId)?.failureHandled === true, "failure function ran");
  return answer;
});

scenario("invoke", async () => {
  const runId = await trigger("/many/parent", { n: 21 });
  await finished(runId);
  const { answer } = seen.get(runId);
  check(answer.body?.doubled === 42 && answer.isFailed === false, "invoked run's result", answer);
  const { runs } = await client.logs({ workflowUrl: `${APP}/many/child` });
  check(runs.length === 1 && runs[0].workflowState === "RUN_SUCCESS", "the invoked run", runs);
  return answer;
});

scenario("webhook", async () => {
  const runId = await trigger("/webhook", {});
  const hook = await eventually(async () => seen.get(runId)?.webhookUrl, "the webhook URL");
  check(hook.startsWith(`${env.QSTASH_URL}/v2/workflows/hooks/`), "webhook URL", hook);
  const answer = await fetch(hook, { method: "POST", body: "paid", headers: { "X-Tag": "t-1" } });
  check(answer.status === 200, "webhook answered", answer.status);
  await finished(runId);
  const call = seen.get(runId).call;
  check(call.method === "POST" && call.body === "paid" && call.tag === "t-1", "webhook request", call);
  return call;
});

const names = process.argv.slice(2).length ? process.argv.slice(2) : [...scenarios.keys()];
const results = {};
for (const name of names) {
  const start = Date.now();
  current = name;
  try {
    if (!scenarios.has(name)) throw new ContractFailure(`no scenario ${name}`);
    const detail = await scenarios.get(name)();
    results[name] = { ok: true, detail: detail ?? null };
  } catch (error) {
    results[name] = { ok: false, error: `${error.name}: ${error.message}`, traceback: error.stack };
  }
  results[name].seconds = (Date.now() - start) / 1000;
}
console.log(`CONTRACT-RESULTS ${JSON.stringify(results)}`);
server.close();
process.exit(0);
