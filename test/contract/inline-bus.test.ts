import { createInlineBus } from '../../src/bus/index.ts';
import { busContract, type Recorder } from './bus.case.ts';

busContract('inline', async () => ({
  bus: createInlineBus(),
  block: async (sink: Recorder) => sink.hold(),
  unblock: async (sink: Recorder) => sink.release(),
  reread: async (sink: Recorder) => sink.changes, // inline: durable = what the sink committed
  cleanup: async () => {},
}));
