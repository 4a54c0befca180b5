// An agent's session with Sandstorm's MCP server, through the official TypeScript MCP client and its streamable HTTP
// transport, authenticated with a Bearer API key. It prints what it saw as one JSON object; McpServerTests asserts on it.
// SANDSTORM_URL: the host; SANDSTORM_API_KEY: the tenant's key; SANDSTORM_OTHER_API_KEY: another tenant's key.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = new URL('mcp', process.env.SANDSTORM_URL);

async function connect(key) {
  const client = new Client({ name: 'sandstorm-integration-test', version: '1.0.0' });
  const headers = key === undefined ? {} : { Authorization: `Bearer ${key}` };
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  return client;
}

const seen = (result) => ({ isError: result.isError ?? false, structured: result.structuredContent ?? null, text: result.content?.[0]?.text ?? null });
const call = async (client, name, args) => seen(await client.callTool({ name, arguments: args }));

const out = {};
const agent = await connect(process.env.SANDSTORM_API_KEY);
out.tools = (await agent.listTools()).tools.map((t) => t.name).sort();

out.run = await call(agent, 'run_code', { code: 'print(6*7)', language: 'python', isolation: 'standard', strategy: 'optimize_cost', maxCost: 0.05 });
const runId = out.run.structured?.id;
out.getRun = await call(agent, 'get_run', { runId });
out.verify = await call(agent, 'verify_provenance', { id: runId });
out.badLanguage = await call(agent, 'run_code', { code: 'print(1)', language: 'cobol' });
out.badIsolation = await call(agent, 'run_code', { code: 'print(1)', language: 'python', isolation: 'extreme' });

out.create = await call(agent, 'create_sandbox', { isolation: 'standard', timeoutSeconds: 120, metadata: { by: 'mcp-test' } });
const sandboxId = out.create.structured?.id;
out.write = await call(agent, 'write_file', { sandboxId, path: 'notes/hello.txt', content: 'hello from an agent\n' });
out.read = await call(agent, 'read_file', { sandboxId, path: '/home/user/notes/hello.txt' });
out.list = await call(agent, 'list_files', { sandboxId, path: 'notes' });
out.command = await call(agent, 'run_command', { sandboxId, cmd: 'cat notes/hello.txt; echo oops >&2; exit 3' });
out.outside = await call(agent, 'write_file', { sandboxId, path: '../../etc/evil', content: 'x' });

const other = await connect(process.env.SANDSTORM_OTHER_API_KEY);
out.otherCommand = await call(other, 'run_command', { sandboxId, cmd: 'true' });
out.otherRead = await call(other, 'read_file', { sandboxId, path: 'notes/hello.txt' });
out.otherKill = await call(other, 'kill_sandbox', { sandboxId });
out.otherRun = await call(other, 'get_run', { runId });
await other.close();

out.kill = await call(agent, 'kill_sandbox', { sandboxId });
await agent.close();

// Without a key, and with a wrong one: refused before any MCP message is handled.
for (const [name, key] of [['noKey', undefined], ['wrongKey', 'sk_not_a_key']]) {
  try {
    await connect(key);
    out[name] = { connected: true };
  } catch (e) {
    out[name] = { connected: false, message: String(e?.message ?? e), code: e?.code ?? null };
  }
}

const raw = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
});
out.rawNoKey = { status: raw.status, contentType: raw.headers.get('content-type'), wwwAuthenticate: raw.headers.get('www-authenticate'), body: await raw.json() };

console.log(JSON.stringify(out));
