// Builds the console into ../dist (committed; embedded by console/src/lib.rs):
// app.js and app.css bundled and minified by esbuild, index.html naming each asset with its
// content hash. Deterministic: the same lock file gives the same bytes (tests/run checks).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, '..', 'dist');
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: join(here, 'src', 'main.js') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  outdir: out,
  legalComments: 'eof',
  logLevel: 'warning',
});
await build({
  entryPoints: { app: join(here, 'src', 'app.css') },
  bundle: true,
  minify: true,
  outdir: out,
  legalComments: 'eof',
  logLevel: 'warning',
});
copyFileSync(join(here, 'src', 'favicon.svg'), join(out, 'favicon.svg'));

const hash = (f) => createHash('sha256').update(readFileSync(join(out, f))).digest('hex').slice(0, 12);
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('@JS@', hash('app.js'))
  .replace('@CSS@', hash('app.css'))
  .replace('@FAVICON@', hash('favicon.svg'));
writeFileSync(join(out, 'index.html'), html);
