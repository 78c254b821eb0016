// The console's entry: sign-in, the router and the refresh loop.
import { call, credentials, saveCredentials, forgetCredentials, secureContextOK, ApiError } from './api.js';
import { h } from './ui.js';
import { listView } from './list.js';
import { jobView } from './job.js';
import { formView } from './form.js';

const main = document.getElementById('main');
let current = null; // the view shown: {refresh(), destroy()}
let timer = null;

function setChrome(signedIn) {
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  document.getElementById('who-id').textContent = signedIn ? credentials().secretId : '';
}

function explainSignInError(e) {
  switch (e.code) {
    case 'AuthFailure.SecretIdNotFound':
      return 'Sign-in failed: this SecretId is not known to the server.';
    case 'AuthFailure.SignatureFailure':
      return 'Sign-in failed: the SecretKey does not match this SecretId.';
    case 'AuthFailure.SignatureExpire':
      return 'Sign-in failed: this computer\'s clock is more than 5 minutes off the server\'s.';
    case 'UnsupportedRegion':
      return 'Sign-in failed: the server does not serve this region.';
    default:
      return `Sign-in failed: ${e.message}`;
  }
}

function signInView() {
  setChrome(false);
  document.title = 'Sign in · opendts console';
  const err = h('p', { id: 'signin-error', class: 'error', role: 'alert' });
  const insecure = !secureContextOK();
  const form = h('form', { id: 'signin', class: 'card narrow', novalidate: true },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Use an API key pair of this opendts server. The key stays in this browser tab and signs each request; closing the tab or signing out forgets it.'),
    insecure && h('p', { class: 'error', role: 'alert', id: 'insecure' },
      'This page is not in a secure context (plain HTTP on an address other than localhost), so the browser withholds the Web Crypto API that signs requests. Serve opendts with -tls-cert and -tls-key, or reach it through an SSH tunnel to localhost.'),
    h('label', { for: 'secretId' }, 'SecretId'),
    h('input', { id: 'secretId', name: 'secretId', autocomplete: 'username', required: true, spellcheck: 'false' }),
    h('label', { for: 'secretKey' }, 'SecretKey'),
    h('input', { id: 'secretKey', name: 'secretKey', type: 'password', autocomplete: 'current-password', required: true }),
    h('label', { for: 'region' }, 'Region'),
    h('input', { id: 'region', name: 'region', value: 'ap-guangzhou', spellcheck: 'false' }),
    err,
    h('button', { type: 'submit', id: 'signin-submit', class: 'primary', disabled: insecure }, 'Sign in'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const creds = {
      secretId: form.secretId.value.trim(),
      secretKey: form.secretKey.value,
      region: form.region.value.trim() || 'ap-guangzhou',
    };
    if (!creds.secretId || !creds.secretKey) {
      err.textContent = 'Enter both the SecretId and the SecretKey.';
      return;
    }
    err.textContent = '';
    form.querySelector('button').disabled = true;
    try {
      // A harmless call that needs a valid signature.
      await call('DescribeMigrateJobs', { Limit: 1 }, creds);
      saveCredentials(creds);
      route();
    } catch (e) {
      err.textContent = e instanceof ApiError ? explainSignInError(e) : `Sign-in failed: ${e.message}`;
      form.querySelector('button').disabled = false;
      form.secretKey.focus();
    }
  });
  main.replaceChildren(form);
  form.secretId.focus();
}

function stopView() {
  clearInterval(timer);
  timer = null;
  if (current && current.destroy) current.destroy();
  current = null;
}

// onUnauthorized is how views report that the key stopped working.
function onError(e) {
  if (e instanceof ApiError && e.code.startsWith('AuthFailure')) {
    forgetCredentials();
    route();
    return true;
  }
  return false;
}

async function route() {
  stopView();
  if (!credentials()) {
    signInView();
    return;
  }
  setChrome(true);
  const hash = location.hash || '#/jobs';
  let m;
  const ctx = { main, call, onError, go: (to) => { location.hash = to; } };
  if ((m = hash.match(/^#\/jobs\/([^/]+)\/edit$/))) current = formView(ctx, decodeURIComponent(m[1]));
  else if ((m = hash.match(/^#\/jobs\/([^/]+)$/))) current = jobView(ctx, decodeURIComponent(m[1]));
  else if (hash === '#/new') current = formView(ctx, null);
  else current = listView(ctx);
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === hash) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.focus({ preventScroll: true });
  if (current.refresh) {
    const view = current;
    let busy = false;
    const tick = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        await view.refresh();
      } catch (e) {
        if (!onError(e) && view.error) view.error(e);
      } finally {
        busy = false;
      }
    };
    tick();
    timer = setInterval(tick, 2000);
  }
}

document.getElementById('signout').addEventListener('click', () => {
  forgetCredentials();
  location.hash = '#/jobs';
  route();
});
window.addEventListener('hashchange', route);
route();
