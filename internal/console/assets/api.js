// The DTS API as the console calls it: every request signed in the page.
import { sign } from './tc3.js';

const KEY = 'opendts.credentials';

export class ApiError extends Error {
  constructor(code, message, requestId) {
    super(message);
    this.code = code;
    this.requestId = requestId;
  }
}

export function secureContextOK() {
  return window.isSecureContext && !!(window.crypto && crypto.subtle);
}

// The credentials live in this tab's sessionStorage only.
export function credentials() {
  try {
    const c = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    return c && c.secretId && c.secretKey ? c : null;
  } catch {
    return null;
  }
}

export function saveCredentials(c) {
  sessionStorage.setItem(KEY, JSON.stringify(c));
}

export function forgetCredentials() {
  sessionStorage.removeItem(KEY);
}

// call sends one action and returns its Response without RequestId, or
// throws an ApiError (code "NetworkError" when the server did not answer).
export async function call(action, params = {}, creds = credentials()) {
  if (!creds) throw new ApiError('NotSignedIn', 'Sign in first.');
  const body = JSON.stringify(params);
  const timestamp = Math.floor(Date.now() / 1000);
  const authorization = await sign({ secretId: creds.secretId, secretKey: creds.secretKey, host: location.host, body, timestamp });
  let resp;
  try {
    resp = await fetch('/', {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'Authorization': authorization,
        'X-TC-Action': action,
        'X-TC-Version': '2018-03-30',
        'X-TC-Timestamp': String(timestamp),
        'X-TC-Region': creds.region || 'ap-guangzhou',
        'X-TC-Language': 'en-US',
        'X-TC-RequestClient': 'opendts-console',
      },
      body,
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError('NetworkError', `The server did not answer (${e.message}).`);
  }
  let data;
  try {
    data = (await resp.json()).Response;
  } catch {
    throw new ApiError('NetworkError', `The server answered HTTP ${resp.status} without an API response.`);
  }
  if (data.Error) throw new ApiError(data.Error.Code, data.Error.Message, data.RequestId);
  delete data.RequestId;
  return data;
}
