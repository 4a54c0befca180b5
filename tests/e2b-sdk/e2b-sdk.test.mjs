// The official `e2b` SDK, unchanged, against Sandstorm's E2B-compatible wire (docs/e2b.md). Run by
// tests/Sandstorm.IntegrationTests/E2BSdkTests.cs with E2B_API_URL and E2B_SANDBOX_URL pointing at a local host,
// E2B_API_KEY a tenant's Sandstorm key and SANDSTORM_OTHER_KEY another tenant's.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox, CommandExitError, SandboxNotFoundError, AuthenticationError, NotFoundError, FileNotFoundError, TimeoutError } from 'e2b'

const other = { apiKey: process.env.SANDSTORM_OTHER_KEY }
const created = []

async function create(options = {}) {
  const sandbox = await Sandbox.create({ timeoutMs: 120_000, ...options })
  created.push(sandbox)
  return sandbox
}

after(async () => {
  for (const sandbox of created) {
    await sandbox.kill().catch(() => {})
  }
})

test('create, run a command with streamed output and its environment, read the result', async () => {
  const sandbox = await create({ metadata: { suite: 'e2b-sdk', case: 'run' }, envs: { GREETING: 'hello' } })
  assert.match(sandbox.sandboxId, /^\S+$/)

  const stdout = []
  const stderr = []
  const result = await sandbox.commands.run('echo "$GREETING $WHO"; echo oops >&2; pwd; id -un', {
    envs: { WHO: 'agent' },
    onStdout: (d) => stdout.push(d),
    onStderr: (d) => stderr.push(d),
  })

  assert.equal(result.exitCode, 0)
  assert.equal(result.stdout, 'hello agent\n/home/user\nuser\n')
  assert.equal(result.stderr, 'oops\n')
  assert.equal(stdout.join(''), result.stdout)
  assert.equal(stderr.join(''), 'oops\n')
})

test('a failing command throws CommandExitError with its exit code and output', async () => {
  const sandbox = await create()
  await assert.rejects(sandbox.commands.run('echo partial; exit 3'), (e) => {
    assert.ok(e instanceof CommandExitError, `${e.constructor.name}: ${e.message}`)
    assert.equal(e.exitCode, 3)
    assert.equal(e.stdout, 'partial\n')
    return true
  })
})

test('a command past its own timeout is ended, and the sandbox lives on', async () => {
  const sandbox = await create()
  await assert.rejects(sandbox.commands.run('sleep 30', { timeoutMs: 1_000 }), (e) => {
    assert.ok(e instanceof TimeoutError || e instanceof CommandExitError, `${e.constructor.name}: ${e.message}`)
    return true
  })
  assert.equal((await sandbox.commands.run('echo still-here')).stdout, 'still-here\n')
})

test('background commands: list, stdin, kill, reconnect to the output', async () => {
  const sandbox = await create()
  const sleeper = await sandbox.commands.run('sleep 60', { background: true })
  assert.ok(sleeper.pid > 0)
  assert.ok((await sandbox.commands.list()).some((p) => p.pid === sleeper.pid))
  assert.equal(await sleeper.kill(), true)
  await assert.rejects(sleeper.wait(), (e) => e instanceof CommandExitError)

  const cat = await sandbox.commands.run('cat', { background: true, stdin: true })
  await sandbox.commands.sendStdin(cat.pid, 'through stdin\n')
  await cat.closeStdin()
  assert.equal((await cat.wait()).stdout, 'through stdin\n')

  const ticker = await sandbox.commands.run('for i in 1 2 3; do echo tick$i; sleep 0.2; done', { background: true })
  await ticker.disconnect()
  const again = await sandbox.commands.connect(ticker.pid)
  const done = await again.wait()
  assert.equal(done.exitCode, 0)
  assert.match(done.stdout, /tick3\n$/)
  assert.equal(await sandbox.commands.kill(999_999), false)
})

test('files: write, read (text and bytes), list, stat, make a directory, rename, remove', async () => {
  const sandbox = await create()
  await sandbox.files.write('/home/user/notes/hello.txt', 'hello world')
  await sandbox.files.write([
    { path: 'data/a.txt', data: 'A' },
    { path: '/home/user/data/b.bin', data: new Uint8Array([0, 1, 2, 255]).buffer },
  ])

  assert.equal(await sandbox.files.read('/home/user/notes/hello.txt'), 'hello world')
  assert.deepEqual([...(await sandbox.files.read('/home/user/data/b.bin', { format: 'bytes' }))], [0, 1, 2, 255])
  const names = (await sandbox.files.list('/home/user/data')).map((e) => e.name).sort()
  assert.deepEqual(names, ['a.txt', 'b.bin'])
  assert.equal(await sandbox.files.exists('/home/user/notes/hello.txt'), true)
  assert.equal(await sandbox.files.exists('/home/user/missing.txt'), false)
  assert.equal((await sandbox.files.getInfo('/home/user/notes/hello.txt')).size, 11)
  assert.equal(await sandbox.files.makeDir('/home/user/made'), true)
  await sandbox.files.rename('/home/user/notes/hello.txt', '/home/user/made/moved.txt')
  assert.equal((await sandbox.commands.run('cat made/moved.txt')).stdout, 'hello world')
  await sandbox.files.remove('/home/user/made/moved.txt')
  assert.equal(await sandbox.files.exists('/home/user/made/moved.txt'), false)

  // A command's file is the API's file: one sandbox.
  await sandbox.commands.run('echo from-shell > shell.txt')
  assert.equal(await sandbox.files.read('shell.txt'), 'from-shell\n')
})

test('paths never leave the sandbox: host files are not readable through the file API', async () => {
  const sandbox = await create()
  await assert.rejects(sandbox.files.read('/etc/shadow'), (e) => e instanceof Error && !(e instanceof AuthenticationError))
  await assert.rejects(sandbox.files.read('/home/user/../../etc/passwd'), (e) => e instanceof Error)
  await assert.rejects(sandbox.files.read('/home/user/nothing-here.txt'), (e) => e instanceof NotFoundError || e instanceof FileNotFoundError, 'a missing file is not found')
})

test('lifetime: setTimeout, getInfo, list by metadata, connect, kill', async () => {
  const tag = `t${Date.now()}`
  const sandbox = await create({ metadata: { suite: 'e2b-sdk', tag } })
  await sandbox.setTimeout(300_000)
  const info = await sandbox.getInfo()
  assert.equal(info.sandboxId, sandbox.sandboxId)
  assert.equal(info.metadata.tag, tag)
  assert.ok(info.endAt.getTime() - Date.now() > 200_000, `endAt ${info.endAt.toISOString()}`)
  assert.equal(await sandbox.isRunning(), true)

  const pager = Sandbox.list({ query: { metadata: { tag } } })
  const listed = await pager.nextItems()
  assert.deepEqual(listed.map((s) => s.sandboxId), [sandbox.sandboxId])

  const connected = await Sandbox.connect(sandbox.sandboxId)
  assert.equal((await connected.commands.run('echo via-connect')).stdout, 'via-connect\n')

  assert.equal(await Sandbox.kill(sandbox.sandboxId), true)
  assert.equal(await Sandbox.kill(sandbox.sandboxId), false)
  await assert.rejects(Sandbox.connect(sandbox.sandboxId), (e) => e instanceof SandboxNotFoundError || e instanceof NotFoundError)
})

test("another tenant's key neither sees nor reaches a sandbox", async () => {
  const sandbox = await create({ metadata: { suite: 'e2b-sdk', case: 'tenancy' } })
  await assert.rejects(Sandbox.getInfo(sandbox.sandboxId, other), (e) => e instanceof SandboxNotFoundError || e instanceof NotFoundError)
  await assert.rejects(Sandbox.connect(sandbox.sandboxId, other), (e) => e instanceof SandboxNotFoundError || e instanceof NotFoundError)
  assert.equal(await Sandbox.kill(sandbox.sandboxId, other), false)
  const theirs = await Sandbox.list({ ...other, query: { metadata: { case: 'tenancy' } } }).nextItems()
  assert.equal(theirs.length, 0)
  assert.equal((await sandbox.commands.run('echo mine')).stdout, 'mine\n')
})

test('a wrong key is refused', async () => {
  await assert.rejects(Sandbox.create({ apiKey: 'not-a-key' }), (e) => e instanceof AuthenticationError)
})

test('pause is refused clearly (not supported), not faked', async () => {
  const sandbox = await create()
  await assert.rejects(sandbox.pause(), (e) => /not supported/i.test(e.message))
})
