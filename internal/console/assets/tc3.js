// TC3-HMAC-SHA256 request signing with Web Crypto, as the Tencent Cloud
// API 3.0 specifies it (docs/api.md, "TC3-HMAC-SHA256").
const enc = new TextEncoder();

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256Hex(text) {
  return hex(await crypto.subtle.digest('SHA-256', enc.encode(text)));
}

async function hmac(key, msg) {
  const raw = typeof key === 'string' ? enc.encode(key) : key;
  const k = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return crypto.subtle.sign('HMAC', k, enc.encode(msg));
}

// sign returns the Authorization header of a POST of body (a JSON string)
// to "/" of host, with content-type application/json, at timestamp (Unix
// seconds).
export async function sign({ secretId, secretKey, host, body, timestamp, service = 'dts' }) {
  const contentType = 'application/json';
  const signedHeaders = 'content-type;host';
  const canonical = ['POST', '/', '', `content-type:${contentType}\nhost:${host}\n`, signedHeaders, await sha256Hex(body)].join('\n');
  const date = new Date(timestamp * 1000).toISOString().slice(0, 10);
  const scope = `${date}/${service}/tc3_request`;
  const toSign = ['TC3-HMAC-SHA256', String(timestamp), scope, await sha256Hex(canonical)].join('\n');
  const kDate = await hmac('TC3' + secretKey, date);
  const kService = await hmac(kDate, service);
  const kSigning = await hmac(kService, 'tc3_request');
  const signature = hex(await hmac(kSigning, toSign));
  return `TC3-HMAC-SHA256 Credential=${secretId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}
