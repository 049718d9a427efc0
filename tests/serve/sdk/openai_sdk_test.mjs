// lowbit serve driven by the official OpenAI Node SDK (npm "openai"), as users call it.
// Usage: node openai_sdk_test.mjs BASE_URL API_KEY EXPECTED_JSON
//   EXPECTED_JSON: {"prompt": ..., "n": ..., "text": <lowbit generate's greedy continuation>}
// Exits non-zero on the first failed check; every request has a timeout.
import OpenAI from "openai";
import assert from "node:assert/strict";

const [baseURL, apiKey, expectedJson] = process.argv.slice(2);
const expected = JSON.parse(expectedJson);
const client = new OpenAI({ baseURL, apiKey, timeout: 60_000, maxRetries: 0 });

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    console.error(`FAIL ${name}: ${e?.stack ?? e}`);
    process.exit(1);
  }
}

const greedy = { prompt: expected.prompt, max_tokens: expected.n, temperature: 0 };

await check("models.list names the served model", async () => {
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].id, "ref-s");
});

await check("completions.create equals lowbit generate (greedy)", async () => {
  const r = await client.completions.create({ model: "ref-s", ...greedy });
  assert.equal(r.choices[0].text, expected.text);
  assert.equal(r.usage.completion_tokens, expected.n);
  assert.equal(r.choices[0].finish_reason, "length");
});

await check("streamed completion carries the same text", async () => {
  const stream = await client.completions.create({ model: "ref-s", ...greedy, stream: true });
  let text = "";
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, expected.text);
  assert.equal(finish, "length");
});

await check("n choices, plain and streamed, each the greedy text", async () => {
  const r = await client.completions.create({ model: "ref-s", ...greedy, n: 3 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  for (const c of r.choices) assert.equal(c.text, expected.text);
  assert.equal(r.usage.completion_tokens, 3 * expected.n);
  const stream = await client.completions.create({ model: "ref-s", ...greedy, n: 2, stream: true });
  const texts = ["", ""];
  for await (const chunk of stream) for (const c of chunk.choices) texts[c.index] += c.text ?? "";
  assert.deepEqual(texts, [expected.text, expected.text]);
});

await check("stop sequences end the reply before them", async () => {
  const stop = expected.text.slice(6, 9);
  const r = await client.completions.create({ model: "ref-s", ...greedy, stop: [stop] });
  assert.equal(r.choices[0].text, expected.text.slice(0, expected.text.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, "stop");
});

await check("chat completion, plain and streamed, with usage", async () => {
  const messages = [{ role: "system", content: "You tell stories." }, { role: "user", content: "Tell me about the city." }];
  const r = await client.chat.completions.create({ model: "ref-s", messages, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.ok(r.usage.prompt_tokens > 10);
  const stream = await client.chat.completions.create({
    model: "ref-s", messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, r.choices[0].message.content);
  assert.equal(usage.completion_tokens, r.usage.completion_tokens);
});

await check("logprobs of a chat reply", async () => {
  const r = await client.chat.completions.create({
    model: "ref-s", messages: [{ role: "user", content: "Hi" }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2,
  });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  for (const t of lp) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 2);
    assert.equal(t.top_logprobs[0].logprob, t.logprob);
  }
});

await check("errors arrive as the SDK's typed errors", async () => {
  await assert.rejects(client.completions.create({ model: "ref-s", prompt: "x", temperature: 5 }),
                       (e) => e instanceof OpenAI.BadRequestError && /temperature/.test(e.message));
  const wrongKey = new OpenAI({ baseURL, apiKey: "wrong", timeout: 10_000, maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
});

await check("16 concurrent streams all succeed with the greedy text", async () => {
  const runs = Array.from({ length: 16 }, async () => {
    const stream = await client.completions.create({ model: "ref-s", ...greedy, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    return text;
  });
  for (const text of await Promise.all(runs)) assert.equal(text, expected.text);
});
