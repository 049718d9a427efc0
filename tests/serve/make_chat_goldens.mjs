// Renders every chat template in data/chat_templates/ with the reference renderer,
// @huggingface/jinja (the one transformers.js uses), over a fixed set of conversations and
// writes data/chat_goldens.json; also renders the feature snippets of data/jinja_cases.json
// and writes data/jinja_goldens.json. tests/serve/chat_template_test.cpp and jinja_test.cpp
// compare lowbit's renderer byte for byte against every case (expected output, or the expected
// error message, which lowbit's error must contain).
//
// Regenerate (the package is installed outside the repository):
//   mkdir -p /tmp/jinja-peer && cd /tmp/jinja-peer && npm init -y && npm install @huggingface/jinja
//   cd <repo>/tests/serve && JINJA_PEER=/tmp/jinja-peer node make_chat_goldens.mjs
// The goldens record the package version they were made with.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const peer = process.env.JINJA_PEER || "/tmp/jinja-peer";
const pkgDir = path.join(peer, "node_modules", "@huggingface", "jinja");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const require = createRequire(path.join(peer, "package.json"));
const { Template } = await import(pathToFileURL(require.resolve("@huggingface/jinja")).href);

// Special tokens per template file, as the models' tokenizer_config.json set them.
const FAMILIES = {
  "llama2-chat.jinja": { bos: "<s>", eos: "</s>", alternates: true },
  "llama3-instruct.jinja": { bos: "<|begin_of_text|>", eos: "<|eot_id|>" },
  "llama3.1-instruct.jinja": { bos: "<|begin_of_text|>", eos: "<|eot_id|>", tools: "llama" },
  "mistral-7b-instruct-v0.1.jinja": { bos: "<s>", eos: "</s>", alternates: true },
  "mistral-7b-instruct-v0.3.jinja": { bos: "<s>", eos: "</s>", alternates: true, tools: "mistral" },
  "qwen2-instruct.jinja": { bos: "", eos: "<|im_end|>" },
  "gemma-2-it.jinja": { bos: "<bos>", eos: "<eos>", alternates: true, no_system: true },
  "phi-3-mini-instruct.jinja": { bos: "<s>", eos: "<|endoftext|>" },
  "smollm2-instruct.jinja": { bos: "<|im_start|>", eos: "<|im_end|>" },
  "zephyr.jinja": { bos: "<s>", eos: "</s>" },
  "deepseek-coder-instruct.jinja": { bos: "<\uff5cbegin\u2581of\u2581sentence\uff5c>", eos: "<|EOT|>" },
  "deepseek-r1-distill.jinja": {
    bos: "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
    eos: "<\uff5cend\u2581of\u2581sentence\uff5c>",
  },
};

const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const asst = (content) => ({ role: "assistant", content });

const TRICKY =
  'Unicode h\u00e9llo \u4e16\u754c \ud83d\ude42 \u00a0nbsp; quotes "double" \'single\'; ' +
  "braces {{ not_a_var }} {% if %} {# c #}; backslash \\n \\ ; tab\there;\nsecond line\n";

// Conversations every template is rendered with (each with add_generation_prompt true and false).
const COMMON = {
  user_only: [user("Hello, how are you?")],
  system_user: [sys("You are a terse assistant."), user("What is 2+2?")],
  multi_turn: [user("Hi!"), asst("Hello! How can I help?"), user("Tell me a joke.")],
  system_multi_turn: [
    sys("Be kind."),
    user("Hi!"),
    asst("  Hello there.  "),
    user("Bye."),
    asst("Goodbye!"),
    user("Wait, one more."),
  ],
  assistant_last: [user("Name a color."), asst("Blue.")],
  tricky_content: [sys(TRICKY), user(TRICKY), asst(TRICKY), user("ok")],
  empty_content: [user("")],
  padded_content: [user("   padded   \n\n"), asst("\n  answer  \t")],
  user_user: [user("first"), user("second")],
  content_parts: [{ role: "user", content: [{ type: "text", text: "Describe this." }] }],
};

function extraCases(file, fam) {
  const cases = {};
  if (fam.tools === "llama") {
    cases.tools_weather = {
      messages: [sys("You are a helpful assistant."), user("What's the weather in Paris?")],
      extra: { tools: [weatherTool()], date_string: "07 Dec 2025" },
    };
    cases.tools_not_in_user = {
      messages: [user("Weather in Oslo?")],
      extra: { tools: [weatherTool()], tools_in_user_message: false },
    };
    cases.tool_call_round_trip = {
      messages: [
        user("Weather in Oslo?"),
        {
          role: "assistant",
          tool_calls: [{ type: "function", function: { name: "get_weather", arguments: { city: "Oslo", unit: "c" } } }],
        },
        { role: "tool", content: "{\"temp\": -3}" },
        { role: "ipython", content: { temp: -3, sky: ["snow", 1.5, true, null] } },
      ],
      extra: { tools: [weatherTool()] },
    };
    cases.tools_no_user = { messages: [], extra: { tools: [weatherTool()] } };
    cases.two_tool_calls = {
      messages: [
        user("x"),
        {
          role: "assistant",
          tool_calls: [
            { type: "function", function: { name: "a", arguments: {} } },
            { type: "function", function: { name: "b", arguments: {} } },
          ],
        },
      ],
    };
  }
  if (fam.tools === "mistral") {
    cases.tools_round_trip = {
      messages: [
        sys("Use tools."),
        user("Weather in Oslo?"),
        {
          role: "assistant",
          tool_calls: [
            { id: "abc123xyz", type: "function", function: { name: "get_weather", arguments: { city: "Oslo" } } },
          ],
        },
        { role: "tool", tool_call_id: "abc123xyz", content: "{\"temp\": -3}" },
        asst("It is -3 degrees."),
        user("And in Rome?"),
      ],
      extra: { tools: [weatherTool()] },
    };
    cases.bad_tool_call_id = {
      messages: [
        user("Weather?"),
        { role: "assistant", tool_calls: [{ id: "short", type: "function", function: { name: "f", arguments: {} } }] },
      ],
    };
  }
  if (file === "deepseek-r1-distill.jinja") {
    cases.think_and_tools = {
      messages: [
        sys("SYS"),
        user("Q1"),
        asst("<think>\nreasoning\n</think>\n\nA1"),
        user("Q2"),
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { type: "function", function: { name: "f1", arguments: "{\"x\": 1}" } },
            { type: "function", function: { name: "f2", arguments: "{}" } },
          ],
        },
        { role: "tool", content: "r1" },
        { role: "tool", content: "r2" },
        asst("done"),
      ],
    };
  }
  return cases;
}

function weatherTool() {
  return {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather in a city",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", description: "City name, e.g. \"Oslo\"" },
          unit: { type: "string", enum: ["c", "f"] },
        },
        required: ["city"],
      },
    },
  };
}

function render(source, input) {
  const context = Object.assign({}, input.extra, {
    messages: input.messages,
    add_generation_prompt: input.add_generation_prompt,
    bos_token: input.bos_token,
    eos_token: input.eos_token,
  });
  try {
    return { expected: new Template(source).render(context) };
  } catch (e) {
    return { error: String(e.message) };
  }
}

const dir = path.join(here, "data", "chat_templates");
const out = { generator: `@huggingface/jinja ${pkg.version}`, cases: [] };
for (const file of Object.keys(FAMILIES).sort()) {
  const fam = FAMILIES[file];
  const source = fs.readFileSync(path.join(dir, file), "utf8");
  const convs = {};
  for (const [name, messages] of Object.entries(COMMON)) convs[name] = { messages, extra: {} };
  Object.assign(convs, extraCases(file, fam));
  for (const [name, conv] of Object.entries(convs)) {
    for (const agp of [true, false]) {
      const input = {
        messages: conv.messages,
        add_generation_prompt: agp,
        bos_token: fam.bos,
        eos_token: fam.eos,
        extra: conv.extra || {},
      };
      out.cases.push({ template: file, name: `${name}/agp=${agp}`, input, ...render(source, input) });
    }
  }
}
// Feature snippets: [name, template, context (optional; default: default_context)].
const snippets = JSON.parse(fs.readFileSync(path.join(here, "data", "jinja_cases.json"), "utf8"));
const snippetOut = { generator: out.generator, cases: [] };
for (const [name, source, ctx] of snippets.cases) {
  const context = ctx ?? snippets.default_context;
  let result;
  try {
    result = { expected: new Template(source).render(context) };
  } catch (e) {
    result = { error: String(e.message) };
  }
  snippetOut.cases.push({ name, template: source, context, ...result });
}
fs.writeFileSync(path.join(here, "data", "jinja_goldens.json"), JSON.stringify(snippetOut, null, 1) + "\n");
console.log(`wrote ${snippetOut.cases.length} snippet cases to data/jinja_goldens.json`);

const target = path.join(here, "data", "chat_goldens.json");
fs.writeFileSync(target, JSON.stringify(out, null, 1) + "\n");
const errors = out.cases.filter((c) => "error" in c).length;
console.log(`wrote ${out.cases.length} cases (${errors} expect an error) to ${target}`);
