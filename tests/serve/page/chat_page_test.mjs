// The chat page at `/` in headless Chromium, driven over the DevTools protocol (Node's WebSocket,
// no npm package): the page shows the model's name once it has the API key, sends a message, and
// its streamed reply equals the server's own non-streamed reply to the same request.
// Usage: node --experimental-websocket chat_page_test.mjs BASE_URL API_KEY CHROMIUM_DEBUG_PORT
import assert from "node:assert/strict";

const [base, apiKey, debugPort] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const pages = await (await fetch(`http://127.0.0.1:${debugPort}/json/list`)).json();
const target = pages.find((p) => p.type === "page");
assert.ok(target, "no page target in Chromium");
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
let nextId = 0;
const waiting = new Map();
ws.onmessage = (ev) => {
  const m = JSON.parse(ev.data);
  if (m.id !== undefined && waiting.has(m.id)) { waiting.get(m.id)(m); waiting.delete(m.id); }
};
function cdp(method, params = {}) {
  const id = ++nextId;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise((ok) => waiting.set(id, ok));
}
async function evaluate(expression) {
  const r = await cdp("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
  if (r.result?.exceptionDetails) throw new Error(`page error: ${JSON.stringify(r.result.exceptionDetails)}`);
  return r.result?.result?.value;
}
// Polls `expression` until it gives a value; while the page is still loading it may throw.
async function until(expression, what, seconds = 60) {
  let last = null;
  for (let i = 0; i < seconds * 10; ++i) {
    try {
      const v = await evaluate(expression);
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last: ${last.message})` : ""}`);
}

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    console.error(`FAIL ${name}: ${e?.stack ?? e}`);
    process.exit(1);
  }
}

await cdp("Page.enable");
await cdp("Page.navigate", { url: `${base}/` });

await check("without the key the page names the problem instead of a model", async () => {
  const label = await until(`(() => { const m = document.getElementById("model"); return m && m.textContent !== "…" && m.textContent; })()`, "model label");
  assert.match(label, /API key/);
});

await check("with the key it shows the model's name", async () => {
  await evaluate(`document.getElementById("api_key").value = ${JSON.stringify(apiKey)}; loadModel(); true`);
  await until(`document.getElementById("model").textContent === "ref-s"`, "model name");
});

await check("a message streams a reply equal to the API's greedy reply", async () => {
  const r = await fetch(`${base}/v1/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ messages: [{ role: "user", content: "Tell me about the city." }], temperature: 0, top_p: 1, max_tokens: 24 }),
  });
  const expected = (await r.json()).choices[0].message.content;
  await evaluate(`(() => {
    document.getElementById("temperature").value = "0";
    document.getElementById("top_p").value = "1";
    document.getElementById("max_tokens").value = "24";
    document.getElementById("input").value = "Tell me about the city.";
    document.getElementById("send").click();
    return true; })()`);
  const got = await until(`(() => { const m = document.querySelectorAll(".msg.assistant");
    const last = m[m.length - 1]; return last && last.dataset.done === "1" ? last.textContent : null; })()`, "the reply");
  assert.equal(got, expected);
  assert.match(await evaluate(`document.getElementById("status").textContent`), /chunks in .* s/);
  assert.equal(await evaluate(`document.querySelectorAll(".msg.user").length`), 1);
});

await cdp("Browser.close").catch(() => {});
ws.close();
