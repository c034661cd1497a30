// @upstash/qstash (npm) against a standalone emulator: `node qstash_js.mjs [scenario ...]`.
// Same protocol as the Python scripts: the environment names the emulator and the recording
// target; one line `CONTRACT-RESULTS {...}` reports every scenario.
import { Client, Receiver } from "@upstash/qstash";
import { readFileSync } from "node:fs";

const env = process.env;
const TARGET = env.CONTRACT_TARGET;
const PREFIX = env.CONTRACT_PREFIX;
const WAIT = Number(env.CONTRACT_WAIT ?? "20") * 1000;
const client = new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN });
const receiver = new Receiver({
  currentSigningKey: env.QSTASH_CURRENT_SIGNING_KEY,
  nextSigningKey: env.QSTASH_NEXT_SIGNING_KEY,
});

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

const path = (tail) => `${PREFIX}/${current}/${tail.replace(/^\//, "")}`;
const url = (tail) => TARGET + path(tail);

async function received(prefix) {
  const answer = await fetch(`${TARGET}/__log?prefix=${encodeURIComponent(prefix)}`);
  return await answer.json();
}

async function waitFor(tail, count = 1, timeout = WAIT) {
  const prefix = path(tail);
  const deadline = Date.now() + timeout;
  for (;;) {
    const got = await received(prefix);
    if (got.length >= count) return got;
    if (Date.now() > deadline) {
      throw new ContractFailure(`${got.length} of ${count} deliveries to ${prefix} in ${timeout}ms`);
    }
    await sleep(50);
  }
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

async function rejects(fn, what) {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new ContractFailure(`expected ${what} to fail`);
}

async function verify(req, destination, who = receiver) {
  const signature = req.headers["upstash-signature"];
  check(await who.verify({ signature, body: req.body, url: destination }), "Receiver.verify");
  await rejects(() => who.verify({ signature, body: `${req.body} `, url: destination }), "tampered body");
  await rejects(() => who.verify({ signature, body: req.body, url: `${destination}x` }), "other url");
}

scenario("version", async () => {
  // This script runs from the node project folder, beside its node_modules.
  const manifest = new URL("./node_modules/@upstash/qstash/package.json", import.meta.url);
  const { version } = JSON.parse(readFileSync(manifest, "utf8"));
  check(/^2\./.test(version), "a 2.x @upstash/qstash", version);
  return version;
});

scenario("publish_json_receiver", async () => {
  const dest = url("hook?source=contract");
  const res = await client.publishJSON({
    url: dest,
    body: { hello: "world" },
    headers: { "test-header": "test-value" },
  });
  // The reference answers a URL publish with messageId (and deduplicated) only.
  check(res.messageId && !res.deduplicated, "publish answer", res);
  const [req] = await waitFor("hook");
  check(req.method === "POST", "POST");
  check(JSON.stringify(JSON.parse(req.body)) === '{"hello":"world"}', "JSON body", req.body);
  check(req.headers["content-type"] === "application/json", "content type", req.headers);
  check(req.headers["test-header"] === "test-value", "forwarded header", req.headers);
  check(req.headers["upstash-message-id"] === res.messageId, "message id header");
  check(req.query === "source=contract", "query kept", req.query);
  await verify(req, dest);
  return res;
});

scenario("publish_raw_method", async () => {
  const dest = url("raw");
  await client.publish({
    url: dest,
    body: "plain text",
    method: "PUT",
    headers: { "Content-Type": "text/plain" },
  });
  const [req] = await waitFor("raw");
  check(req.method === "PUT", "method", req.method);
  check(req.body === "plain text", "body", req.body);
  check(req.headers["content-type"] === "text/plain", "content type", req.headers);
  await verify(req, dest);
});

scenario("delay", async () => {
  const start = Date.now();
  const res = await client.publishJSON({ url: url("delayed"), body: { n: 1 }, delay: 2 });
  const message = await client.messages.get(res.messageId);
  check(Math.abs(message.notBefore - (start + 2000)) < 1500, "notBefore", message);
  const notBefore = Math.floor(Date.now() / 1000) + 2;
  await client.publishJSON({ url: url("not-before"), body: { n: 2 }, notBefore });
  const [first] = await waitFor("delayed", 1, 10000);
  const [second] = await waitFor("not-before", 1, 10000);
  check(first.time * 1000 - start >= 1500, "delay respected", first.time * 1000 - start);
  check(second.time >= notBefore - 0.5, "notBefore respected", second.time - notBefore);
});

scenario("callbacks", async () => {
  const res = await client.publishJSON({
    url: url("ok"),
    body: { x: 1 },
    callback: url("cb"),
  });
  const [cb] = await waitFor("cb");
  const body = JSON.parse(cb.body);
  check(body.status === 200 && body.sourceMessageId === res.messageId, "callback", body);
  check(Buffer.from(body.body, "base64").toString() === "ok", "callback carries the response");
  await verify(cb, url("cb"));
  const failed = await client.publishJSON({
    url: url("status/500/fail"),
    body: { x: 2 },
    retries: 0,
    failureCallback: url("fcb"),
  });
  const [fcb] = await waitFor("fcb");
  const fbody = JSON.parse(fcb.body);
  check(fbody.status === 500 && fbody.sourceMessageId === failed.messageId, "failure cb", fbody);
  await verify(fcb, url("fcb"));
});

scenario("batch", async () => {
  await client.queue({ queueName: "contract-js-batch" }).upsert({ parallelism: 1 });
  const answers = await client.batchJSON([
    { url: url("batch/a"), body: { n: "a" }, headers: { "x-n": "a" } },
    { url: url("batch/b"), body: { n: "b" }, queueName: "contract-js-batch" },
  ]);
  check(answers.length === 2 && answers.every((a) => a.messageId), "one answer each", answers);
  const got = await waitFor("batch/", 2);
  const ids = new Set(got.map((r) => r.headers["upstash-message-id"]));
  check(answers.every((a) => ids.has(a.messageId)), "both delivered", got);
  const a = got.find((r) => r.path.endsWith("/a"));
  check(a.headers["x-n"] === "a" && JSON.parse(a.body).n === "a", "batch message a", a);
  await client.queue({ queueName: "contract-js-batch" }).delete();
  await client.urlGroups.addEndpoints({
    name: "contract-js-batch-group",
    endpoints: [{ url: url("bgroup/a") }, { url: url("bgroup/b") }],
  });
  const fanned = await client.batchJSON([
    { urlGroup: "contract-js-batch-group", body: { to: "group" } },
  ]);
  check(Array.isArray(fanned[0]) && fanned[0].length === 2, "a URL group answers a list", fanned);
  await waitFor("bgroup/", 2);
  await client.urlGroups.delete("contract-js-batch-group");
});

scenario("queues", async () => {
  const queue = client.queue({ queueName: "contract-js-queue" });
  await queue.upsert({ parallelism: 2 });
  const got = await queue.get();
  check(got.name === "contract-js-queue" && got.parallelism === 2, "queue get", got);
  check((await queue.list()).some((q) => q.name === "contract-js-queue"), "listed");
  await queue.pause();
  check((await queue.get()).paused === true, "paused");
  await queue.resume();
  check((await queue.get()).paused === false, "resumed");
  const res = await queue.enqueueJSON({ url: url("queued"), body: { q: 1 } });
  const [req] = await waitFor("queued");
  check(req.headers["upstash-message-id"] === res.messageId, "enqueued and delivered");
  await queue.delete();
  await rejects(() => queue.get(), "a deleted queue");
});

scenario("schedules", async () => {
  const dest = url("scheduled");
  const { scheduleId } = await client.schedules.create({
    destination: dest,
    cron: "*/5 * * * *",
    body: JSON.stringify({ every: "5m" }),
    headers: { "Content-Type": "application/json", "x-s": "1" },
    retries: 1,
    callback: url("schedule-cb"),
  });
  check(scheduleId, "schedule id");
  const got = await client.schedules.get(scheduleId);
  check(got.scheduleId === scheduleId && got.destination === dest, "schedule get", got);
  check(got.cron === "*/5 * * * *" && got.retries === 1, "cron and retries", got);
  check(JSON.parse(got.body).every === "5m", "body", got);
  check(got.callback === url("schedule-cb"), "callback", got);
  check((await client.schedules.list()).some((s) => s.scheduleId === scheduleId), "listed");
  await client.schedules.pause({ schedule: scheduleId });
  check((await client.schedules.get(scheduleId)).isPaused === true, "paused");
  await client.schedules.resume({ schedule: scheduleId });
  check(!(await client.schedules.get(scheduleId)).isPaused, "resumed");
  await client.schedules.delete(scheduleId);
  await rejects(() => client.schedules.get(scheduleId), "a deleted schedule");
  const named = await client.schedules.create({
    destination: dest,
    cron: "0 * * * *",
    scheduleId: "contract-js-schedule",
  });
  check(named.scheduleId === "contract-js-schedule", "the given schedule id", named);
  await client.schedules.create({
    destination: url("scheduled-2"),
    cron: "15 * * * *",
    scheduleId: "contract-js-schedule",
  });
  const replaced = await client.schedules.get("contract-js-schedule");
  check(replaced.destination === url("scheduled-2") && replaced.cron === "15 * * * *", "upsert");
  await client.schedules.delete("contract-js-schedule");
  return { scheduleId };
});

scenario("url_groups", async () => {
  const name = "contract-js-group";
  await client.urlGroups.addEndpoints({
    name,
    endpoints: [{ url: url("group/a"), name: "a" }, { url: url("group/b") }],
  });
  const group = await client.urlGroups.get(name);
  const urls = group.endpoints.map((e) => e.url).sort();
  check(group.name === name && urls.join() === [url("group/a"), url("group/b")].join(), "get", group);
  check((await client.urlGroups.list()).some((g) => g.name === name), "listed");
  const answers = await client.publishJSON({ urlGroup: name, body: { fan: "out" } });
  check(answers.length === 2 && answers.every((a) => a.messageId && a.url), "per endpoint", answers);
  await waitFor("group/", 2);
  await client.urlGroups.removeEndpoints({ name, endpoints: [{ url: url("group/b") }] });
  const left = (await client.urlGroups.get(name)).endpoints.map((e) => e.url);
  check(left.join() === url("group/a"), "removed", left);
  await client.urlGroups.delete(name);
  await rejects(() => client.urlGroups.get(name), "a deleted url group");
});

scenario("dlq", async () => {
  const ids = [];
  for (const i of [0, 1, 2]) {
    const res = await client.publishJSON({ url: url(`status/500/dead${i}`), body: { i }, retries: 0 });
    ids.push(res.messageId);
  }
  const find = async (messageId) =>
    (await client.dlq.listMessages({ filter: { messageId } })).messages[0];
  const entries = [];
  for (const id of ids) entries.push(await eventually(() => find(id), `DLQ entry of ${id}`));
  const [first] = entries;
  check(first.messageId === ids[0] && first.url === url("status/500/dead0"), "entry", first);
  check(first.responseStatus === 500, "response status", first);
  check(JSON.parse(first.body).i === 0, "body kept", first);
  const deleted = await client.dlq.delete(first.dlqId);
  check(deleted.deleted === 1, "delete one", deleted);
  check((await find(ids[0])) === undefined, "gone");
  const retried = await client.dlq.retry(entries[1].dlqId);
  const [again] = retried.responses;
  check(retried.responses.length === 1 && again.messageId, "retry answers the new message", retried);
  await waitFor("status/500/dead1", 2);
  const back = await eventually(() => find(again.messageId), "the retried message in the DLQ");
  const many = await client.dlq.deleteMany({ dlqIds: [entries[2].dlqId, back.dlqId] });
  check(many.deleted === 2, "deleteMany", many);
  return { dlqId: first.dlqId };
});

scenario("logs", async () => {
  const res = await client.publishJSON({ url: url("logged"), body: {} });
  await waitFor("logged");
  const states = await eventually(async () => {
    const { logs } = await client.logs({ filter: { messageId: res.messageId } });
    const s = logs.map((l) => l.state).reverse();
    return s.includes("DELIVERED") && s;
  }, "DELIVERED log");
  check(states[0] === "CREATED" && states.includes("ACTIVE"), "states", states);
  const byIds = await client.logs({ messageIds: [res.messageId] });
  check(byIds.logs.length > 0 && byIds.logs.every((l) => l.messageId === res.messageId), "ids");
  const delivered = await client.logs({ filter: { state: "DELIVERED", url: url("logged") } });
  check(delivered.logs.length === 1 && delivered.logs[0].messageId === res.messageId, "by state");
  const page = await client.logs({ count: 1 });
  check(page.logs.length === 1 && page.cursor, "count and cursor", page);
  return states;
});

scenario("messages_get_cancel", async () => {
  const res = await client.publishJSON({ url: url("later"), body: { a: 1 }, delay: 3600 });
  const message = await client.messages.get(res.messageId);
  check(message.messageId === res.messageId && message.url === url("later"), "get", message);
  check(JSON.parse(message.body).a === 1, "body", message);
  await client.messages.delete(res.messageId);
  await rejects(() => client.messages.get(res.messageId), "a cancelled message");
  const more = [];
  for (const _ of [0, 1]) {
    more.push((await client.publishJSON({ url: url("later2"), body: {}, delay: 3600 })).messageId);
  }
  const cancelled = await client.messages.deleteMany(more);
  check(cancelled === 2, "deleteMany count", cancelled);
});

scenario("flow_control", async () => {
  const key = "contract-js-fc";
  await client.publishJSON({
    url: url("fc"),
    body: {},
    flowControl: { key, parallelism: 1, rate: 5, period: "1s" },
  });
  await waitFor("fc");
  const info = await client.flowControl.get(key);
  check(info.flowControlKey === key || info.key === key, "flow control info", info);
  await client.flowControl.pause(key);
  await client.flowControl.resume(key);
  await client.flowControl.resetRate(key);
  const global = await client.flowControl.getGlobalParallelism();
  check(typeof global === "object", "global parallelism", global);
  return info;
});

scenario("signing_keys_receiver", async () => {
  // The JS client has no signing-key API; its Receiver verifies with the dev server's keys,
  // and one that knows only a wrong key refuses.
  const dest = url("signed");
  await client.publishJSON({ url: dest, body: { signed: true } });
  const [req] = await waitFor("signed");
  await verify(req, dest);
  const wrong = new Receiver({
    currentSigningKey: "sig_wrongwrongwrongwrongwrong",
    nextSigningKey: "sig_wrongwrongwrongwrongwrong",
  });
  await rejects(
    () => wrong.verify({ signature: req.headers["upstash-signature"], body: req.body, url: dest }),
    "a wrong key",
  );
});

// ---- What the SDK expects beyond the happy path (issue 10) ----

scenario("finished_message_readable", async () => {
  // Item 1: publish, let it be delivered, read it back at once.
  const res = await client.publishJSON({ url: url("finished"), body: { done: true } });
  await waitFor("finished");
  // The target has the request; the emulator settles once the answer is back.
  await eventually(async () => {
    const { logs } = await client.logs({ filter: { messageId: res.messageId } });
    return logs.some((l) => l.state === "DELIVERED");
  }, "DELIVERED log");
  const message = await client.messages.get(res.messageId);
  check(message.messageId === res.messageId && message.url === url("finished"), "get", message);
  check(JSON.parse(message.body).done === true, "body", message);
  await rejects(() => client.messages.cancel(res.messageId), "cancelling a delivered message");
  return message.messageId;
});

scenario("cancel_answers_json", async () => {
  // Item 2: messages.cancel(id) parses the answer as JSON.
  const res = await client.publishJSON({ url: url("to-cancel"), body: {}, delay: 3600 });
  const answer = await client.messages.cancel(res.messageId);
  check(answer && answer.cancelled === 1, "cancelled: 1", answer);
  await rejects(() => client.messages.get(res.messageId), "a cancelled message");
  return answer;
});

async function failing(tail, label, n) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const res = await client.publishJSON({ url: url(`status/500/${tail}${i}`), body: { i }, retries: 0, label });
    ids.push(res.messageId);
  }
  const listed = async () => (await client.dlq.listMessages({ filter: { label } })).messages;
  await eventually(async () => (await listed()).length === n, `${n} DLQ entries labelled ${label}`);
  return listed;
}

scenario("bulk_count_cursor", async () => {
  // Item 3: count and cursor on bulk DLQ delete and retry and on bulk cancel; a misspelt
  // filter is a 400 that changes nothing.
  const dead = await failing("bulk-del", "bulk-del", 3);
  const typo = await rejects(() => client.dlq.delete({ filter: { labeel: "bulk-del" } }), "a typo");
  check(String(typo.message).includes("labeel"), "the 400 names the typo", String(typo));
  check((await dead()).length === 3, "nothing deleted by the typo");
  const first = await client.dlq.delete({ filter: { label: "bulk-del" }, count: 2 });
  check(first.deleted === 2 && first.cursor, "at most count, and a cursor", first);
  const rest = await client.dlq.delete({ filter: { label: "bulk-del" }, count: 2, cursor: first.cursor });
  check(rest.deleted === 1 && !rest.cursor, "the rest, and no cursor", rest);
  check((await dead()).length === 0, "all deleted");

  const toRetry = await failing("bulk-retry", "bulk-retry", 3);
  await rejects(() => client.dlq.retry({ filter: { lable: "bulk-retry" } }), "a typo on retry");
  check((await toRetry()).length === 3, "nothing retried by the typo");
  let cursor;
  let retried = 0;
  let calls = 0;
  do {
    const page = await client.dlq.retry({ filter: { label: "bulk-retry" }, count: 2, cursor });
    check(page.responses.length <= 2, "at most count retried", page);
    retried += page.responses.length;
    cursor = page.cursor;
    calls += 1;
  } while (cursor && calls < 5);
  check(retried === 3 && calls === 2, "the cursor loop retried each once", { retried, calls });

  const pending = [];
  for (let i = 0; i < 3; i++) {
    pending.push((await client.publishJSON({ url: url("bulk-cancel"), body: {}, delay: 3600, label: "bulk-cancel" })).messageId);
  }
  await rejects(() => client.messages.cancel({ filter: { labell: "bulk-cancel" } }), "a typo on cancel");
  for (const id of pending) await client.messages.get(id); // still there
  const counts = [];
  for (;;) {
    const { cancelled } = await client.messages.cancel({ filter: { label: "bulk-cancel" }, count: 2 });
    counts.push(cancelled);
    if (cancelled === 0 || counts.length > 5) break;
  }
  check(counts.join() === "2,1,0", "loop until cancelled is 0", counts);
  return { counts };
});

scenario("labels_first_label", async () => {
  // Item 4: `label` is the first label, `labels` all of them (messages, logs, DLQ).
  const labels = ["first", "second"];
  const res = await client.publishJSON({ url: url("labels"), body: {}, delay: 3600, label: labels });
  const message = await client.messages.get(res.messageId);
  check(message.label === "first" && message.labels.join() === "first,second", "message", message);
  const [log] = (await client.logs({ filter: { messageId: res.messageId } })).logs;
  check(log.label === "first" && log.labels.join() === "first,second", "log", log);
  await client.messages.cancel(res.messageId);
  const dead = await client.publishJSON({ url: url("status/500/labels"), body: {}, retries: 0, label: labels });
  const entry = await eventually(
    async () => (await client.dlq.listMessages({ filter: { messageId: dead.messageId } })).messages[0],
    "the DLQ entry",
  );
  check(entry.label === "first" && entry.labels.join() === "first,second", "DLQ entry", entry);
  return { label: entry.label, labels: entry.labels };
});

scenario("log_fields", async () => {
  // Item 5: logs carry the message's retry-delay expression, flow control and labels.
  const res = await client.publishJSON({
    url: url("log-fields"),
    body: { x: 1 },
    retryDelay: "1000 * retried",
    flowControl: { key: "contract-js-log-fc", parallelism: 2, rate: 10, period: "1m" },
    label: "log-label",
  });
  await waitFor("log-fields");
  const logs = await eventually(async () => {
    const found = (await client.logs({ filter: { messageId: res.messageId } })).logs;
    return found.some((l) => l.state === "DELIVERED") && found;
  }, "the DELIVERED log");
  for (const log of logs) {
    check(log.retryDelayExpression === "1000 * retried", "expression", log);
    check(log.flowControlKey === "contract-js-log-fc", "flow control key", log);
    check(log.parallelism === 2 && log.rate === 10 && log.period === 60, "limits", log);
    check(log.label === "log-label" && log.labels.join() === "log-label", "labels", log);
  }
  return logs.map((l) => l.state);
});

scenario("empty_bodies_left_out", async () => {
  // Item 6: no body, no `"body": ""`.
  const res = await client.publish({ url: url("no-body"), delay: 3600 });
  const message = await client.messages.get(res.messageId);
  check(!("body" in message) && !("bodyBase64" in message), "message", message);
  await client.messages.cancel(res.messageId);
  const { scheduleId } = await client.schedules.create({ destination: url("no-body-s"), cron: "0 0 * * *" });
  const schedule = await client.schedules.get(scheduleId);
  check(!("body" in schedule) && !("bodyBase64" in schedule), "schedule", schedule);
  await client.schedules.delete(scheduleId);
});

scenario("flow_control_period_default", async () => {
  // Item 7: period is 1 (second) by default, rate absent when not set.
  const flowControl = { key: "contract-js-fc-period", parallelism: 3 };
  const shows = (what, x) => check(x.period === 1 && x.rate === undefined && x.parallelism === 3, what, x);
  const res = await client.publishJSON({ url: url("fc-m"), body: {}, delay: 3600, flowControl });
  shows("message", await client.messages.get(res.messageId));
  const { scheduleId } = await client.schedules.create({ destination: url("fc-s"), cron: "0 0 * * *", flowControl });
  shows("schedule", await client.schedules.get(scheduleId));
  await client.schedules.delete(scheduleId);
  const [entry] = await client.batchJSON([{ url: url("fc-b"), body: {}, delay: 3600, flowControl }]);
  shows("batch entry", await client.messages.get(entry.messageId));
  await client.messages.cancel([res.messageId, entry.messageId]);
});

scenario("url_group_delete_missing", async () => {
  // Item 8: delete before create, as the official suites do.
  const name = "contract-js-fresh-group";
  await client.urlGroups.delete(name);
  await client.urlGroups.addEndpoints({ name, endpoints: [{ url: url("g") }] });
  await client.urlGroups.delete(name);
  await client.urlGroups.delete(name);
  await rejects(() => client.urlGroups.get(name), "a deleted group");
});

scenario("batch_json_value_bodies", async () => {
  // Item 9: `batch` sends a non-string body as a JSON value; it arrives serialised.
  const values = { object: { a: 1, b: [true, null] }, array: [1, "two"], number: 3, boolean: false, text: "plain" };
  await client.batch(Object.entries(values).map(([k, body]) => ({ url: url(`bj/${k}`), body })));
  const got = Object.fromEntries(
    (await waitFor("bj/", Object.keys(values).length)).map((r) => [r.path.split("/").pop(), r.body]),
  );
  for (const [k, v] of Object.entries(values)) {
    check(got[k] === (typeof v === "string" ? v : JSON.stringify(v)), `body ${k}`, got);
  }
  return got;
});

scenario("reserved_headers_not_forwarded", async () => {
  // Item 10: hop-by-hop headers dropped, the emulator's own set exactly once.
  const dest = url("reserved");
  const body = JSON.stringify({ payload: "x".repeat(40) });
  const res = await client.publish({
    url: dest,
    body,
    headers: {
      "Content-Type": "application/json",
      "Content-Length": "3",
      "Transfer-Encoding": "chunked",
      Connection: "X-Hop",
      "X-Hop": "named by Connection",
      "Keep-Alive": "timeout=5",
      TE: "trailers",
      Upgrade: "websocket",
      "Proxy-Authorization": "Basic c2VjcmV0",
      Host: "elsewhere.example",
      "User-Agent": "forwarded-agent",
      "Upstash-Forward-Upstash-Signature": "stale.signature.value",
      "Upstash-Forward-Upstash-Message-Id": "msg_forwarded",
      "X-Kept": "yes",
    },
  });
  const [req] = await waitFor("reserved");
  check(req.body === body, "the body whole", req.body);
  const names = req.header_list.map(([k]) => k);
  for (const name of ["upstash-signature", "upstash-message-id", "user-agent", "content-length"]) {
    check(names.filter((n) => n === name).length === 1, `one ${name}`, req.header_list);
  }
  const h = req.headers;
  check(h["upstash-message-id"] === res.messageId && h["user-agent"] === "Upstash-QStash", "ours", h);
  check(h["content-length"] === String(body.length) && h.host !== "elsewhere.example", "framing", h);
  for (const name of ["transfer-encoding", "x-hop", "keep-alive", "te", "upgrade", "proxy-authorization"]) {
    check(!(name in h), `${name} dropped`, h);
  }
  check(h["x-kept"] === "yes", "a plain header forwarded", h);
  await verify(req, dest);
  return names;
});

scenario("callback_json_compact", async () => {
  // Item 11: a receiver that re-serialises the callback body gets the same bytes.
  const res = await client.publishJSON({ url: url("cb-src"), body: { "ünïcode": "✓" }, callback: url("cb-compact") });
  const [cb] = await waitFor("cb-compact");
  const again = JSON.stringify(JSON.parse(cb.body));
  check(again === cb.body, "compact JSON", cb.body.slice(0, 200));
  check(JSON.parse(cb.body).sourceMessageId === res.messageId, "its source");
  check(
    await receiver.verify({ signature: cb.headers["upstash-signature"], body: again, url: url("cb-compact") }),
    "the signature holds for the re-serialised body",
  );
  return cb.body.slice(0, 80);
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
