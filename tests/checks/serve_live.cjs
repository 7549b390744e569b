// Watches `vae serve`'s sweeps view in one headless Chromium page (never reloaded)
// while a sweep runs, sampling every 2 s the counts the page shows beside the
// database's own (sqlite3, read-only). Called by tests/checks/serve_live.sh.
//   node serve_live.cjs PLAYWRIGHT_DIR URL DB SWEEP OUT_JSON SHOT_PREFIX
'use strict';
const path = require('path');
const { execFileSync } = require('child_process');
const fs = require('fs');
const [pwDir, url, db, sweep, outJson, shots] = process.argv.slice(2);
const { chromium } = require(path.join(pwDir, 'node_modules', 'playwright-core'));

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 500 } });
  let loads = 0;
  page.on('load', () => loads++);
  await page.goto(url + '#/sweeps');
  const t0 = Date.now();
  const samples = [];
  let shotLive = false;
  for (;;) {
    await page.waitForTimeout(2000);
    const shown = await page.evaluate((name) => {
      const tr = document.querySelector(`tr[data-sweep="${name}"]`);
      if (!tr) return null;
      const n = (c) => Number(tr.querySelector('td.' + c).textContent);
      return { total: n('total'), done: n('done'), running: n('running'), failed: n('failed'), eta: tr.querySelector('td.eta').textContent };
    }, sweep);
    const [dbDone, dbRunning] = execFileSync('sqlite3', ['-readonly', db,
      "SELECT count(*) FILTER (WHERE r.status = 'done'), count(*) FILTER (WHERE r.status = 'running') " +
      `FROM sweep_runs sr JOIN sweeps s USING (sweep_id) JOIN runs r USING (run_id) WHERE s.name = '${sweep}'`])
      .toString().trim().split('|').map(Number);
    const s = { t: (Date.now() - t0) / 1000, shown, db_done: dbDone, db_running: dbRunning, page_loads: loads };
    samples.push(s);
    console.log(JSON.stringify(s));
    if (!shotLive && shown && shown.running > 0 && shown.done > 0) {
      await page.screenshot({ path: shots + '_running.png' });
      shotLive = true;
    }
    if (shown && shown.done + shown.failed === shown.total && dbDone === shown.done) break;
    if (Date.now() - t0 > 40 * 60 * 1000) break;
  }
  await page.screenshot({ path: shots + '_finished.png' });
  fs.writeFileSync(outJson, JSON.stringify({ samples, page_loads: loads }, null, 1));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
