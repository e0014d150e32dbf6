// The original MoveNet TFJS graph on one 192x192 RGB frame, pure-JS tfjs (CPU backend):
//   node scripts/pose/movenet_tfjs.mjs MODEL.json FRAME.rgb   (192*192*3 bytes) -> JSON [17*3] on stdout
// Run from a folder with @tensorflow/tfjs@4 and @tensorflow/tfjs-backend-cpu@4 installed.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { readFileSync } from 'fs';

const [modelPath, framePath] = process.argv.slice(2);
await tf.setBackend('cpu');
const handler = {
  load: async () => {
    const j = JSON.parse(readFileSync(modelPath, 'utf8'));
    const dir = modelPath.substring(0, modelPath.lastIndexOf('/') + 1);
    const specs = j.weightsManifest.flatMap((g) => g.weights);
    const bufs = j.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(dir + p)));
    const all = Buffer.concat(bufs);
    return {
      modelTopology: j.modelTopology, weightSpecs: specs,
      weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      format: j.format, generatedBy: j.generatedBy, convertedBy: j.convertedBy, signature: j.signature,
    };
  },
};
const model = await tf.loadGraphModel(handler);
const px = new Int32Array(readFileSync(framePath));
const y = model.execute(tf.tensor(px, [1, 192, 192, 3], 'int32'));
process.stdout.write(JSON.stringify(Array.from(await y.data())));
