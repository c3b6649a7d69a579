import { refuseUnsupportedPlatform } from './platform.js';
import { run } from './post-run.js';

refuseUnsupportedPlatform();
void run();
