import { healthcheckUrl, probe } from './ops/healthcheck.ts';

// `node dist/healthcheck.js`: the image's HEALTHCHECK (slim images have no curl).
try {
  process.exitCode = await probe(healthcheckUrl(process.env, process.cwd()));
} catch (err) {
  process.stderr.write(`bff-gateway healthcheck: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
