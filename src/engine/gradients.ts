/**
 * tfjs's gradient functions. The code uses only tfjs-core's API, but tfjs-core's Node bundle registers
 * no gradients: the `@tensorflow/tfjs` bundle does (into core's global registry, alongside layers,
 * converter and data, which ghn does not use). Importing it costs ~0.45 s CPU of start-up, so only
 * commands that differentiate load it.
 */
let loaded: Promise<void> | undefined;

/** Registers every tfjs gradient (once; later calls share the first). */
export function registerGradients(): Promise<void> {
  return (loaded ??= import('@tensorflow/tfjs').then(() => undefined));
}
