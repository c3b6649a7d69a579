import { run } from './main-run.js';
import { refuseUnsupportedPlatform } from './platform.js';

refuseUnsupportedPlatform();
void run();
