import { run } from './post-run.js';

void run();
