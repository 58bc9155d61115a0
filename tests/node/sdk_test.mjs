// Drives `kvbench serve` with the OpenAI Node SDK, as an application would: models.retrieve,
// completions streamed and not, and the SDK's error classes for refused parameters and an
// unknown model. Usage: node sdk_test.mjs BASE_URL MODEL_ID. Exits non-zero on the first failure.
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const [base, model] = process.argv.slice(2);
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
await assert.rejects(client.completions.create({ model: 'other-model', prompt: 'Hi', max_tokens: 4 }),
  OpenAI.NotFoundError);
console.log(`openai sdk: ok (${chunks} chunks streamed)`);
