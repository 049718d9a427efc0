// Load generator for OpenAI-compatible servers (lowbit serve, llama.cpp's llama-server): N
// concurrent workers each send streaming /v1/completions requests back to back and count tokens.
// Prints one JSON line: requests, failures by status, aggregate generated tok/s over the wall
// time, mean time to first token, and (with --pid) the server's RSS before and after.
// No dependencies (Node >= 18: fetch and web streams).
//
//   node bench/serve_load.mjs --url http://127.0.0.1:8080 --concurrency 16 --requests 32 \
//        --max-tokens 64 [--prompt TEXT] [--api-key K] [--pid SERVER_PID] [--timeout-s 120]
import { readFileSync } from "node:fs";

function args() {
  const a = { url: "http://127.0.0.1:8080", concurrency: 1, requests: 0, "max-tokens": 64,
              prompt: "The history of the city", "api-key": "", pid: 0, "timeout-s": 120 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, "");
    if (!(k in a) || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
    a[k] = typeof a[k] === "number" ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!a.requests) a.requests = a.concurrency;
  return a;
}

function rss_kib(pid) {
  if (!pid) return null;
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) : null;
}

// One streaming request; resolves to {ok, status, tokens, ttft_ms}.
async function one(a, signal) {
  const t0 = performance.now();
  const headers = { "Content-Type": "application/json" };
  if (a["api-key"]) headers.Authorization = `Bearer ${a["api-key"]}`;
  const body = JSON.stringify({ prompt: a.prompt, max_tokens: a["max-tokens"], temperature: 0, stream: true,
                                ignore_eos: true, stream_options: { include_usage: true } });
  let res;
  try {
    res = await fetch(`${a.url}/v1/completions`, { method: "POST", headers, body, signal });
  } catch (e) {
    return { ok: false, status: "network", tokens: 0 };
  }
  if (res.status !== 200) {
    await res.text().catch(() => "");
    return { ok: false, status: String(res.status), tokens: 0 };
  }
  let ttft = null, chunks = 0, usage = null, buf = "";
  const decoder = new TextDecoder();
  for await (const part of res.body) {
    buf += decoder.decode(part, { stream: true });
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const line = buf.slice(0, end);
      buf = buf.slice(end + 2);
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const j = JSON.parse(line.slice(6));
      if (j.usage) usage = j.usage;
      if (j.choices?.[0]?.text) {
        if (ttft === null) ttft = performance.now() - t0;
        ++chunks;
      }
    }
  }
  return { ok: true, status: "200", tokens: usage ? usage.completion_tokens : chunks, ttft_ms: ttft ?? 0 };
}

const a = args();
const rss_before = rss_kib(a.pid);
const deadline = AbortSignal.timeout(a["timeout-s"] * 1000);
let next = 0;
const results = [];
const t0 = performance.now();
await Promise.all(Array.from({ length: a.concurrency }, async () => {
  while (next < a.requests && !deadline.aborted) {
    ++next;
    results.push(await one(a, deadline));
  }
}));
const wall = (performance.now() - t0) / 1000;
const ok = results.filter((r) => r.ok);
const failures = {};
for (const r of results) if (!r.ok) failures[r.status] = (failures[r.status] ?? 0) + 1;
const tokens = ok.reduce((s, r) => s + r.tokens, 0);
console.log(JSON.stringify({
  url: a.url, concurrency: a.concurrency, requests: results.length, ok: ok.length, failures,
  max_tokens: a["max-tokens"], generated_tokens: tokens, wall_s: +wall.toFixed(3),
  aggregate_tok_s: +(tokens / wall).toFixed(2),
  mean_ttft_ms: ok.length ? +(ok.reduce((s, r) => s + r.ttft_ms, 0) / ok.length).toFixed(1) : null,
  rss_kib_before: rss_before, rss_kib_after: rss_kib(a.pid),
}));
