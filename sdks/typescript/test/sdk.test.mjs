// Runs against a real Sandstorm host: SANDSTORM_BASE_URL and SANDSTORM_API_KEY (a tenant's key) must be set;
// SANDSTORM_OTHER_API_KEY is another tenant's key. The integration test TypeScriptSdkTests sets them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sandstorm, SandstormError, verifyBundle } from '../dist/index.js';

const client = new Sandstorm();

test('run: the v1 default call runs python and answers the v1 shape', async () => {
  const result = await client.run({ code: 'print(6*7)' });
  assert.equal(result.status, 'succeeded');
  assert.equal(result.stdout, '42\n');
  assert.equal(result.exitCode, 0);
  assert.equal(typeof result.cost, 'number');
});

test('run: the launch post example with client defaults and constraints.isolation', async () => {
  const launch = new Sandstorm({ strategy: 'optimize_cost', security: 'basic' });
  const result = await launch.run({ code: 'console.log(2+3)', language: 'javascript', constraints: { maxCost: 0.05, isolation: 'standard' } });
  assert.equal(result.stdout, '5\n');
  const run = await launch.getRun(result.id);
  assert.notEqual(run.runtime, 'process', 'constraints.isolation standard must not run as a plain process');
});

test('errors: a bad request is a SandstormError with the problem type and field errors', async () => {
  await assert.rejects(client.run({ code: 'x', language: 'cobol' }), (e) => {
    assert.ok(e instanceof SandstormError);
    assert.equal(e.status, 400);
    assert.equal(e.code, 'validation-failed');
    assert.equal(e.type, 'https://sandstorm.dev/problems/validation-failed');
    assert.ok(e.errors.language, JSON.stringify(e.errors));
    return true;
  });
});

test('errors: a bad key is 401 unauthorized', async () => {
  const bad = new Sandstorm({ apiKey: 'not-a-key' });
  await assert.rejects(bad.getUsage(), (e) => e instanceof SandstormError && e.status === 401 && e.code === 'unauthorized');
});

test('snapshots: the 501 not-supported problem is a typed error', async () => {
  await assert.rejects(client.listSnapshots(), (e) => e instanceof SandstormError && e.status === 501 && e.code === 'not-supported');
});

test('getUsage: v1 fields for a start/end period', async () => {
  const usage = await client.getUsage({ start: new Date(Date.now() - 3600_000), end: new Date(Date.now() + 60_000) });
  assert.equal(typeof usage.totalRuns, 'number');
  assert.ok(usage.totalRuns >= 1, JSON.stringify(usage));
  assert.equal(typeof usage.providerBreakdown, 'object');
});

test('provenance: a run\'s bundle verifies with the log key, and a tampered one does not', async () => {
  const result = await client.run({ code: 'print("signed")' });
  const run = await client.getRun(result.id);
  assert.ok(run.provenance, 'the settled run has a provenance reference');
  const bundle = await client.provenance.get(result.id);
  const { publicKeyPem } = await client.provenance.key();
  const verified = await client.provenance.verify(bundle, { trustedPublicKeyPem: publicKeyPem, stdout: 'signed\n' });
  assert.deepEqual(verified.failures, []);
  assert.ok(verified.ok);
  assert.equal(verified.statement.predicate.runId, result.id);

  const wrongOutput = await verifyBundle(bundle, { trustedPublicKeyPem: publicKeyPem, stdout: 'forged\n' });
  assert.equal(wrongOutput.ok, false);
  const payload = JSON.parse(Buffer.from(bundle.envelope.payload, 'base64').toString());
  payload.predicate.runId = 'someone-else';
  const tampered = { ...bundle, envelope: { ...bundle.envelope, payload: Buffer.from(JSON.stringify(payload)).toString('base64') } };
  const failed = await verifyBundle(tampered, { trustedPublicKeyPem: publicKeyPem });
  assert.equal(failed.ok, false);
  assert.ok(failed.failures.some((f) => f.includes('DSSE')), failed.failures.join('; '));
  assert.ok(failed.failures.some((f) => f.includes('inclusion')), failed.failures.join('; '));
});

test('sandboxes: commands stream, files round-trip, another tenant gets 404, kill ends it', async () => {
  const sandbox = await client.sandboxes.create({ timeout: 120, metadata: { suite: 'ts-sdk' } });
  try {
    assert.equal(sandbox.info.status, 'running');
    const chunks = [];
    const errors = [];
    const result = await sandbox.commands.run('echo one; echo oops >&2; echo two; exit 3', {
      onStdout: (d) => chunks.push(d),
      onStderr: (d) => errors.push(d),
    });
    assert.equal(result.exitCode, 3);
    assert.equal(result.stdout, 'one\ntwo\n');
    assert.equal(chunks.join(''), 'one\ntwo\n');
    assert.equal(errors.join(''), 'oops\n');
    assert.ok(result.commandId);

    await sandbox.files.write('notes/hello.txt', 'héllo\n');
    assert.equal(await sandbox.files.read('notes/hello.txt'), 'héllo\n');
    const entries = await sandbox.files.list('notes');
    assert.deepEqual(entries.map((e) => e.name), ['hello.txt']);
    const cat = await sandbox.commands.run('cat notes/hello.txt');
    assert.equal(cat.stdout, 'héllo\n');

    const listed = [];
    for await (const s of client.sandboxes.list({ metadata: { suite: 'ts-sdk' } })) listed.push(s.id);
    assert.ok(listed.includes(sandbox.id));

    const other = new Sandstorm({ apiKey: process.env.SANDSTORM_OTHER_API_KEY });
    await assert.rejects(other.sandboxes.get(sandbox.id), (e) => e instanceof SandstormError && e.status === 404 && e.code === 'not-found');
    await assert.rejects(sandbox.files.read('missing.txt'), (e) => e instanceof SandstormError && e.status === 404);
  } finally {
    await sandbox.kill();
  }

  // DELETE answers 202 (stopping); once the sandbox has ended, commands are refused.
  const deadline = Date.now() + 60_000;
  while (!['stopped', 'expired', 'lost', 'failed', 'quarantined'].includes((await sandbox.refresh()).status)) {
    assert.ok(Date.now() < deadline, `the sandbox did not end: ${sandbox.info.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await assert.rejects(sandbox.commands.run('true'), (e) => e instanceof SandstormError && e.status >= 400);
});

test('batches: submit and follow until completed', async () => {
  const submitted = await client.batches.submit([{ code: 'print(1)' }, { code: 'print(2)' }]);
  const deadline = Date.now() + 120_000;
  let batch = await client.batches.get(submitted.id);
  while (batch.status !== 'completed' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    batch = await client.batches.get(submitted.id);
  }
  assert.equal(batch.status, 'completed');
  assert.equal(batch.counts.succeeded, 2);
  const results = await client.batches.results(submitted.id);
  assert.equal(results.length, 2);
});
