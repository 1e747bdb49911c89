// The way into a space through the relay, in real headless Chromium driven
// with Playwright. Started by login_flow.py, which runs relayd and spaced and
// hands over (HUT_BROWSER) their URLs, a new user name and an account it
// registered through the relay's API. Prints one line per check, then
// "N passed, N failed".
import { cfg, check, newPage, pageState, run, until } from "./pw.mjs";

function formState() {
  const f = document.querySelector('form[action="/login"]');
  return f && document.getElementById("u") && document.getElementById("p") ? { href: location.href } : null;
}
function errorState() {
  const h = document.querySelector("h1");
  return { href: location.href, h1: h ? h.textContent.trim() : null, form: !!document.querySelector("form"),
           err: (document.querySelector(".err") || {}).textContent || null };
}
const landed = (space) => location.origin === space && document.getElementById("status") &&
  document.getElementById("status").textContent.trim() === "connected";

// The relay's login form, filled in the way a user does: focus a field, type.
async function typeInto(page, id, text) {
  await page.locator(`#${id}`).fill("");
  await page.locator(`#${id}`).focus();
  await page.keyboard.insertText(text);
}

await run(async (browser) => {
  // Opens the space's /login in `context`, submits the relay's form; returns the page's state.
  async function throughTheForm(context, user, name, action) {
    const page = await newPage(context, action);
    await page.goto(`${cfg.space}/login`);
    const form = await until(() => page.evaluate(formState));
    check(`${action}: /login leads to the relay's login form`, form && form.href.startsWith(`${cfg.relay}/login?`), form);
    if (!form) return null;
    await typeInto(page, "u", user);
    await typeInto(page, "p", cfg.password);
    if (name !== null) await typeInto(page, "n", name);
    await page.locator(`button[value=${action}]`).click();
    await until(() => page.evaluate(landed, cfg.space));
    return page.evaluate(pageState);
  }

  function checkSignedIn(label, state, name) {
    check(`${label}: back on the space page`, state && state.href.startsWith(`${cfg.space}/`), state);
    check(`${label}: status says connected`, state && state.status === "connected", state);
    check(`${label}: the user's display name is shown`, state && state.user === name && state.whoShown, state);
    check(`${label}: the token left the address bar`,
          state && state.href.startsWith(`${cfg.space}/`) && !state.href.includes("token") && state.hash === "", state);
  }

  // A new account, created through the relay's form.
  const fresh = await browser.newContext();
  let state = await throughTheForm(fresh, cfg.newUser, "Robin Newcomer", "register");
  checkSignedIn("new account", state, "Robin Newcomer");

  // The same browser again: the relay's session cookie skips the form.
  let page = await newPage(fresh, "again");
  await page.goto(`${cfg.space}/login`);
  await until(() => page.evaluate(landed, cfg.space));
  state = await page.evaluate(pageState);
  check("with a relay session, /login goes straight back in",
        state.status === "connected" && state.user === "Robin Newcomer" &&
        state.href.startsWith(`${cfg.space}/`) && !state.href.includes("token"), state);

  // An account made earlier through the relay's API, logged in through the form.
  check("an existing account is registered through the API", cfg.existingStatus === 201, cfg.existingStatus);
  state = await throughTheForm(await browser.newContext(), cfg.existing, null, "login");
  checkSignedIn("existing account", state, "Sam Returning");

  // A wrong password keeps the browser on the relay's form with a message.
  page = await newPage(await browser.newContext(), "wrong");
  await page.goto(`${cfg.space}/login`);
  let shown = null;
  if (await until(() => page.evaluate(formState))) {
    await typeInto(page, "u", cfg.existing);
    await typeInto(page, "p", "not the password");
    await page.locator("button[value=login]").click();
    shown = await until(async () => { const s = await page.evaluate(errorState); return s.err ? s : null; });
  }
  check("a wrong password stays on the relay's form with a message",
        shown && shown.href.startsWith(cfg.relay) && shown.form, shown);

  // `return` outside the space's URL: an error page, and no redirect, even
  // for a browser with a relay session that would otherwise go on.
  const returns = [["another port", `${cfg.relay}/`], ["another host", "http://evil.example/"],
                   ["another scheme", `${cfg.space.replace("http://", "https://")}/`]];
  for (const [label, ret] of returns) {
    const url = `${cfg.relay}/login?space=${encodeURIComponent(cfg.spaceId)}&return=${encodeURIComponent(ret)}`;
    for (const [who, context] of [["signed in", fresh], ["signed out", await browser.newContext()]]) {
      const p = await newPage(context, label);
      await p.goto(url);
      const first = await until(async () => { const s = await p.evaluate(errorState); return s.h1 ? s : null; });
      await p.waitForTimeout(500);  // a redirect, if any, would have happened by now
      const after = await p.evaluate(errorState);
      check(`return to ${label} (${who}): the relay's error page, no redirect`,
            first && first.h1 === "Cannot sign in" && !first.form && after.href === url && !after.href.includes("token"),
            { first, after });
      await p.close();
    }
  }
});
