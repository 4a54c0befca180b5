// Drives the Daytona stand-in with the official Daytona SDK (create → executeCommand → delete), so the stand-in
// cannot drift from the real API: toolbox calls go to {toolboxProxyUrl}/{id}/process/execute as the SDK builds them.
import { Daytona } from '@daytonaio/sdk';

const daytona = new Daytona({ apiUrl: process.env.DAYTONA_API_URL, apiKey: process.env.DAYTONA_API_KEY, target: 'us', useDeprecatedPolling: true });
const sandbox = await daytona.create({ language: 'python' });
const response = await sandbox.process.executeCommand('python3 -c "import sys; print(6*7); print(\'err\', file=sys.stderr)"');
await daytona.delete(sandbox);
console.log(JSON.stringify({ id: sandbox.id, exitCode: response.exitCode, result: response.result }));
