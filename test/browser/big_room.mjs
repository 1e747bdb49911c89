// A room of 100,000 messages in the chat widget, in real headless Chromium
// driven with Playwright. Started by big_room.py (HUT_BROWSER: the space's
// URL, the room, its message count and a token of a member). Prints one line
// per check, then "N passed, N failed".
import { cfg, check, newPage, run, until } from "./pw.mjs";

const WINDOW = 150;  // the widget's DOM window (plugins/chat/web/timeline.js)
const PAGES_BACK = 6;  // history pages of 50 scrolled back through

const domSeqs = (page) => page.evaluate(() =>
  [...document.querySelector("hut-chat").shadowRoot.querySelectorAll("ol.rows:not(.outbox) > li[data-seq]")]
    .map((li) => Number(li.dataset.seq)));
const inOrder = (seqs) => seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1);
const label = (n) => `big ${String(n).padStart(6, "0")}`;

await run(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context, "reader");
  await page.goto(`${cfg.space}/#token=${cfg.token}`);
  await page.waitForFunction(() => document.getElementById("status")?.dataset.state === "connected");
  const chat = page.locator("hut-chat");
  await chat.locator(".chat").waitFor();
  const opened = Date.now();
  await chat.locator(`.room-item[data-room="${cfg.room}"]`).click();
  await until(async () => (await chat.locator("#room-title").textContent()) === `#${cfg.room}`);
  const newest = await until(() => chat.locator("ol.rows li.msg", { hasText: label(cfg.count) }).count());
  check(`the room opens on its newest message (${cfg.count.toLocaleString("en")} messages)`, newest,
        `after ${Date.now() - opened} ms`);
  console.log(`     opened in ${Date.now() - opened} ms`);

  // Scroll back with the wheel, as a person does, several history pages.
  const scroller = chat.locator(".scroller");
  const box = await scroller.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const target = cfg.count - PAGES_BACK * 50;
  let maxRows = 0;
  let ordered = true;
  let snapshots = 0;
  let lowest = cfg.count;
  const started = Date.now();
  for (let i = 0; i < 2000 && Date.now() - started < 60000; i++) {
    const seqs = await domSeqs(page);
    snapshots++;
    maxRows = Math.max(maxRows, seqs.length);
    if (!inOrder(seqs)) ordered = false;
    if (seqs.length) lowest = Math.min(lowest, seqs[0]);
    if (lowest <= target) break;
    await page.mouse.wheel(0, -1500);
    await page.waitForTimeout(25);
  }
  console.log(`     scrolled back to seq ${lowest} in ${Date.now() - started} ms (${snapshots} looks)`);
  check(`scrolling up loads ${PAGES_BACK} older pages`, lowest <= target, `reached ${lowest}`);
  check(`the DOM never held more than ${WINDOW} messages`, maxRows <= WINDOW, `max ${maxRows}`);
  check("rows were always in order without duplicates or gaps", ordered);
  const back = await domSeqs(page);
  check("the newest messages left the DOM while reading old ones", back.length && back[back.length - 1] < cfg.count,
        JSON.stringify(back.slice(-3)));
  check("the text of a row matches its seq", await chat.locator(`ol.rows li[data-seq="${back[0]}"]`)
    .textContent().then((t) => t.includes(label(back[0]))));

  // Back to the newest: the jump button, as a person would use it.
  const jump = chat.locator("button.jump");
  check("a button offers to jump to the newest messages", await until(() => jump.isVisible(), 10000));
  await jump.click();
  const end = await until(async () => {
    const seqs = await domSeqs(page);
    const atBottom = await scroller.evaluate((s) => s.scrollHeight - s.scrollTop - s.clientHeight < 2);
    return seqs[seqs.length - 1] === cfg.count && atBottom ? seqs : null;
  });
  check("the jump shows the newest message at the bottom", end, JSON.stringify((await domSeqs(page)).slice(-3)));
  const last = await domSeqs(page);
  check("after the jump: a bounded window, in order, no duplicates",
        last.length > 0 && last.length <= WINDOW && inOrder(last), `${last.length} rows`);
  await context.close();
});
