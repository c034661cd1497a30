// Workflows of the official @upstash/workflow SDK under express, for the virtual-time tests.
// Reads QSTASH_URL, QSTASH_TOKEN and the signing keys from the environment (signatures are
// verified), prints `LISTENING <port>` once up; `GET /__seen` answers what the routes recorded.
import express from "express";
import { createWorkflow, serve, serveMany } from "@upstash/workflow/express";

const seen = {};
const record = (context, fields) => {
  seen[context.workflowRunId] = { ...(seen[context.workflowRunId] ?? {}), ...fields };
};

const app = express();
app.use(express.json());
app.get("/__seen", (req, res) => res.json(seen));

app.use(
  "/parallel",
  serve(async (context) => {
    const parts = await Promise.all([
      context.run("p1", () => 1),
      context.run("p2", () => 20),
      context.run("p3", () => 300),
    ]);
    const sum = await context.run("sum", () => parts.reduce((x, y) => x + y, 0));
    record(context, { sum });
  }),
);

app.use(
  "/wait",
  serve(async (context) => {
    const { eventId, timeout } = context.requestPayload;
    const got = await context.waitForEvent("approval", eventId, { timeout });
    record(context, { got });
    await context.run("after", () => (got.timeout ? "timed out" : got.eventData));
  }),
);

app.use(
  "/notifier",
  serve(async (context) => {
    const { eventId } = context.requestPayload;
    const sent = await context.notify("tell", eventId, { from: "another run" });
    record(context, { notified: sent.notifyResponse.length });
  }),
);

app.use(
  "/webhook",
  serve(async (context) => {
    const hook = await context.createWebhook("hook");
    await context.run("share", () => {
      record(context, { webhookUrl: hook.webhookUrl });
    });
    const got = await context.waitForWebhook("called", hook, "1d");
    if (got.timeout) {
      record(context, { timeout: true });
      return;
    }
    const body = await got.request.text();
    const seenCall = { method: got.request.method, body, tag: got.request.headers.get("x-tag") };
    await context.run("handled", () => record(context, { call: seenCall }));
  }),
);

// context.invoke: one workflow starts another and gets its result (serveMany names them).
const child = createWorkflow(async (context) => {
  const doubled = await context.run("double", () => context.requestPayload.n * 2);
  if (context.requestPayload.fail) {
    await context.run("break", () => {
      throw new Error("child broke");
    });
  }
  return { doubled };
}, { retries: 0 });
const parent = createWorkflow(async (context) => {
  const answer = await context.invoke("ask-child", {
    workflow: child,
    body: { n: context.requestPayload.n, fail: context.requestPayload.fail ?? false },
    retries: 0,
  });
  await context.run("use", () => record(context, { answer }));
});
app.use("/many", serveMany({ parent, child }));

const server = app.listen(0, "127.0.0.1", () => {
  console.log(`LISTENING ${server.address().port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
