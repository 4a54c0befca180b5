// Drives the E2B stand-in with the official E2B SDK, so the stand-in cannot drift from what the real API speaks.
// E2B_API_URL points the control plane at the stand-in, E2B_SANDBOX_URL points envd there too.
import { Sandbox } from 'e2b';

const sandbox = await Sandbox.create({ timeoutMs: 60_000 });
const result = await sandbox.commands.run('python3 -c "print(1)"');
await sandbox.files.write('check.txt', 'written by the sdk');
const cat = await sandbox.commands.run('cat check.txt');
const killed = await sandbox.kill();
console.log(JSON.stringify({ sandboxId: sandbox.sandboxId, stdout: result.stdout, exitCode: result.exitCode, cat: cat.stdout, killed }));
