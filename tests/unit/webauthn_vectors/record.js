#!/usr/bin/env node
// Records WebAuthn registrations and assertions from Chromium's virtual
// authenticator (a CTAP2 authenticator inside the browser, set up over the
// Chrome DevTools Protocol's WebAuthn domain) for tests/unit/test_webauthn.
//
//   node tests/unit/webauthn_vectors/record.js [OUTDIR]
//
// Needs Debian's chromium and playwright-core (tests/browser: npm ci).
// Writes one JSON file per algorithm and attestation into OUTDIR (default:
// this directory). README.md says what is in them.

'use strict';

const path = require('path');
const fs = require('fs');
const http = require('http');
const os = require('os');

const HERE = __dirname;
const REPO = path.resolve(HERE, '..', '..', '..');
const { chromium } = require(
  path.join(REPO, 'tests', 'browser', 'node_modules', 'playwright-core'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = process.argv[2] || HERE;

// The page only hosts the calls: a secure context (http://localhost is
// one) whose host name can be an RP ID (an IP address cannot).
const PAGE = '<!doctype html><title>webauthn vectors</title><p>recording';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

// Runs in the page: navigator.credentials.create() with the options given
// (binary members as base64url), the answer with binary members base64url.
async function pageCreate(o) {
  const d = (s) => Uint8Array.from(atob(s.replace(/-/g, '+')
    .replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const e = (b) => btoa(String.fromCharCode(...new Uint8Array(b)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const cred = await navigator.credentials.create({ publicKey: {
    challenge: d(o.challenge),
    rp: { id: o.rpId, name: 'nginx-twostep test' },
    user: { id: d(o.userId), name: 'alice', displayName: 'Alice' },
    pubKeyCredParams: [{ type: 'public-key', alg: o.alg }],
    attestation: o.attestation,
    authenticatorSelection: { residentKey: 'required',
                              userVerification: 'required' },
    timeout: 10000,
  } });
  return {
    id: cred.id,
    attestationObject: e(cred.response.attestationObject),
    clientDataJSON: e(cred.response.clientDataJSON),
    transports: cred.response.getTransports(),
    publicKeyAlgorithm: cred.response.getPublicKeyAlgorithm(),
    publicKey: e(cred.response.getPublicKey()),
  };
}

async function pageGet(o) {
  const d = (s) => Uint8Array.from(atob(s.replace(/-/g, '+')
    .replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const e = (b) => btoa(String.fromCharCode(...new Uint8Array(b)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const cred = await navigator.credentials.get({ publicKey: {
    challenge: d(o.challenge),
    rpId: o.rpId,
    allowCredentials: o.allow ? [{ type: 'public-key', id: d(o.allow) }] : [],
    userVerification: o.userVerification,
    timeout: 10000,
  } });
  return {
    id: cred.id,
    authenticatorData: e(cred.response.authenticatorData),
    clientDataJSON: e(cred.response.clientDataJSON),
    signature: e(cred.response.signature),
    userHandle: cred.response.userHandle ? e(cred.response.userHandle) : null,
  };
}

const challenge = () => b64u(require('crypto').randomBytes(32));

async function record(page, cdp, origin, alg, name, attestation) {
  const { authenticatorId } = await cdp.send(
    'WebAuthn.addVirtualAuthenticator', { options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true,
      automaticPresenceSimulation: true,
    } });
  try {
    const userId = b64u(Buffer.from('alice-user-handle'));
    const regChallenge = challenge();
    let reg;
    try {
      reg = await page.evaluate(pageCreate, { challenge: regChallenge,
        rpId: 'localhost', userId, alg, attestation });
    } catch (err) {
      return { name, error: String(err.message || err).split('\n')[0] };
    }
    const vector = {
      recorded_with: `Chromium ${(await page.context().browser()).version()}`
        + ' virtual authenticator (CDP WebAuthn domain: ctap2, internal,'
        + ' resident keys, user verification)',
      rp_id: 'localhost',
      origin,
      algorithm: alg,
      attestation,
      registration: { challenge: regChallenge, ...reg },
      assertions: [],
    };
    // Two with UV asked for (the counter goes up), then one with UV
    // discouraged and a discoverable-credential one (no allowCredentials).
    for (const [uv, allow] of [['required', true], ['required', true],
                               ['discouraged', true], ['required', false]]) {
      const c = challenge();
      const a = await page.evaluate(pageGet, { challenge: c,
        rpId: 'localhost', allow: allow ? reg.id : null,
        userVerification: uv });
      vector.assertions.push({ challenge: c, user_verification: uv,
                               allow_credentials: allow, ...a });
    }
    return { name, vector };
  } finally {
    await cdp.send('WebAuthn.removeVirtualAuthenticator',
                   { authenticatorId });
  }
}

async function main() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://localhost:${server.address().port}`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-vectors-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync'],
  });
  let failed = false;
  try {
    const page = browser.pages()[0] || await browser.newPage();
    await page.goto(origin + '/');
    const cdp = await browser.newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    const runs = [[-7, 'es256-none', 'none'], [-7, 'es256-packed', 'direct'],
                  [-257, 'rs256-none', 'none'], [-8, 'eddsa-none', 'none']];
    for (const [alg, name, att] of runs) {
      const r = await record(page, cdp, origin, alg, name, att);
      if (r.error) {
        console.log(`${name}: the virtual authenticator refused: ${r.error}`);
        continue;
      }
      const file = path.join(OUT, `${name}.json`);
      fs.writeFileSync(file, JSON.stringify(r.vector, null, 2) + '\n');
      console.log(`${name}: ${file}`);
    }
  } catch (err) {
    console.error(err);
    failed = true;
  } finally {
    await browser.close();
    server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}

main();
