// Reference outputs for TestParity: runs the human-models antispoof and
// liveness graphs in Node with pure-JS @tensorflow/tfjs 4.22.0 (CPU backend)
// on two deterministic NHWC inputs and writes reference.json (tfjs prints a
// banner on stdout, so the result goes to a file).
//
//   npm install @tensorflow/tfjs@4.22.0
//   node reference.js <cache>/vladmandic+human-models@3.0.4/models reference.json
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

const models = {
  antispoof: { size: 128, input: 'conv2d_input' },
  liveness: { size: 32, input: 'conv2d_1_input' },
};

// The same inputs as input() in convert_test.go.
function input(n, kind) {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (kind === 'A' ? (i * 37) % 256 : (i * 101 + 7) % 256) / 255;
  return x;
}

async function load(dir, name) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, name + '.json'), 'utf8'));
  const buf = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength),
    format: json.format,
    signature: json.signature,
  }));
}

(async () => {
  await tf.setBackend('cpu');
  const out = {};
  for (const [name, m] of Object.entries(models)) {
    const model = await load(process.argv[2], name);
    out[name] = {};
    for (const k of ['A', 'B']) {
      const x = tf.tensor4d(input(m.size * m.size * 3, k), [1, m.size, m.size, 3]);
      out[name][k] = Array.from(model.execute({ [m.input]: x }, 'Identity:0').dataSync());
    }
  }
  fs.writeFileSync(process.argv[3], JSON.stringify(out, null, 1) + '\n');
})().catch((e) => { console.error(e); process.exit(1); });
