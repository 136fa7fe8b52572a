// The page in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven through
// playwright-core. Usage: node web/tests/browser.mjs URL SCREENSHOT_DIR DROP_FILE
// URL is a running `clamp3 serve` over a library holding sheet music, MIDI and audio; DROP_FILE
// is one of its files, dropped onto the page (it must come back first). Prints one line per
// check, saves a screenshot per step, exits 1 on the first failure.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

const [url, shots, dropFile] = process.argv.slice(2);
if (!url || !shots || !dropFile) {
  console.error("usage: node browser.mjs URL SCREENSHOT_DIR DROP_FILE");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "clamp3-chromium-"));
const TIMEOUT = 30_000;

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1100, height: 900 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(TIMEOUT);
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
// The page must work offline: any request that leaves the server fails the test.
const origin = new URL(url).origin;
await context.route("**/*", (route) => {
  if (route.request().url().startsWith(origin)) return route.continue();
  problems.push(`request outside the server: ${route.request().url()}`);
  return route.abort();
});

let step = 0;
async function check(name, body) {
  step += 1;
  try {
    const detail = await body();
    if (problems.length) throw new Error(problems.join("; "));
    const shot = join(shots, `${String(step).padStart(2, "0")}-${name}.png`);
    await page.screenshot({ path: shot, fullPage: false });
    console.log(`ok ${step} ${name}${detail ? ": " + detail : ""} (${shot})`);
  } catch (error) {
    const shot = join(shots, `${String(step).padStart(2, "0")}-${name}-FAILED.png`);
    await page.screenshot({ path: shot }).catch(() => {});
    console.log(`FAILED ${step} ${name}: ${error.message} (${shot})`);
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    process.exit(1);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function scores() {
  return page.$$eval("#results li.result .score .value", (els) => els.map((e) => Number(e.textContent)));
}

await check("page-loads", async () => {
  await page.goto(url);
  await page.waitForFunction(() => /items/.test(document.querySelector("#stats").textContent));
  return await page.textContent("#stats");
});

await check("text-search", async () => {
  await page.keyboard.press("/");
  assert(await page.evaluate(() => document.activeElement.id === "query"), "/ does not focus the search box");
  await page.fill("#query", "a chorale for four voices");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#results li.result");
  await page.waitForFunction(() => /results in/.test(document.querySelector("#status").textContent));
  const s = await scores();
  assert(s.length >= 3, `only ${s.length} results`);
  assert(s.every((x, i) => i === 0 || s[i - 1] >= x), `not ranked: ${s}`);
  return `${s.length} results, scores ${s.slice(0, 3).join(", ")}…`;
});

await check("keyboard", async () => {
  await page.focus("#query");
  await page.keyboard.press("ArrowDown");
  const first = await page.evaluate(() => document.activeElement.matches("#results li.result:first-child"));
  assert(first, "ArrowDown from the search box does not reach the first result");
  await page.keyboard.press("ArrowDown");
  const second = await page.evaluate(() => document.activeElement.matches("#results li.result:nth-child(2)"));
  assert(second, "ArrowDown does not move to the next result");
});

const sheet = "#results li.result[data-modality=sheet]";
await check("score-rendered", async () => {
  await page.click(`${sheet} >> nth=0 >> button.show`);
  await page.waitForSelector(`${sheet} >> nth=0 >> .notation svg`);
  const notes = await page.$$eval(`${sheet} .notation svg .abcjs-note`, (els) => els.length);
  assert(notes > 0, "the notation has no notes");
  await page.locator(sheet).first().scrollIntoViewIfNeeded();
  return `${notes} notes drawn`;
});

async function playAndStop(selector) {
  const button = page.locator(`${selector} button.play`).first();
  await button.click();
  await page.waitForFunction((sel) =>
    document.querySelector(`${sel} button.play[data-state=playing]`), selector);
  // The audio clock runs while it plays.
  const t0 = await page.evaluate(() => performance.now());
  await page.waitForTimeout(500);
  const state = await button.getAttribute("data-state");
  assert(state === "playing", `the player is ${state} after 0.5 s`);
  return t0;
}

await check("score-playing", async () => {
  await playAndStop(sheet);
  const lit = await page.$$eval(`${sheet} .notation .playing-note`, (els) => els.length);
  assert(lit > 0, "no note of the score is highlighted while it plays");
  return `▶ on a score: playing, ${lit} note(s) highlighted`;
});

await check("midi-playing", async () => {
  await page.keyboard.press("Escape");
  await page.check("#filters input[value=midi]");
  const midi = "#results li.result[data-modality=midi]";
  await page.waitForSelector(midi);
  await page.locator(midi).first().scrollIntoViewIfNeeded();
  await playAndStop(midi);
  await page.keyboard.press("Escape");
  const state = await page.locator(`${midi} button.play`).first().getAttribute("data-state");
  assert(state === "stopped", `Escape leaves the player ${state}`);
  return "▶ on MIDI: playing, Esc stops";
});

await check("audio-playing", async () => {
  const audio = page.locator("#results li.result[data-modality=audio] audio").first();
  await audio.scrollIntoViewIfNeeded();
  const played = await audio.evaluate(async (el) => {
    await el.play();
    await new Promise((r) => setTimeout(r, 700));
    return el.currentTime;
  });
  assert(played > 0, "the audio element did not advance");
  await audio.evaluate((el) => el.pause());
  return `audio at ${played.toFixed(2)} s`;
});

await check("filter", async () => {
  for (const m of ["sheet", "midi", "text", "image"]) await page.uncheck(`#filters input[value=${m}]`);
  await page.click("#go");
  await page.waitForFunction(() => {
    const items = [...document.querySelectorAll("#results li.result")];
    return items.length > 0 && items.every((li) => li.dataset.modality === "audio");
  });
  for (const m of ["sheet", "midi", "text", "image"]) await page.check(`#filters input[value=${m}]`);
  return "audio only";
});

await check("more-like-this", async () => {
  await page.click("#go");
  await page.waitForFunction(() => /results in/.test(document.querySelector("#status").textContent));
  const id = await page.getAttribute("#results li.result:first-child", "data-id");
  await page.click("#results li.result:first-child button.similar");
  await page.waitForFunction((first) =>
    ![...document.querySelectorAll("#results li.result")].some((li) => li.dataset.id === first)
    && document.querySelectorAll("#results li.result").length > 0, id);
  return `results like ${id}, without it`;
});

await check("drop-file", async () => {
  const bytes = [...readFileSync(dropFile)];
  const name = basename(dropFile);
  const transfer = await page.evaluateHandle(({ bytes, name }) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], name));
    return dt;
  }, { bytes, name });
  await page.evaluate(() => { document.querySelector("#results").replaceChildren(); });
  await page.dispatchEvent("body", "dragenter", { dataTransfer: transfer });
  assert(await page.evaluate(() => document.body.classList.contains("dragging")), "no drop zone shown");
  await page.dispatchEvent("body", "drop", { dataTransfer: transfer });
  await page.waitForFunction(() => document.querySelector("#results li.result")
    && /results in/.test(document.querySelector("#status").textContent));
  const s = await scores();
  assert(Math.abs(s[0] - 1) < 1e-3, `the dropped file is not its own best match: ${s[0]}`);
  return `${name} dropped: best match ${s[0]}`;
});

await check("narrow-screen", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `the page is ${overflow} px wider than a phone screen`);
  return "no horizontal scrolling at 390 px";
});

await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(`browser: ${step} passed, 0 failed`);
