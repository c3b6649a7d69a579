#!/usr/bin/env node
import { start } from './start.js';

// Units run as POSIX process groups; on Windows nothing would work, so say so at once (exit 2, usage).
if (process.platform === 'win32') {
  process.stderr.write('checkpoint: Windows is not supported; run it on Linux (or macOS), e.g. in WSL\n');
  process.exit(2);
}
start();
