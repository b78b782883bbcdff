export type { Bus, BusReadiness } from './bus.ts';
export { createInlineBus } from './inline.ts';
export { createKafkaBus, type KafkaBusDeps, type KafkaBusOptions } from './kafka.ts';
