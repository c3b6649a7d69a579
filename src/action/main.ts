import { run } from './main-run.js';
import { refuseUnsupportedPlatform } from './platform.js';

refuseUnsupportedPlatform();
// Exit once the step is done: a connection a store library leaves open (a download the Azure SDK gave up
// on, a keep-alive socket) would otherwise hold Node, and the job, until the runner's timeout. The same
// reason actions/cache ends its own steps with process.exit.
void run().then(() => process.exit());
