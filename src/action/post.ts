import { refuseUnsupportedPlatform } from './platform.js';
import { run } from './post-run.js';

refuseUnsupportedPlatform();
// As in main.ts: an open connection left by a store library must not keep the step alive.
void run().then(() => process.exit());
