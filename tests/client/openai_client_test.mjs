// The official `openai` npm client (pinned in package.json) against
// `nucleus serve`: completions and chat, streaming and not, n > 1, logprobs,
// seeds, errors. Parsed results are checked against `nucleus generate` /
// `nucleus chat` for the same settings. Usage: node openai_client_test.mjs NUCLEUS
import { spawn, spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const here = path.dirname(fileURLToPath(import.meta.url));
const nucleus = process.argv[2];
const model = path.join(here, '..', '..', 'models', 'stories260K.gguf');
const template = path.join(here, '..', 'data', 'chat', 'llama2.tokenizer_config.json');
const KEY = 'client-test-key';
const timer = setTimeout(() => { console.error('FAIL: timeout'); server?.kill('SIGKILL'); process.exit(1); }, 120000);

let server;
function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(nucleus, ['serve', '-m', model, '--port', '0', '-t', '1', '--api-key', KEY,
                             '--chat-template', template], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    server.stderr.on('data', (d) => {
      log += d;
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(log);
      if (m && log.includes('ready')) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${log}`)));
  });
}

function cli(args) {
  const r = spawnSync(nucleus, ['generate', '-m', model, '--json', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const port = await startServer();
const client = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });

try {
  const models = await client.models.list();
  assert.equal(models.data[0].id, 'stories260K');

  // Greedy completion, then the same as a stream.
  const ref = cli(['-p', 'Once upon a time', '-n', '30', '--temperature', '0']);
  const c = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 30,
                                              temperature: 0 });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.choices[0].text, ref.text);
  assert.equal(c.usage.completion_tokens, ref.tokens.length);
  assert.equal(c.usage.prompt_tokens, ref.prompt_tokens.length);
  assert.ok(['stop', 'length'].includes(c.choices[0].finish_reason));
  let streamed = '';
  let finish = null;
  for await (const chunk of await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time',
                                                              max_tokens: 30, temperature: 0, stream: true })) {
    for (const ch of chunk.choices) { streamed += ch.text; finish = ch.finish_reason ?? finish; }
  }
  assert.equal(streamed, ref.text);
  assert.equal(finish, c.choices[0].finish_reason);

  // n > 1 with a seed: the CLI's sequences, and the same again on a second call.
  const refN = cli(['-p', 'Once upon a time', '-n', '25', '--temperature', '0.9', '--top-k', '0',
                    '--num-return-sequences', '3', '--seed', '123']);
  const seeded = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 25, temperature: 0.9, n: 3,
                   seed: 123 };
  const n1 = await client.completions.create(seeded);
  const n2 = await client.completions.create(seeded);
  assert.equal(n1.choices.length, 3);
  assert.deepEqual(n1.choices.map((x) => x.index), [0, 1, 2]);
  assert.deepEqual(n1.choices.map((x) => x.text), refN.sequences.map((s) => s.text));
  assert.deepEqual(n2.choices.map((x) => x.text), n1.choices.map((x) => x.text));

  // Completions logprobs.
  const lp = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 10,
                                               temperature: 0, logprobs: 2 });
  const L = lp.choices[0].logprobs;
  assert.equal(L.tokens.length, lp.usage.completion_tokens);
  assert.equal(L.token_logprobs.length, L.tokens.length);
  assert.equal(L.text_offset[0], 0);
  for (let i = 0; i < L.tokens.length; i++) {
    assert.equal(Object.keys(L.top_logprobs[i]).length, 2);
    // Greedy: the chosen token is the likeliest, its logprob the top one.
    assert.equal(Math.max(...Object.values(L.top_logprobs[i])), L.token_logprobs[i]);
    assert.ok(L.token_logprobs[i] <= 0);
  }
  assert.equal(L.tokens.join(''), lp.choices[0].text);

  // Chat: the text of `nucleus chat`, streamed and not, with logprobs and usage.
  const chatRef = spawnSync(nucleus, ['chat', '-m', model, '--template-config', template, '--message',
                                      'Tell me a story.', '--temperature', '0', '-n', '30'],
                            { encoding: 'utf8' }).stdout.replace(/\n$/, '');
  const messages = [{ role: 'user', content: 'Tell me a story.' }];
  const chat = await client.chat.completions.create({ model: 'stories260K', messages, max_tokens: 30,
                                                      temperature: 0, logprobs: true, top_logprobs: 3 });
  assert.equal(chat.object, 'chat.completion');
  assert.equal(chat.choices[0].message.role, 'assistant');
  assert.equal(chat.choices[0].message.content, chatRef);
  const content = chat.choices[0].logprobs.content;
  assert.equal(content.length, chat.usage.completion_tokens);
  for (const e of content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(Array.isArray(e.bytes));
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].logprob, e.logprob);  // greedy
  }
  let chatStreamed = '';
  let usage = null;
  let role = null;
  for await (const chunk of await client.chat.completions.create({
    model: 'stories260K', messages, max_tokens: 30, temperature: 0, stream: true,
    stream_options: { include_usage: true } })) {
    for (const ch of chunk.choices) { chatStreamed += ch.delta.content ?? ''; role = role ?? ch.delta.role; }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(role, 'assistant');
  assert.equal(chatStreamed, chatRef);
  assert.deepEqual(usage, chat.usage);

  // Errors arrive as the client's typed errors.
  await assert.rejects(client.completions.create({ model: 'stories260K', prompt: 'a', n: 1000 }),
                       (e) => e instanceof OpenAI.UnprocessableEntityError && e.param === 'n');
  await assert.rejects(client.completions.create({ model: 'gpt-4', prompt: 'a' }),
                       (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  const anon = new OpenAI({ apiKey: 'wrong', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  await assert.rejects(anon.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  console.log('openai_client_test: ok');
} finally {
  server.removeAllListeners('exit');
  const exited = new Promise((r) => server.on('exit', r));
  server.kill('SIGTERM');
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0) { console.error(`server exit status ${code}`); process.exitCode = 1; }
}
