export type { Bus } from './bus.ts';
export { createInlineBus } from './inline.ts';
