// Image generation as an Upstash Workflow (the flow of the image_app example, made durable):
//
//   POST /generate {"prompt": ...}      starts a run (client.trigger) and answers {"id": <run id>}
//   POST /workflows/image               the workflow itself, called by QStash step by step:
//     1. context.call  the image API (POST {IMAGE_API_BASE_URL}/v1/images/generations),
//                      retried by QStash; its answer comes back into the run
//     2. context.run   keep the draft (status "awaiting-approval")
//     3. context.sleep a cool-down before asking for approval
//     4. context.waitForEvent  "approve-<run id>", up to APPROVAL_TIMEOUT (default 7d); a
//                      reviewer's POST /approve/<run id> {"approved": true|false} notifies it
//     5. context.run   publish or reject (or expire, when nobody answered in time)
//   failureFunction                     marks the image "failed" with the API's answer
//   GET /images/<run id>                the image's state
//
// Configuration from the environment, as in production: QSTASH_URL, QSTASH_TOKEN,
// QSTASH_CURRENT_SIGNING_KEY, QSTASH_NEXT_SIGNING_KEY (requests are verified), OPENAI_API_KEY,
// IMAGE_API_BASE_URL (https://api.openai.com), COOL_DOWN (1h), APPROVAL_TIMEOUT (7d), PORT.
import express from "express";
import { Client, WorkflowNonRetryableError } from "@upstash/workflow";
import { serve } from "@upstash/workflow/express";

const env = process.env;
const IMAGE_API = `${env.IMAGE_API_BASE_URL ?? "https://api.openai.com"}/v1/images/generations`;
const COOL_DOWN = env.COOL_DOWN ?? "1h";
const APPROVAL_TIMEOUT = env.APPROVAL_TIMEOUT ?? "7d";
const client = new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN });

// A stand-in for the app's database.
const images = new Map();
const save = (id, fields) => images.set(id, { ...(images.get(id) ?? {}), ...fields });

const imageWorkflow = serve(
  async (context) => {
    const id = context.workflowRunId;
    const { prompt } = context.requestPayload;
    const answer = await context.call("generate-image", {
      url: IMAGE_API,
      method: "POST",
      headers: { Authorization: `Bearer ${env.OPENAI_API_KEY}`, "Content-Type": "application/json" },
      body: { model: "dall-e-2", prompt, n: 1 },
      retries: 2,
    });
    if (answer.status !== 200) {
      // No point retrying the workflow: the API already had its retries. The failure function
      // records why.
      throw new WorkflowNonRetryableError(`image API answered ${answer.status}`);
    }
    const url = answer.body.data[0].url;
    await context.run("store-draft", () => save(id, { status: "awaiting-approval", prompt, url }));
    await context.sleep("cool-down", COOL_DOWN);
    const { eventData, timeout } = await context.waitForEvent("approval", `approve-${id}`, {
      timeout: APPROVAL_TIMEOUT,
    });
    const status = timeout ? "expired" : eventData.approved ? "published" : "rejected";
    await context.run("decide", () => save(id, { status }));
    return status;
  },
  {
    failureFunction: async ({ context, failStatus, failResponse }) => {
      save(context.workflowRunId, { status: "failed", error: `${failStatus}: ${failResponse}` });
    },
  },
);

const app = express();
app.use(express.json());
app.use("/workflows/image", imageWorkflow);

app.post("/generate", async (req, res) => {
  const origin = env.APP_PUBLIC_URL ?? `${req.protocol}://${req.get("host")}`;
  const { workflowRunId } = await client.trigger({
    url: `${origin}/workflows/image`,
    body: { prompt: req.body.prompt },
  });
  save(workflowRunId, { status: "generating", prompt: req.body.prompt });
  res.status(202).json({ id: workflowRunId });
});

app.post("/approve/:id", async (req, res) => {
  const notified = await client.notify({
    eventId: `approve-${req.params.id}`,
    eventData: { approved: req.body.approved === true },
  });
  res.status(notified.length ? 200 : 409).json({ notified: notified.length });
});

app.get("/images/:id", (req, res) => {
  const found = images.get(req.params.id);
  if (found) res.json(found);
  else res.status(404).json({ error: "no such image" });
});

const server = app.listen(Number(env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`LISTENING ${server.address().port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
