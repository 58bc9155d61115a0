// Drives `kvbench serve` with the OpenAI Node SDK, as an application would: models.retrieve,
// completions and chat.completions streamed and not, and the SDK's error classes for refused
// parameters and an unknown model. Usage: node sdk_test.mjs BASE_URL MODEL_ID PERSONALITY.
// Exits non-zero on the first failure. tests/e2e/openai_sdk.sh runs it with each pinned SDK
// (tests/node, tests/node-current) by placing it beside that SDK's node_modules.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const [base, model, personality = 'dynamo'] = process.argv.slice(2);
// llama.cpp serves its one model whatever a request names
const modelIgnored = personality === 'llamacpp';
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test', maxRetries: 0 });

const m = await client.models.retrieve(model);
assert.equal(m.id, model);
assert.equal(m.object, 'model');
const list = await client.models.list();
assert.ok(list.data.some((x) => x.id === model), 'models.list lists the model');
await assert.rejects(client.models.retrieve('no-such-model'), OpenAI.NotFoundError);

const unary = await client.completions.create({ model, prompt: 'Hello there', max_tokens: 8, temperature: 0 });
assert.equal(unary.object, 'text_completion');
assert.equal(typeof unary.choices[0].text, 'string');
assert.ok(unary.choices[0].text.length > 0, 'unary text');
assert.ok(['stop', 'length'].includes(unary.choices[0].finish_reason));
assert.ok(unary.usage.prompt_tokens > 0 && unary.usage.completion_tokens > 0);

const stream = await client.completions.create({
  model, prompt: 'Hello there', max_tokens: 32, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
let text = '', chunks = 0, usage = null, finish = null;
for await (const c of stream) {
  chunks++;
  if (c.choices.length) {
    text += c.choices[0].text;
    finish = c.choices[0].finish_reason ?? finish;
  }
  if (c.usage) usage = c.usage;
}
assert.ok(chunks > 2, `streamed in chunks (${chunks})`);
assert.ok(text.length > 0, 'streamed text');
assert.ok(finish, 'finish_reason on the last text chunk');
assert.ok(usage && usage.completion_tokens > 0, 'usage chunk');
assert.equal(text, (await client.completions.create({ model, prompt: 'Hello there', max_tokens: 32, temperature: 0 })).choices[0].text,
  'the same text streamed and not (temperature 0)');

for (const [param, value] of [['echo', true], ['logprobs', 2], ['n', 2], ['best_of', 3], ['suffix', 'x']]) {
  await assert.rejects(
    client.completions.create({ model, prompt: 'Hi', max_tokens: 4, [param]: value }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
    `${param}=${JSON.stringify(value)} must be refused with 400`);
}
if (modelIgnored)
  assert.equal((await client.completions.create({ model: 'other-model', prompt: 'Hi', max_tokens: 4 })).model, 'other-model');
else
  await assert.rejects(client.completions.create({ model: 'other-model', prompt: 'Hi', max_tokens: 4 }),
    OpenAI.NotFoundError);

// ---------------------------------------------------------------- chat.completions
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hello there' },
  { role: 'assistant', content: 'Hi.' },
  { role: 'user', content: [{ type: 'text', text: 'Tell me' }, { type: 'text', text: 'more.' }] },
];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 16, temperature: 0 });
assert.equal(chat.object, 'chat.completion');
assert.ok(chat.id.startsWith('chatcmpl-'), `chat id ${chat.id}`);
assert.equal(chat.choices[0].message.role, 'assistant');
assert.equal(typeof chat.choices[0].message.content, 'string');
assert.ok(chat.choices[0].message.content.length > 0, 'chat content');
assert.ok(['stop', 'length'].includes(chat.choices[0].finish_reason));
assert.ok(chat.usage.prompt_tokens > 0 && chat.usage.completion_tokens > 0);
assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);

const short = await client.chat.completions.create({
  model, messages: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: 'Hi' }],
  max_completion_tokens: 3, temperature: 0,
});
assert.ok(short.usage.completion_tokens <= 3, 'max_completion_tokens bounds the answer');

const chatStream = await client.chat.completions.create({
  model, messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
});
let ctext = '', cchunks = 0, cusage = null, cfinish = null, role = null, firstContentAt = -1;
for await (const c of chatStream) {
  assert.equal(c.object, 'chat.completion.chunk');
  cchunks++;
  if (c.choices.length) {
    const d = c.choices[0].delta;
    if (cchunks === 1) {
      // the first chunk names the role and carries no text
      role = d.role;
      assert.ok(d.content === '' || d.content === null, `role chunk content ${JSON.stringify(d.content)}`);
    } else {
      assert.equal(d.role, undefined, 'the role only on the first chunk');
    }
    if (d.content) {
      if (firstContentAt < 0) firstContentAt = cchunks;
      ctext += d.content;
    }
    cfinish = c.choices[0].finish_reason ?? cfinish;
  }
  if (c.usage) cusage = c.usage;
}
assert.equal(role, 'assistant', 'the first chunk carries delta.role');
assert.ok(firstContentAt > 1, 'content comes after the role chunk');
assert.ok(cfinish, 'finish_reason on the last chunk');
assert.ok(cusage && cusage.completion_tokens > 0 && cusage.prompt_tokens === chat.usage.prompt_tokens,
  'usage (a final chunk, or llama.cpp\'s last chunk)');
assert.equal(ctext, chat.choices[0].message.content, 'the same chat text streamed and not (temperature 0)');

const refused = [
  ['tools', { tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }],
  ['n', { n: 2 }],
  ['logprobs', { logprobs: true }],
  ['response_format', { response_format: { type: 'json_object' } }],
  ['role tool', { messages: [{ role: 'tool', content: 'x', tool_call_id: '1' }] }],
  ['image part', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/i.png' } }] }] }],
  ['no messages', { messages: [] }],
];
for (const [what, extra] of refused) {
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, ...extra }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
    `chat with ${what} must be refused with 400`);
}
if (!modelIgnored)
  await assert.rejects(client.chat.completions.create({ model: 'other-model', messages, max_tokens: 4 }),
    OpenAI.NotFoundError);
console.log(`openai sdk: ok (${chunks} completion chunks, ${cchunks} chat chunks streamed)`);
