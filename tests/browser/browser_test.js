#!/usr/bin/env node
// Real-browser test of the sign-in portal: Debian's Chromium, driven by
// playwright-core, against nginx with the module, the legacy app and the Duo
// simulator (started by stack.py, all on loopback).
//
//   node browser_test.js            (make browser does the set-up)
//
// Environment: CHROMIUM (default /usr/bin/chromium), TWOSTEP_MODULE (passed
// on to stack.py), SCREENSHOTS (where the PNGs go: default build/screenshots,
// docs/screenshots to refresh the documented ones, "" for none), HEADFUL=1
// (show the window).
//
// Prints one line per check and "N passed, N failed"; exits 1 on a failure.

'use strict';

const { chromium } = require('playwright-core');
const { spawn, execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const readline = require('readline');

const HERE = __dirname;
const REPO = path.resolve(HERE, '..', '..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS !== undefined
  ? process.env.SCREENSHOTS : path.join(REPO, 'build', 'screenshots');
const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 390, height: 844 };
const PORTAL = '/.twostep/';
// axe-core from npm: evaluated in the page through the DevTools protocol,
// which the pages' Content-Security-Policy does not apply to.
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

// ------------------------------------------------------------ the stack

function startStack() {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [path.join(HERE, 'stack.py')], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: process.env,
    });
    const timer = setTimeout(() => {
      reject(new Error('stack.py did not start within 60 s'));
    }, 60000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`stack.py exited with status ${code} before it ` +
                       'was ready'));
    });
    const lines = readline.createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      try {
        resolve({ child, ...JSON.parse(line) });
      } catch (e) {
        reject(new Error(`stack.py printed ${line}`));
      }
    });
  });
}

function stopStack(stack) {
  // Closing its stdin tells stack.py to stop nginx, the app and the
  // simulator; a signal if it does not.
  return new Promise((resolve) => {
    const { child } = stack;
    if (child.exitCode !== null) {
      resolve(child.exitCode);
      return;
    }
    const kill = setTimeout(() => child.kill('SIGTERM'), 20000);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve(code);
    });
    child.stdin.end();
  });
}

// A JSON request to the simulator's control API.
function simRequest(stack, method, urlPath, body) {
  return jsonRequest(method, stack.sim + urlPath, body);
}

// A JSON request to a stand-in's or the simulator's control API.
function jsonRequest(method, url, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : JSON.stringify(body);
    const req = http.request(url, {
      method,
      headers: data ? { 'Content-Type': 'application/json',
                        'Content-Length': Buffer.byteLength(data) } : {},
      timeout: 15000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
        // Answers come as Duo's {"stat": "OK", "response": ...}.
        if (json && json.stat === 'OK' && 'response' in json) {
          json = json.response;
        }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    if (data) req.write(data);
    req.end();
  });
}

// The code an authenticator app shows now, but never one of a time step
// already used (the module refuses a code twice): then the next step's,
// which its drift window accepts.
let lastStep = 0;
function totp(secret) {
  let step = Math.floor(Date.now() / 30000);
  if (step <= lastStep) step = lastStep + 1;
  lastStep = step;
  return codeAt(secret, step);
}

function codeAt(secret, step) {
  return execFileSync('oathtool', ['--totp', '-b', '-N', `@${step * 30}`,
                                   secret]).toString().trim();
}

// A code no nearby time step has.
function wrongCode(secret) {
  const now = Math.floor(Date.now() / 30000);
  const near = new Set([-2, -1, 0, 1, 2].map((d) => codeAt(secret, now + d)));
  for (let n = 123456; ; n = (n + 111111) % 1000000) {
    const code = String(n).padStart(6, '0');
    if (!near.has(code)) return code;
  }
}

// ------------------------------------------------------------ checking

let passed = 0;
let failed = 0;

function check(ok, what, detail) {
  if (ok) {
    passed++;
    console.log(`  ok    ${what}`);
  } else {
    failed++;
    console.log(`  FAIL  ${what}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}

// Thrown by must(): ends the scenario (later steps depend on this one).
class Stop extends Error {}

function must(ok, what, detail) {
  if (!check(ok, what, detail)) throw new Stop(what);
}

// Everything the page says in its console, and the errors it throws.
function watch(page) {
  const seen = { console: [], errors: [], csp: [], statusPolls: 0 };
  page.on('console', (msg) => {
    const text = msg.text();
    // Chromium's own request for /favicon.ico (no page asks for it) is
    // refused by the portal's CSP now and then: not the page's doing.
    if (/favicon\.ico/.test(text)) return;
    seen.console.push(`${msg.type()}: ${text}`);
    if (/Content Security Policy|Content-Security-Policy|CSP violation/i
        .test(text)) {
      seen.csp.push(text);
    }
  });
  page.on('pageerror', (err) => seen.errors.push(String(err)));
  page.on('request', (req) => {
    if (new URL(req.url()).pathname === `${PORTAL}status`) seen.statusPolls++;
  });
  return seen;
}

function quietConsole(seen) {
  // Chromium logs a document answered with 4xx as "Failed to load
  // resource"; that is the page working (a wrong code is a 403).
  return seen.console.filter((l) => /^(error|warning)/.test(l)
    && !/Failed to load resource: the server responded with a status of/
      .test(l));
}

function checkClean(seen, where) {
  check(seen.csp.length === 0, `${where}: no CSP violations`,
        seen.csp.join(' | '));
  check(seen.errors.length === 0, `${where}: no page errors`,
        seen.errors.join(' | '));
  const rest = quietConsole(seen);
  check(rest.length === 0, `${where}: no other console errors or warnings`,
        rest.join(' | '));
}

async function shoot(page, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  await page.setViewportSize(NARROW);
  await page.screenshot({ path: path.join(SHOTS, `${name}-narrow.png`) });
  await page.setViewportSize(WIDE);
}

// Clicks something that loads a new page (a link, or a form's button, with
// any redirects after it) and waits until that page has loaded.
async function follow(page, selector) {
  await Promise.all([
    page.waitForEvent('framenavigated',
                      { predicate: (f) => f === page.mainFrame() }),
    page.click(selector),
  ]);
  await page.waitForLoadState('load');
}

// What a page says, for failure messages.
async function describe(page) {
  const text = ((await page.textContent('main').catch(() => null)) ||
                (await page.textContent('body').catch(() => '')) || '')
    .replace(/\s+/g, ' ').trim();
  return `${page.url()}: "${text.slice(0, 240)}"`;
}

async function heading(page) {
  return ((await page.textContent('h1')) || '').trim();
}

function pathOf(url) {
  return new URL(url).pathname;
}

// Protected URL -> sign-in page -> user and password -> second step.
async function signIn(page, stack, target, shotName) {
  const res = await page.goto(stack.base + target);
  must(pathOf(page.url()) === `${PORTAL}signin`,
       'a protected URL redirects to the sign-in page', page.url());
  const csp = res.headers()['content-security-policy'] || '';
  check(/script-src 'sha256-/.test(csp) && /style-src 'sha256-/.test(csp),
        'the sign-in page has a CSP with hashed style and script', csp);
  must(await heading(page) === 'Sign in', 'the sign-in page says "Sign in"',
       await heading(page));
  if (shotName) await shoot(page, shotName);

  await page.fill('#username', stack.user);
  await page.fill('#password', stack.password);
  const [post] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'POST'),
    follow(page, 'button[type=submit]'),
  ]);
  // Chromium sends "Origin: null" from a page whose referrer policy is
  // no-referrer: say which Origin went with the form if it was refused.
  const origin = (await post.allHeaders()).origin;
  must(pathOf(page.url()) === `${PORTAL}verify`,
       'the password leads to the second step',
       `${await describe(page)} (the form was posted with Origin: ${origin})`);
}

// ------------------------------------------------------------ scenarios

async function scenarioPush(ctx, stack) {
  console.log('push: approve on the phone, the page moves on by itself');
  const page = await ctx.newPage();
  const seen = watch(page);
  const target = '/reports/q3?sort=desc&page=2';

  await signIn(page, stack, target, 'signin');
  must(await heading(page) === 'Enter code',
       'the second step starts with "Enter code" (authenticator code)',
       await heading(page));
  must(await page.isVisible('text=Sign in another way'),
       'the code page offers "Sign in another way"');
  await shoot(page, 'code');

  await follow(page, 'text=Approve a request on my authenticator app');
  must(await page.isVisible('button:has-text("Send request")'),
       'the push page has a "Send request" button',
       await heading(page));
  const pending0 = await simRequest(stack, 'GET',
                                    '/sim/transactions?user=alice');
  check(pending0.status === 200 && pending0.json &&
        pending0.json.transactions.length === 0,
        'opening the push page sends nothing to the phone',
        pending0.text.slice(0, 200));
  await shoot(page, 'push-send');

  await follow(page, 'button:has-text("Send request")');
  must(pathOf(page.url()) === `${PORTAL}wait`,
       '"Send request" leads to the waiting page', await describe(page));
  const pending1 = await simRequest(stack, 'GET',
                                    '/sim/transactions?user=alice');
  check(pending1.status === 200 && pending1.json &&
        pending1.json.transactions.length === 1 &&
        pending1.json.transactions[0].factor === 'push',
        '"Send request" sends one push to the phone',
        pending1.text.slice(0, 300));
  must(/Approve the sign-in request/.test(await heading(page)),
       'the waiting page asks to approve on the phone', await heading(page));
  await shoot(page, 'wait');

  // Still waiting a moment later: nothing moves before the phone answers.
  await page.waitForTimeout(2500);
  check(pathOf(page.url()) === `${PORTAL}wait`,
        'the waiting page stays while the push is pending', page.url());
  check(seen.statusPolls > 0,
        'the waiting page\'s script polls the status URL',
        `${seen.statusPolls} polls`);

  // "I've approved it" before approving: it says so, and keeps waiting.
  await follow(page, 'text=I\'ve approved it');
  must(pathOf(page.url()) === `${PORTAL}wait`,
       '"I\'ve approved it" too early stays on the waiting page',
       await describe(page));
  check(await page.isVisible('text=No approval has arrived yet.'),
        '"I\'ve approved it" too early says no approval has arrived yet',
        await describe(page));
  await shoot(page, 'wait-not-yet');

  const navigations = [];
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations.push(f.url());
  });
  const approved = await simRequest(stack, 'POST', '/sim/respond',
                                    { user: 'alice', action: 'approve' });
  must(approved.status === 200, 'the simulator approves the push',
       `${approved.status} ${approved.text.slice(0, 200)}`);

  // No navigation by the test from here: the page must move on itself.
  const t0 = Date.now();
  let moved = true;
  try {
    await page.waitForURL(stack.base + target, { timeout: 20000 });
  } catch (e) {
    moved = false;
  }
  must(moved, 'after approval the page moves on by itself to the original ' +
       'URL', `${page.url()} (navigations: ${navigations.join(' ')})`);
  console.log(`        (moved on ${Date.now() - t0} ms after the ` +
              `approval, via ${navigations.map(pathOf).join(' -> ')})`);
  const body = await page.textContent('body');
  check(await heading(page) === 'Legacy App', 'the legacy app is shown',
        await heading(page));
  check(/X-Remote-User\s*alice/.test(body),
        'the app is told the user is alice', body.slice(0, 300));
  check(/X-Twostep-Method\s*push/.test(body),
        'the app is told the method was push', body.slice(0, 300));
  await shoot(page, 'app');

  checkClean(seen, 'push');
  await page.close();
}

async function scenarioTotp(ctx, stack) {
  console.log('authenticator code: a wrong one, then the right one');
  const page = await ctx.newPage();
  const seen = watch(page);
  const target = '/docs/handbook.html';

  await signIn(page, stack, target);
  must(await heading(page) === 'Enter code', 'the code page is shown',
       await heading(page));

  await page.fill('#code', wrongCode(stack.secret));
  await follow(page, 'button:has-text("Verify")');
  const alert = (await page.textContent('#error').catch(() => '')) || '';
  must(/didn't work/.test(alert), 'a wrong code shows an error',
       await describe(page));
  check(await page.evaluate(() => document.activeElement &&
                            document.activeElement.id) === 'code',
        'after a wrong code the focus is in the code box');
  await shoot(page, 'error-wrong-code');

  await page.fill('#code', totp(stack.secret));
  await follow(page, 'button:has-text("Verify")');
  const body = await page.textContent('body');
  check(page.url() === stack.base + target &&
        await heading(page) === 'Legacy App' &&
        /X-Remote-User\s*alice/.test(body) &&
        /X-Twostep-Method\s*totp/.test(body),
        'the right code returns to the original URL as alice (totp)',
        await describe(page));
  checkClean(seen, 'totp');
  await page.close();
}

// After the password: "Text my phone", "Send code", the texted code.
async function smsSecondStep(page, stack, target, shots) {
  await follow(page, 'text=Text my phone');
  must(await page.isVisible('button:has-text("Send code")'),
       'the text page has a "Send code" button', await describe(page));
  await follow(page, 'button:has-text("Send code")');
  must(await heading(page) === 'Enter code' &&
       /texted/.test(await page.textContent('main')),
       'after "Send code" the page asks for the texted code',
       await describe(page));
  if (shots) await shoot(page, 'sms-code');

  const sms = await simRequest(stack, 'GET', '/sim/last_sms?user=alice');
  must(sms.status === 200 && sms.json && sms.json.passcode,
       'the simulator has the text', sms.text.slice(0, 200));
  await page.fill('#code', sms.json.passcode);
  await follow(page, 'button:has-text("Verify")');
  const body = await page.textContent('body');
  must(page.url() === stack.base + target &&
       /X-Remote-User\s*alice/.test(body) &&
       /X-Twostep-Method\s*sms/.test(body),
       'the texted code returns to the original URL as alice (sms)',
       await describe(page));
}

async function scenarioSms(ctx, stack) {
  console.log('text message: send a code, type it');
  const page = await ctx.newPage();
  const seen = watch(page);

  await signIn(page, stack, '/inbox/');
  await smsSecondStep(page, stack, '/inbox/', true);
  checkClean(seen, 'sms');
  await page.close();
}

async function scenarioCall(ctx, stack) {
  console.log('phone call: answered and approved on the phone');
  const page = await ctx.newPage();
  const seen = watch(page);
  const target = '/calls';

  await signIn(page, stack, target);
  await follow(page, 'text=Call my phone');
  await follow(page, 'button:has-text("Call me")');
  must(/Answer the call/.test(await heading(page)),
       'the waiting page asks to answer the call', await describe(page));
  await shoot(page, 'wait-call');
  await page.waitForTimeout(1000);
  const r = await simRequest(stack, 'POST', '/sim/respond',
                             { user: 'alice', action: 'approve' });
  must(r.status === 200, 'the simulator answers the call and presses 1',
       `${r.status} ${r.text.slice(0, 200)}`);
  let moved = true;
  try {
    await page.waitForURL(stack.base + target, { timeout: 20000 });
  } catch (e) {
    moved = false;
  }
  check(moved && /X-Twostep-Method\s*call/
        .test(await page.textContent('body')),
        'after the call the page moves on by itself as alice (call)',
        page.url());
  checkClean(seen, 'call');
  await page.close();
}

async function scenarioSignOut(ctx, stack) {
  console.log('sign out');
  const page = await ctx.newPage();
  const seen = watch(page);

  // Not a text: push, call and text have had their three requests to the
  // phone in ten minutes, so the page no longer offers them.
  await signIn(page, stack, '/reports/q4');
  check(!(await page.isVisible('text=Call my phone')) &&
        !(await page.isVisible('text=Text my phone')),
        'after three requests to the phone, call and text are not offered',
        await describe(page));
  // A push posted all the same (an old tab): how long to wait, and the code.
  await Promise.all([
    page.waitForEvent('framenavigated',
                      { predicate: (f) => f === page.mainFrame() }),
    page.evaluate(() => {
      const f = document.querySelector('form[method=post]');
      f.querySelector('input[name=method]').value = 'push';
      const a = document.createElement('input');
      a.type = 'hidden'; a.name = 'action'; a.value = 'send';
      f.appendChild(a);
      f.querySelector('#code').removeAttribute('required');
      f.submit();
    }),
  ]);
  check(/Try again in (9|10) minutes/.test(await page.textContent('body')),
        'a push over the limit says how many minutes to wait',
        await describe(page));
  await shoot(page, 'phone-limit');
  await page.fill('#code', totp(stack.secret));
  await follow(page, 'button:has-text("Verify")');
  must(page.url() === `${stack.base}/reports/q4`,
       'signed in with an authenticator code', await describe(page));
  const session = await ctx.cookies(stack.base);

  await page.goto(`${stack.base}${PORTAL}logout`);
  must(await heading(page) === 'Sign out', 'the sign-out page is shown',
       await describe(page));
  await shoot(page, 'signout');
  await follow(page, 'button:has-text("Sign out")');
  must(/signed out/.test(await heading(page)),
       'signing out says so', await describe(page));
  await shoot(page, 'signed-out');

  await page.goto(`${stack.base}/reports/q4`);
  check(pathOf(page.url()) === `${PORTAL}signin`,
        'after signing out the app asks for sign-in again', page.url());

  // A copy of the cookie kept from before is no good either.
  await ctx.clearCookies();
  await ctx.addCookies(session);
  await page.goto(`${stack.base}/reports/q4`);
  check(pathOf(page.url()) === `${PORTAL}signin`,
        'the session cookie from before the sign-out no longer works',
        page.url());
  checkClean(seen, 'sign-out');
  await page.close();
}

// Too many wrong codes: the lock page says how long and offers "Sign out".
// Last: alice stays locked for the lock's five minutes.
async function scenarioLocked(ctx, stack) {
  console.log('locked: too many wrong codes, then sign out');
  const page = await ctx.newPage();
  const seen = watch(page);

  await signIn(page, stack, '/reports/q5');
  for (let i = 0; i < 5 && await page.isVisible('#code'); i++) {
    await page.fill('#code', '00000' + i);
    await follow(page, 'button:has-text("Verify")');
  }
  must(await heading(page) === 'Too many attempts',
       'five wrong codes lock the sign-in', await describe(page));
  check(/Try again in 5 minutes\./.test(await page.textContent('body')),
        'the lock page says how long', await describe(page));
  await shoot(page, 'locked');
  await follow(page, 'button:has-text("Sign out")');
  must(/signed out/.test(await heading(page)),
       '"Sign out" on the lock page signs out', await describe(page));
  await page.goto(`${stack.base}${PORTAL}verify`);
  check(pathOf(page.url()) === `${PORTAL}signin`,
        'after "Sign out" the pending sign-in is gone', page.url());
  checkClean(seen, 'locked');
  await page.close();
}

// axe-core's WCAG 2.1 A and AA rules on the page as it is now.
async function axeCheck(page, where) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => `${v.id} (${v.impact}): ` +
      v.nodes.map((n) => n.target.join(' ')).join(', '));
  });
  check(violations.length === 0,
        `${where}: axe-core finds no WCAG 2.1 A/AA violations`,
        violations.join(' | '));
}

// What a screen reader is told about the focused element: Chromium's own
// accessibility tree (role, name, description, invalid). Right after a
// navigation the tree may not show the autofocus yet (seen on a busy
// machine): asked again for up to two seconds before answering null.
async function focusedForScreenReader(page) {
  for (let tries = 0; tries < 20; tries++) {
    const f = await focusedNow(page);
    if (f) return f;
    await page.waitForTimeout(100);
  }
  return null;
}

async function focusedNow(page) {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { nodes } = await cdp.send('Accessibility.getFullAXTree');
    // The document is "focused" too: the element is the last one.
    const focused = nodes.filter((n) => (n.properties || []).some(
      (p) => p.name === 'focused' && p.value && p.value.value)
      && !(n.role && n.role.value === 'RootWebArea')).pop();
    if (!focused) return null;
    const prop = (name) => {
      const p = (focused.properties || []).find((q) => q.name === name);
      return p && p.value ? p.value.value : undefined;
    };
    return {
      role: focused.role && focused.role.value,
      name: focused.name && focused.name.value,
      description: (focused.description && focused.description.value) || '',
      invalid: prop('invalid'),
    };
  } finally {
    await cdp.detach();
  }
}

async function scenarioKeyboard(ctx, stack) {
  console.log('keyboard only, as a screen reader hears it, and axe-core');
  const page = await ctx.newPage();
  const seen = watch(page);
  const target = '/keyboard/';

  await page.goto(stack.base + target);
  must(await heading(page) === 'Sign in', 'the sign-in page is shown',
       await describe(page));
  await axeCheck(page, 'sign-in page');
  let f = await focusedForScreenReader(page);
  check(f && f.role === 'textbox' && f.name === 'User name',
        'the focus starts in "User name"', JSON.stringify(f));

  // A wrong password, typed and sent with the keyboard alone.
  await page.keyboard.type(stack.user);
  await page.keyboard.press('Tab');
  await page.keyboard.type('not the password');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  f = await focusedForScreenReader(page);
  check(f && f.name === 'Password' && f.invalid && f.invalid !== 'false' &&
        /Wrong user name or password/.test(f.description),
        'after a wrong password the focus is in "Password", marked invalid ' +
        'and described by the error', JSON.stringify(f));
  check(await page.inputValue('#username') === stack.user,
        'the user name is kept');
  await axeCheck(page, 'sign-in page with an error');

  await page.keyboard.type(stack.password);
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  must(pathOf(page.url()) === `${PORTAL}verify`,
       'the password leads to the second step', await describe(page));
  if (await heading(page) !== 'Enter code') {
    await follow(page, 'text=Use a verification code from my authenticator app');
  }
  must(await heading(page) === 'Enter code', 'the code page is shown',
       await describe(page));
  await axeCheck(page, 'code page');
  f = await focusedForScreenReader(page);
  check(f && f.role === 'textbox' && f.name === 'Code' &&
        /authenticator app/.test(f.description),
        'the focus is in "Code", described by its help text',
        JSON.stringify(f));

  // A code with a letter in it: a message that says so, on the field.
  await page.keyboard.type('12345O');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  f = await focusedForScreenReader(page);
  check(f && f.name === 'Code' && f.invalid && f.invalid !== 'false' &&
        /A code has only digits/.test(f.description),
        'a code with a letter is refused as such, the message read with ' +
        'the field', JSON.stringify(f));
  await axeCheck(page, 'code page with an error');
  await shoot(page, 'error-letters');

  // Tab to "Don't ask again" and tick it with the space bar, then Enter.
  await page.keyboard.type(totp(stack.secret));
  await page.keyboard.press('Tab');
  f = await focusedForScreenReader(page);
  check(f && f.role === 'checkbox' &&
        f.name === "Don't ask again for 30 days on this device",
        'Tab reaches the "Don\'t ask again" checkbox, named by its label',
        JSON.stringify(f));
  await page.keyboard.press('Space');
  await page.focus('#code');
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  const body = await page.textContent('body');
  check(page.url() === stack.base + target &&
        /X-Twostep-Method\s*totp/.test(body),
        'signed in with the keyboard alone', await describe(page));
  const device = (await ctx.cookies(stack.base))
    .find((c) => c.name === 'twostep_device');
  check(device && device.httpOnly && device.expires > Date.now() / 1000,
        'the ticked box left a lasting device cookie', JSON.stringify(device));
  checkClean(seen, 'keyboard');
  await page.close();
}

// ------------------------------------------------------------ security keys

// WebAuthn needs a host name (an IP address cannot be an RP ID) in a secure
// context: http://localhost is one.
function onLocalhost(stack) {
  return { ...stack, base: stack.base.replace('127.0.0.1', 'localhost') };
}

// A CTAP2 platform authenticator inside Chromium, through the Chrome
// DevTools Protocol's WebAuthn domain: resident keys, user verification,
// presence simulated. One per page at a time.
async function addAuthenticator(ctx, page) {
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send(
    'WebAuthn.addVirtualAuthenticator', { options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true,
      automaticPresenceSimulation: true,
    } });
  return { cdp, id: authenticatorId };
}

async function removeAuthenticator(auth) {
  await auth.cdp.send('WebAuthn.removeVirtualAuthenticator',
                      { authenticatorId: auth.id });
  await auth.cdp.detach();
}

async function credentials(auth) {
  return (await auth.cdp.send('WebAuthn.getCredentials',
                              { authenticatorId: auth.id })).credentials;
}

function storedKeys(stack) {
  const doc = JSON.parse(fs.readFileSync(stack.store, 'utf8'));
  return doc.users[stack.user].webauthn || [];
}

// Password, then the authenticator code: a fresh second step.
async function signInWithCode(page, stack, target) {
  await signIn(page, stack, target);
  await page.fill('#code', totp(stack.secret));
  await follow(page, 'button:has-text("Verify")');
  must(page.url() === stack.base + target,
       'signed in with an authenticator code', await describe(page));
}

// Security info: "Add a security key or passkey" with a typed name.
async function addKey(page, stack, name, shots) {
  await page.goto(`${stack.base}${PORTAL}security-info`);
  must(await page.isVisible('text=Security keys and passkeys'),
       'security info lists "Security keys and passkeys"',
       await describe(page));
  if (shots) await shoot(page, 'security-info-keys-none');
  await page.fill('#key-name', name);
  await follow(page, 'button:has-text("Add a security key or passkey")');
  must(/was added/.test((await page.textContent('main')) || ''),
       `the key "${name}" is added`, await describe(page));
  check(await page.isVisible(`text=${name}`),
        `security info lists "${name}"`);
}

// Password, then "Use a security key or passkey" and "Continue".
async function keySecondStep(page, stack, target, shots) {
  await signIn(page, stack, target);
  if (await heading(page) !== 'Use your security key or passkey') {
    await follow(page, 'text=Use a security key or passkey');
  }
  must(await heading(page) === 'Use your security key or passkey',
       'the second step offers the security key', await describe(page));
  if (shots) await shoot(page, 'key');
  await follow(page, 'button:has-text("Continue")');
}

async function scenarioKeys(ctx, stack) {
  console.log('security key: register in security info, then the second ' +
              'step, a copy with an old counter, a key not registered');
  stack = onLocalhost(stack);
  const page = await ctx.newPage();
  const seen = watch(page);
  let auth = await addAuthenticator(ctx, page);

  await signInWithCode(page, stack, '/keys/start');
  await addKey(page, stack, 'Work laptop', true);
  const keys = storedKeys(stack);
  must(keys.length === 1, 'the store holds one key', JSON.stringify(keys));
  check(keys[0].name === 'Work laptop' && keys[0].algorithm === -7 &&
        typeof keys[0].public_key === 'string' &&
        JSON.stringify(keys[0].transports) === '["internal"]' &&
        Object.keys(keys[0]).sort().join(',') ===
          'algorithm,created,id,name,public_key,sign_count,transports',
        'the store keeps the public key, algorithm, counter, name, date ' +
        'and transports only', JSON.stringify(keys[0]));
  const made = await credentials(auth);
  check(made.length === 1 && made[0].isResidentCredential,
        'the authenticator made a discoverable credential (residentKey ' +
        'preferred)', JSON.stringify(made.map((c) => c.isResidentCredential)));
  await shoot(page, 'security-info-keys');

  // The same authenticator again: excludeCredentials makes the browser
  // refuse, and the page says so.
  await page.fill('#key-name', 'Again');
  await page.click('button:has-text("Add a security key or passkey")');
  await page.waitForSelector('#webauthn-cancelled', { state: 'visible',
                                                      timeout: 20000 })
    .catch(() => {});
  check(await page.isVisible('#webauthn-cancelled') &&
        storedKeys(stack).length === 1,
        'the same authenticator cannot be added twice (excludeCredentials)',
        await describe(page));

  // Sign out, then the key as the second step.
  await ctx.clearCookies();
  const target = '/keys/second-step?x=1';
  await keySecondStep(page, stack, target, true);
  let body = await page.textContent('body');
  must(page.url() === stack.base + target &&
       /X-Remote-User\s*alice/.test(body) &&
       /X-Twostep-Method\s*webauthn/.test(body),
       'the security key signs in as the second step ($twostep_method ' +
       'webauthn)', await describe(page));
  const counted = storedKeys(stack)[0].sign_count;
  check(counted > keys[0].sign_count, 'the new sign count is saved',
        `${keys[0].sign_count} -> ${counted}`);

  // A copy of the key whose counter is behind: refused as possibly cloned.
  const original = (await credentials(auth))[0];
  await removeAuthenticator(auth);
  auth = await addAuthenticator(ctx, page);
  await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.id,
    credential: { ...original, signCount: 1 } });
  await ctx.clearCookies();
  await keySecondStep(page, stack, '/keys/cloned');
  check(pathOf(page.url()) === `${PORTAL}verify` &&
        /may have been copied/.test(await page.textContent('#error')
          .catch(() => '')),
        'a copy with an older sign count is refused', await describe(page));
  await shoot(page, 'key-cloned');
  check(storedKeys(stack)[0].sign_count === counted,
        'the refused copy does not move the stored counter');
  const log = fs.readFileSync(path.join(stack.dir, 'nginx', 'error.log'),
                              'utf8');
  check(/possibly a cloned key/.test(log),
        'the error log names the possibly cloned key');

  // Another authenticator with a key of the same id but its own private
  // key: the signature does not verify.
  await removeAuthenticator(auth);
  auth = await addAuthenticator(ctx, page);
  const { privateKey } = crypto.generateKeyPairSync('ec',
                                                    { namedCurve: 'P-256' });
  await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.id,
    credential: { ...original, signCount: 1000000,
                  privateKey: privateKey.export({ type: 'pkcs8',
                                                  format: 'der' })
                    .toString('base64') } });
  await ctx.clearCookies();
  await keySecondStep(page, stack, '/keys/forged');
  check(pathOf(page.url()) === `${PORTAL}verify` &&
        /was not accepted/.test(await page.textContent('#error')
          .catch(() => '')),
        'an authenticator whose key was never registered is refused',
        await describe(page));

  // The real key still works, and its counter goes on.
  await removeAuthenticator(auth);
  auth = await addAuthenticator(ctx, page);
  await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.id,
    credential: { ...original, signCount: counted + 10 } });
  await ctx.clearCookies();
  await keySecondStep(page, stack, '/keys/again');
  body = await page.textContent('body');
  check(pathOf(page.url()) === '/keys/again' &&
        /X-Twostep-Method\s*webauthn/.test(body),
        'the registered key still signs in afterwards', await describe(page));
  await removeAuthenticator(auth);
  checkClean(seen, 'security key');
  await page.close();
}

// Password-less: "Sign in with a passkey" on the sign-in page.
async function passkeySignIn(page, target) {
  await page.goto(target);
  must(pathOf(page.url()) === `${PORTAL}signin`,
       'the protected URL asks for sign-in', page.url());
  must(await page.isVisible('button:has-text("Sign in with a passkey")'),
       'the sign-in page offers "Sign in with a passkey"',
       await describe(page));
  await follow(page, 'button:has-text("Sign in with a passkey")');
}

async function scenarioPasskey(ctx, stack) {
  console.log('passkey: sign in without a password, a key not registered, ' +
              'a removed key, no user verification, no WebAuthn');
  stack = onLocalhost(stack);
  const page = await ctx.newPage();
  const seen = watch(page);
  const auth = await addAuthenticator(ctx, page);

  await signInWithCode(page, stack, '/passkey/setup');
  await addKey(page, stack, 'Phone');
  await shoot(page, 'security-info-passkey');
  await ctx.clearCookies();

  await page.goto(`${stack.base}/passkey/app`);
  await shoot(page, 'signin-passkey');
  await passkeySignIn(page, `${stack.base}/passkey/app`);
  let body = await page.textContent('body');
  check(page.url() === `${stack.base}/passkey/app` &&
        /X-Remote-User\s*alice/.test(body) &&
        /X-Twostep-Method\s*webauthn/.test(body),
        'a passkey alone signs in as alice ($twostep_method webauthn)',
        await describe(page));

  // Without user verification: the page asks for it ("required"); a
  // client that asks for "discouraged" instead gets an assertion without
  // UV, and the module refuses it.
  await ctx.clearCookies();
  await page.goto(`${stack.base}/passkey/no-uv`);
  const options = JSON.parse(await page.getAttribute('form[data-webauthn]',
                                                     'data-webauthn'));
  check(options.userVerification === 'required' &&
        options.allow.length === 0,
        'the passkey sign-in asks for a discoverable credential with user ' +
        'verification', JSON.stringify(options));
  await page.evaluate(() => {
    const form = document.querySelector('form[data-webauthn]');
    const o = JSON.parse(form.getAttribute('data-webauthn'));
    o.userVerification = 'discouraged';
    form.setAttribute('data-webauthn', JSON.stringify(o));
  });
  await follow(page, 'button:has-text("Sign in with a passkey")');
  check(pathOf(page.url()) === `${PORTAL}passkey` &&
        /passkey was not accepted/.test(await page.textContent('#error')
          .catch(() => '')),
        'a passkey without user verification is refused',
        await describe(page));
  await auth.cdp.send('WebAuthn.setUserVerified', { authenticatorId: auth.id,
                                                    isUserVerified: true });

  // A discoverable credential this site never registered.
  const { privateKey } = crypto.generateKeyPairSync('ec',
                                                    { namedCurve: 'P-256' });
  const mine = (await credentials(auth))[0];
  const stranger = crypto.randomBytes(32).toString('base64');
  await auth.cdp.send('WebAuthn.removeCredential', { authenticatorId: auth.id,
    credentialId: mine.credentialId });
  await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.id,
    credential: { credentialId: stranger, isResidentCredential: true,
                  rpId: 'localhost', userHandle: mine.userHandle,
                  privateKey: privateKey.export({ type: 'pkcs8',
                                                  format: 'der' })
                    .toString('base64'), signCount: 1 } });
  await ctx.clearCookies();
  await passkeySignIn(page, `${stack.base}/passkey/stranger`);
  check(pathOf(page.url()) === `${PORTAL}passkey` &&
        /passkey was not accepted/.test(await page.textContent('#error')
          .catch(() => '')),
        'a passkey that was never registered is refused',
        await describe(page));
  await shoot(page, 'signin-passkey-refused');

  // Removed in security info: refused afterwards.
  await auth.cdp.send('WebAuthn.removeCredential', { authenticatorId: auth.id,
    credentialId: stranger });
  await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.id,
    credential: mine });
  await ctx.clearCookies();
  await signInWithCode(page, stack, '/passkey/manage');
  await page.goto(`${stack.base}${PORTAL}security-info`);
  const named = `[id="name-${storedKeys(stack)
    .find((k) => k.name === 'Phone').id}"]`;
  await page.fill(named, 'My phone');
  await follow(page, `form:has(${named}) button:has-text("Rename")`);
  check(/was renamed/.test(await page.textContent('main')) &&
        storedKeys(stack).some((k) => k.name === 'My phone'),
        'a key can be renamed', await describe(page));
  const before = storedKeys(stack).length;
  const phone = storedKeys(stack).find((k) => k.name === 'My phone');
  await follow(page, `form:has(input[name="key"][value="${phone.id}"]):has(` +
                     'input[value="remove-key"]) button');
  check(/was removed/.test(await page.textContent('main')) &&
        storedKeys(stack).length === before - 1 &&
        !storedKeys(stack).some((k) => k.name === 'My phone'),
        'a key can be removed', await describe(page));
  await ctx.clearCookies();
  await passkeySignIn(page, `${stack.base}/passkey/removed`);
  check(pathOf(page.url()) === `${PORTAL}passkey` &&
        /passkey was not accepted/.test(await page.textContent('#error')
          .catch(() => '')),
        'a removed passkey is refused', await describe(page));
  await removeAuthenticator(auth);
  checkClean(seen, 'passkey');

  // A browser without WebAuthn: the button says so, the password works.
  const plain = await ctx.newPage();
  await plain.addInitScript(() => { delete window.PublicKeyCredential; });
  await plain.goto(`${stack.base}/passkey/plain`);
  check(await plain.isVisible('#webauthn-unsupported') &&
        await plain.isDisabled('button:has-text("Sign in with a passkey")') &&
        await plain.isEnabled('button:text-is("Sign in")'),
        'without WebAuthn the passkey button is off and the password form ' +
        'stays', await describe(plain));
  await plain.close();
  await page.close();
}

// ------------------------------------------- without Duo: Twilio, ntfy

// bob (or `user`): password, then the second-step page (the app code
// first).
async function signInBob(page, stack, target, user = stack.user2) {
  await page.goto(stack.base + target);
  must(pathOf(page.url()) === `${PORTAL}signin`,
       'a protected URL redirects to the sign-in page', page.url());
  await page.fill('#username', user);
  await page.fill('#password', stack.password);
  await follow(page, 'button[type=submit]');
  must(pathOf(page.url()) === `${PORTAL}verify`,
       `${user}'s password leads to the second step`, await describe(page));
}

// The newest notification on `topic` at the ntfy stand-in.
async function lastPush(stack, topic) {
  const r = await jsonRequest('GET', `${stack.ntfy}/standin/messages?topic=` +
                              encodeURIComponent(topic));
  must(r.status === 200 && r.json && r.json.messages.length > 0,
       'the push reached the ntfy stand-in', r.text.slice(0, 200));
  return r.json.messages[r.json.messages.length - 1];
}

// The phone: opens the push's Approve link (no session, no script) and
// types `number`.
async function approveOnPhone(ctx, msg, number, shotName, title) {
  const action = (msg.actions || []).find((a) => a.label === 'Approve');
  must(action, 'the push has an Approve button', JSON.stringify(msg));
  const phone = await ctx.newPage();
  const seen = watch(phone);
  await phone.goto(action.url);
  must(await heading(phone) === title, `the approval page asks "${title}"`,
       await describe(phone));
  check(await phone.$('script') === null,
        'the approval page has no script');
  await axeCheck(phone, 'the approval page');
  // A sign-in may be reported as fraud; a set-up's test push may not.
  const report = await phone.$('button:text-is("I didn\'t try to sign in")');
  check((report !== null) === (title === 'Approve sign-in?'),
        'the approval page offers "I didn\'t try to sign in" for a ' +
        'sign-in only', await describe(phone));
  if (shotName) await shoot(phone, shotName);
  await phone.fill('#number', number);
  await follow(phone, 'button:text-is("Approve")');
  const answer = await heading(phone);
  checkClean(seen, 'the approval page');
  await phone.close();
  return answer;
}

async function scenarioSelfHosted(ctx, stack) {
  console.log('without Duo: push with number matching (ntfy), text and ' +
              'call (Twilio), through the stand-ins');
  const page = await ctx.newPage();
  const seen = watch(page);

  // Push: the waiting page shows the number the phone must type.
  await signInBob(page, stack, '/selfhosted/push');
  await follow(page, 'text=Approve a request on my authenticator app');
  await follow(page, 'button:has-text("Send request")');
  must(pathOf(page.url()) === `${PORTAL}wait`,
       '"Send request" leads to the waiting page', await describe(page));
  const number = ((await page.textContent('.number')) || '').trim();
  must(/^[1-9][0-9]$/.test(number),
       'the waiting page shows a two-digit number to match', number);
  await axeCheck(page, 'the push waiting page with its number');
  await shoot(page, 'wait-push-number');
  const msg = await lastPush(stack, stack.topic);
  check(/^Sign in to /.test(msg.title || ''),
        'the push says what is being signed in to', msg.title);
  const answer = await approveOnPhone(ctx, msg, number, 'approve',
                                      'Approve sign-in?');
  check(answer === 'Sign-in approved', 'the right number approves', answer);
  let moved = true;
  try {
    await page.waitForURL(`${stack.base}/selfhosted/push`, { timeout: 20000 });
  } catch (e) {
    moved = false;
  }
  must(moved, 'after approval the waiting page moves on by itself',
       await describe(page));

  // Text: the code page names the masked number; the stand-in has the
  // text.
  await ctx.clearCookies();
  await signInBob(page, stack, '/selfhosted/sms');
  await follow(page, 'text=Text my phone');
  await follow(page, 'button:has-text("Send code")');
  const text = (await page.textContent('main')).replace(/\s+/g, ' ');
  must(/We texted a code to \+1/.test(text) &&
       text.includes(stack.phone.slice(-2)) && !text.includes(stack.phone),
       'the code page names the masked number, never all of it', text);
  await axeCheck(page, 'the text-code page');
  await shoot(page, 'sms-code-masked');
  const sms = await jsonRequest('GET', `${stack.twilio}/standin/messages?to=` +
                                encodeURIComponent(stack.phone));
  const code = ((sms.json && sms.json.messages.slice(-1)[0].body) || '')
    .match(/\b(\d{6})\b/);
  must(code, 'the Twilio stand-in got the text with its code', sms.text);
  await page.fill('#code', code[1]);
  await follow(page, 'button:has-text("Verify")');
  must(page.url() === `${stack.base}/selfhosted/sms`,
       'the texted code signs in', await describe(page));

  // Call: the waiting page, then # on the stand-in's keypad.
  await ctx.clearCookies();
  await signInBob(page, stack, '/selfhosted/call');
  await follow(page, 'text=Call my phone');
  await follow(page, 'button:has-text("Call me")');
  must(/Answer the call/.test(await heading(page)),
       'the call\'s waiting page says to answer it', await heading(page));
  await axeCheck(page, 'the call waiting page');
  await shoot(page, 'wait-call-twilio');
  const calls = await jsonRequest('GET', `${stack.twilio}/standin/calls?to=` +
                                  encodeURIComponent(stack.phone));
  must(calls.json && calls.json.calls.length === 1,
       'the Twilio stand-in got one call', calls.text.slice(0, 200));
  const pressed = await jsonRequest('POST', `${stack.twilio}/standin/press`,
                                    { call: calls.json.calls[0].sid,
                                      digits: '#', signature: 'valid' });
  check(pressed.status === 200, 'the stand-in presses # on the call',
        pressed.text.slice(0, 200));
  moved = true;
  try {
    await page.waitForURL(`${stack.base}/selfhosted/call`, { timeout: 20000 });
  } catch (e) {
    moved = false;
  }
  must(moved, 'after # the waiting page moves on by itself',
       await describe(page));
  checkClean(seen, 'push, text and call without Duo');
  await page.close();
}

async function scenarioPushSetup(ctx, stack) {
  console.log('security info: set up push notifications, approved with ' +
              'the number on the phone');
  const page = await ctx.newPage();
  const seen = watch(page);
  await signInBob(page, stack, '/selfhosted/setup', stack.user3);
  await page.fill('#code', totp(stack.secret3));
  await follow(page, 'button:has-text("Verify")');
  await page.goto(`${stack.base}${PORTAL}security-info`);
  must(await page.isVisible('h3:text-is("Push notifications")'),
       'security info has a "Push notifications" row', await describe(page));
  await follow(page, 'button:text-is("Set up push notifications")');
  must(await heading(page) === 'Set up push notifications',
       'the button opens "Set up push notifications"', await describe(page));
  const topic = ((await page.textContent('code.key')) || '').trim();
  must(/^[A-Za-z0-9_-]{24}$/.test(topic),
       'the set-up page shows a new topic', topic);
  // What a phone's camera reads from the QR code (zbarimg, from a picture
  // of it as Chromium draws it): the ntfy app's link to the new topic.
  const qrFile = path.join(os.tmpdir(), `twostep-qr-${process.pid}.png`);
  await page.locator('.qr svg').screenshot({ path: qrFile });
  let scanned = '';
  try {
    scanned = execFileSync('zbarimg', ['--raw', '-q', qrFile]).toString()
      .trim();
  } catch (e) {
    scanned = `zbarimg failed: ${e.message}`;
  }
  fs.rmSync(qrFile, { force: true });
  const host = new URL(stack.ntfy).host;
  check(scanned === `ntfy://${host}/${topic}?secure=false`,
        'the QR code is the ntfy app\'s subscribe link to the new topic',
        scanned);
  await axeCheck(page, 'the push set-up page');
  await shoot(page, 'push-setup');

  await follow(page, 'button:has-text("Send a test notification")');
  const number = ((await page.textContent('.number')) || '').trim();
  must(/^[1-9][0-9]$/.test(number),
       'the set-up page shows the number to type on the phone',
       await describe(page));
  await shoot(page, 'push-setup-wait');
  const msg = await lastPush(stack, topic);
  const answer = await approveOnPhone(ctx, msg, number, 'approve-test',
                                      'Approve the test notification?');
  check(answer === 'Test notification approved',
        'the right number approves the test notification', answer);
  let moved = true;
  try {
    await page.waitForURL((u) => pathOf(u.toString()) ===
                          `${PORTAL}security-info`, { timeout: 20000 });
  } catch (e) {
    moved = false;
  }
  must(moved, 'the set-up page moves on by itself to security info',
       await describe(page));
  check(/Push notifications are set up/.test(await page.textContent('main')),
        'security info says push notifications are set up',
        await describe(page));
  const store = JSON.parse(fs.readFileSync(stack.store, 'utf8'));
  check(store.users.carol.ntfy_topic === topic,
        'the new topic is saved after the approval',
        store.users.carol.ntfy_topic);
  checkClean(seen, 'push set-up');
  await page.close();
}

// ------------------------------------------------------------ security info

function storedUser(stack) {
  return JSON.parse(fs.readFileSync(stack.store, 'utf8')).users[stack.user];
}

// Security info that tells the truth: a phone typed as people do, its
// errors on the field; new recovery codes copied and downloaded; Cancel on
// "Replace" by keyboard; the way back to the application.
async function scenarioSecurityInfo(ctx, stack) {
  console.log('security info: phone, recovery codes, Replace, back');
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'],
                             { origin: stack.base });
  const page = await ctx.newPage();
  const seen = watch(page);
  const target = '/security-info-app/';
  await signInWithCode(page, stack, target);
  await page.goto(`${stack.base}${PORTAL}security-info?return_to=` +
                  encodeURIComponent(target));
  must(await heading(page) === 'Security info', 'security info is shown',
       await describe(page));
  await axeCheck(page, 'security info');

  // A phone with letters: the reason on the field, the number kept.
  await page.fill('#phone', '+49 151 CALL ME');
  await follow(page, 'button:has-text("Save phone")');
  let f = await focusedForScreenReader(page);
  check(f && f.name === 'Phone number' && f.invalid && f.invalid !== 'false'
        && /remove the letters/.test(f.description),
        'a phone with letters: the focus is on the field, marked invalid ' +
        'and described by the reason', JSON.stringify(f));
  check(await page.inputValue('#phone') === '+49 151 CALL ME',
        'what was typed is kept in the field');
  await axeCheck(page, 'security info with a phone error');
  await shoot(page, 'security-info-phone-error');

  // As people write it: saved as E.164.
  await page.fill('#phone', '+49 (151) 123-456.78');
  await follow(page, 'button:has-text("Save phone")');
  check(await page.isVisible('text=Your phone number was saved.') &&
        storedUser(stack).phone === '+4915112345678',
        'a number with spaces, dashes, dots and parentheses is saved as ' +
        'E.164', `${storedUser(stack).phone}: ${await describe(page)}`);

  // New recovery codes: copied with one press, downloaded as a file.
  await follow(page, 'button:has-text("Get new codes")');
  const codes = await page.$$eval('#codes-list code',
                                  (els) => els.map((e) => e.textContent));
  must(codes.length === 10, 'ten new recovery codes are shown',
       await describe(page));
  check(await page.isVisible('#copy-codes'),
        'the "Copy codes" button is shown (its script runs)');
  await page.click('#copy-codes');
  await page.waitForFunction(
    () => document.getElementById('copy-status').textContent !== '');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied === codes.join('\n') + '\n' &&
        /The codes are copied/.test(await page.textContent('#copy-status')),
        '"Copy codes" puts the ten codes on the clipboard and says so',
        JSON.stringify(copied));
  await axeCheck(page, 'security info with new codes');
  await shoot(page, 'security-info-codes');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('button:has-text("Download as a text file")'),
  ]);
  const file = fs.readFileSync(await download.path(), 'utf8');
  check(download.suggestedFilename() === 'recovery-codes.txt' &&
        codes.every((c) => file.includes(`${c}\r\n`)),
        '"Download as a text file" saves recovery-codes.txt with the codes',
        `${download.suggestedFilename()}: ${file.slice(0, 120)}`);

  // "Replace", then Cancel with the keyboard: nothing changes.
  const secret = storedUser(stack).totp;
  await follow(page, 'button:has-text("Replace")');
  must(await heading(page) === 'Set up your authenticator app',
       '"Replace" opens the set-up page', await describe(page));
  await shoot(page, 'enroll-replace');
  await page.keyboard.press('Tab');   // from the code box to "Verify"
  await page.keyboard.press('Tab');   // to "Cancel"
  f = await focusedForScreenReader(page);
  check(f && f.role === 'link' && f.name === 'Cancel',
        'Tab reaches "Cancel" after "Verify"', JSON.stringify(f));
  await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
  check(await heading(page) === 'Security info' &&
        JSON.stringify(storedUser(stack).totp) === JSON.stringify(secret),
        'Cancel goes back to security info with the app unchanged',
        await describe(page));

  // Back to where the user came from.
  await follow(page, 'text=Back to the application');
  check(page.url() === stack.base + target,
        '"Back to the application" returns to the application',
        page.url());
  checkClean(seen, 'security info');
  await page.close();
}

// ------------------------------------------------------------ a kept change

// This browser's session with its second step `age` seconds old, re-signed
// with the site's cookie key as the module signs one (session.cpp:
// 3|sid|user|method|auth_time|expires|credentials|via|issued; keyring.cpp:
// kind.payload.tag, the key bound to the server's audience, its listen
// address), so the test need not wait out the five minutes a second step
// counts as fresh. The e2e tests mint stale sessions the same way.
async function ageSession(ctx, stack, age) {
  const cookie = (await ctx.cookies(stack.base))
    .find((c) => c.name === 'twostep_session');
  must(cookie, 'signed in: the browser holds a session cookie');
  const [kind, payload] = cookie.value.split('.');
  const fields = Buffer.from(payload, 'base64url').toString().split('|');
  fields[4] = fields[8] = String(Math.floor(Date.now() / 1000) - age);
  const signed = `${kind}.` +
    Buffer.from(fields.join('|')).toString('base64url');
  const hmac = (key, text) => crypto.createHmac('sha256', key)
    .update(text).digest();
  const tokenKey = hmac(fs.readFileSync(path.join(stack.dir, 'cookie.key')),
                        'nginx-twostep token key v1');
  const key = hmac(tokenKey,
                   `audience|listen:127.0.0.1:${new URL(stack.base).port}`);
  const tag = hmac(key, signed).toString('base64url');
  await ctx.addCookies([{ ...cookie, value: `${signed}.${tag}` }]);
}

// A change asked with a stale second step is kept across the step-up (the
// twostep_change cookie): the code page says why it asks, security info
// then shows the change with Confirm and Cancel, and Confirm makes it.
async function scenarioKeptChange(ctx, stack) {
  console.log('kept change: a default asked with a stale second step');
  const page = await ctx.newPage();
  const seen = watch(page);
  const target = '/kept-change-app/';
  await signInWithCode(page, stack, target);
  await ageSession(ctx, stack, 310);
  const before = storedUser(stack).default;

  await page.goto(`${stack.base}${PORTAL}security-info?return_to=` +
                  encodeURIComponent(target));
  must(await heading(page) === 'Security info', 'security info is shown',
       await describe(page));
  await page.selectOption('#method', 'totp');
  await follow(page, 'button:has-text("Set default")');
  must(await heading(page) === 'Enter code',
       'a change with a stale second step asks for a code first',
       await describe(page));
  check(await page.isVisible(
    'text=To change your security info, confirm it\'s you.'),
        'the code page says why it asks', await describe(page));
  check(storedUser(stack).default === before,
        'nothing is saved before the step-up');
  await axeCheck(page, 'the step-up for a change');
  await shoot(page, 'stepup-change');

  await page.fill('#code', totp(stack.secret));
  await follow(page, 'button:has-text("Verify")');
  must(await heading(page) === 'Security info' &&
       await page.isVisible('#confirm-heading'),
       'after the step-up security info shows the change to confirm',
       await describe(page));
  const box = (await page.textContent('section:has(#confirm-heading)'))
    .replace(/\s+/g, ' ');
  check(/You confirmed it's you\. This is the change you asked for/
          .test(box) &&
        /Make ".+" your default sign-in method\./.test(box),
        'the confirmation says why the code was asked and what the change ' +
        'is', box);
  let f = await focusedForScreenReader(page);
  check(f && f.role === 'button' && f.name === 'Confirm',
        'the focus is on "Confirm"', JSON.stringify(f));
  check(await page.isVisible('section:has(#confirm-heading) >> ' +
                             'a:has-text("Cancel")'),
        'the confirmation has a Cancel');
  check(storedUser(stack).default === before,
        'nothing is saved before Confirm');
  await axeCheck(page, 'security info with a change to confirm');
  await shoot(page, 'security-info-confirm');

  await follow(page, 'section:has(#confirm-heading) >> ' +
                     'button:has-text("Confirm")');
  check(await heading(page) === 'Security info' &&
        await page.isVisible('text=Your default sign-in method was saved.') &&
        storedUser(stack).default === 'totp',
        'Confirm makes the change', `${storedUser(stack).default}: ` +
        await describe(page));
  check(!(await page.isVisible('#confirm-heading')) &&
        await page.inputValue('#method') === 'totp',
        'the confirmation is gone and the new default is chosen');
  await follow(page, 'text=Back to the application');
  check(page.url() === stack.base + target,
        '"Back to the application" still returns to the application',
        page.url());
  checkClean(seen, 'kept change');
  await page.close();
}

// ------------------------------------------------------------ main

async function main() {
  for (const f of [CHROMIUM, '/usr/bin/python3']) {
    if (!fs.existsSync(f)) {
      console.error(`browser_test: ${f} is missing (make browser ` +
                    'installs it)');
      process.exit(2);
    }
  }

  const stack = await startStack();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'twostep-chromium-'));
  let ctx = null;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: !process.env.HEADFUL,
      viewport: WIDE,
      deviceScaleFactor: 1,
      args: [
        ...(process.env.HEADFUL ? [] : ['--headless']),
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update',
        '--disable-sync',
      ],
    });
    // Violations the console might word differently: report them there.
    await ctx.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} ` +
                      `${e.blockedURI} ${e.sample || ''}`);
      });
    });

    const scenarios = [scenarioPush, scenarioTotp, scenarioSms, scenarioCall,
                       scenarioSignOut, scenarioKeyboard, scenarioKeys,
                       scenarioPasskey, scenarioSelfHosted,
                       scenarioPushSetup, scenarioSecurityInfo,
                       scenarioKeptChange,
                       // Last: it leaves the address locked for 5 minutes.
                       scenarioLocked];
    // ONLY=scenarioPushSetup,... runs those alone (while iterating).
    const only = (process.env.ONLY || '').split(',').filter(Boolean);
    for (const scenario of scenarios) {
      if (only.length && !only.includes(scenario.name)) continue;
      // Every scenario starts without a session.
      await ctx.clearCookies();
      try {
        await scenario(ctx, stack);
      } catch (e) {
        if (!(e instanceof Stop)) {
          check(false, `${scenario.name} ran to the end`, e.stack);
        }
        for (const p of ctx.pages()) {
          if (SHOTS && p.url() !== 'about:blank') {
            const f = path.join(os.tmpdir(),
                                `twostep-failed-${scenario.name}.png`);
            await p.screenshot({ path: f }).catch(() => {});
            console.log(`        (screenshot of the failure: ${f})`);
          }
          await p.close().catch(() => {});
        }
      }
    }
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    // Chromium's last helpers may still be writing to the profile.
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10,
                           retryDelay: 200 });
    } catch (e) {
      console.log(`        (could not remove ${profile}: ${e.message})`);
    }
    const code = await stopStack(stack);
    check(code === 0, 'nginx, the app and the simulator stopped cleanly',
          `stack.py exit status ${code}`);
  }

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
