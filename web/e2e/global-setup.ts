// Builds the real ates binary once for every browser test (go build ./cmd/ates into a temp dir).
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function globalSetup() {
  if (process.env.ATES_BINARY) return;
  const dir = mkdtempSync(join(tmpdir(), 'ates-e2e-bin-'));
  const bin = join(dir, 'ates');
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const t0 = Date.now();
  execFileSync('go', ['build', '-o', bin, './cmd/ates'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, CGO_ENABLED: '0', PATH: `${process.env.PATH}:/usr/local/go/bin` },
  });
  console.log(`built ${bin} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.env.ATES_BINARY = bin;
}
