/**
 * Preloaded (`node --import`) into the gateway process of part (d) of bench/phone-channel.ts, so
 * one gateway (api/main.ts, unchanged) can be measured with and without the direct retained
 * lookup (broker/retained-lookup.ts), on the same connections in the same run:
 *
 *   - once the gateway's Aedes exists, the lookup is installed if the gateway has not installed
 *     it itself (it is idempotent), and the gateway prints which of the two it was;
 *   - SIGUSR2 switches between the lookup ("direct") and the persistence's own scan of every
 *     retained message ("bypassed", what Aedes does without it); every switch is printed.
 *
 * Lines printed: `bench-retained-lookup: <mode> (<why>)`. Nothing else in the gateway changes.
 */
import { Aedes } from "aedes";
import { bypassFastRetainedLookup, fastRetainedLookup, retainedLookupMode } from "../broker/retained-lookup.js";

const say = (line: string) => process.stdout.write(`bench-retained-lookup: ${line}\n`);
const createBroker = Aedes.createBroker.bind(Aedes);
/** The gateway's Aedes (retained-lookup.ts finds its persistence). */
let broker: object | undefined;

Aedes.createBroker = async (...args: Parameters<typeof Aedes.createBroker>) => {
  const aedes = await createBroker(...args);
  if (broker) return aedes;
  broker = aedes;
  // The gateway goes on with its own set-up (where it may install the lookup) before this runs.
  setImmediate(() => {
    const before = retainedLookupMode(broker!);
    if (before === "untouched") fastRetainedLookup(broker!);
    const now = retainedLookupMode(broker!);
    say(`${now} (${before === "untouched" ? (now === "direct" ? "installed by this preload: the gateway did not" : "not a memory persistence") : "installed by the gateway"})`);
  });
  return aedes;
};

process.on("SIGUSR2", () => {
  if (!broker) return say("no broker yet");
  const next = retainedLookupMode(broker) === "direct";
  bypassFastRetainedLookup(broker, next);
  say(`${retainedLookupMode(broker)} (switched by SIGUSR2)`);
});
