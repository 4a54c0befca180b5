#!/usr/bin/env node
// Starts the self-contained sandstorm-edge binary of this machine's platform, shipped in its own package
// (@sandstorm/edge-agent-<os>-<cpu>, an optional dependency npm installs only where os and cpu match).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const platform = `${process.platform}-${process.arch}`;
const supported = ['linux-x64', 'linux-arm64'];
const name = `@sandstorm/edge-agent-${platform}`;

function binaryPath() {
  if (process.env.SANDSTORM_EDGE_BINARY) {
    return process.env.SANDSTORM_EDGE_BINARY;
  }

  try {
    // The usual place: the optional dependency, nested or hoisted.
    return require.resolve(`${name}/bin/sandstorm-edge`);
  } catch {
    // Installed side by side (npm install -g of both tarballs, or --omit=optional): the sibling package.
    const sibling = path.join(__dirname, '..', '..', `edge-agent-${platform}`, 'bin', 'sandstorm-edge');
    return fs.existsSync(sibling) ? sibling : null;
  }
}

if (!supported.includes(platform)) {
  console.error(`sandstorm-edge: no binary for ${platform}; supported: ${supported.join(', ')}`);
  process.exit(1);
}

const binary = binaryPath();
if (!binary) {
  console.error(`sandstorm-edge: the package ${name} is not installed (npm skipped the optional dependency?); install it next to @sandstorm/edge-agent`);
  process.exit(1);
}

const result = spawnSync(binary, process.argv.slice(2), { stdio: 'inherit' });
if (result.error) {
  console.error(`sandstorm-edge: cannot start ${binary}: ${result.error.message}`);
  process.exit(1);
}

if (result.signal) {
  // Die of the same signal, so a caller sees what the agent saw.
  process.kill(process.pid, result.signal);
}

process.exit(result.status ?? 1);
