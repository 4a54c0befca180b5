// Verifies a run's provenance bundle in the browser (docs/provenance.md): the DSSE signature (ES256 over PAE) under the
// control plane's published key, the RFC 6962 inclusion proof of the canonical envelope, and the tree head's signature.

const enc = new TextEncoder();

export function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function toBase64(bytes) {
  let raw = '';
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body (byte counts). */
export function pae(payloadType, payload) {
  const type = enc.encode(payloadType);
  return concat(enc.encode(`DSSEv1 ${type.length} `), type, enc.encode(` ${payload.length} `), payload);
}

/** The envelope's canonical JSON (the log leaf): fixed property order, no whitespace. */
export function canonicalEnvelope(envelope) {
  const s = JSON.stringify;
  const sigs = envelope.signatures.map(x => `{"keyid":${s(x.keyid)},"sig":${s(x.sig)}}`).join(',');
  return `{"payloadType":${s(envelope.payloadType)},"payload":${s(envelope.payload)},"signatures":[${sigs}]}`;
}

export const leafHash = async bytes => sha256(concat(new Uint8Array([0]), bytes));
const nodeHash = async (left, right) => sha256(concat(new Uint8Array([1]), left, right));

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or null when the proof's shape is wrong. */
export async function rootFromInclusionProof(leaf, index, size, path) {
  if (index < 0 || index >= size) return null;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

const ecdsa = { name: 'ECDSA', hash: 'SHA-256' };

export async function importJwk(jwk) {
  return crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, ext: true }, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
}

export async function importPem(pem) {
  const body = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return crypto.subtle.importKey('spki', fromBase64(body), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
}

async function verifySig(key, sigBase64, data) {
  let sig;
  try { sig = fromBase64(sigBase64); } catch { return false; }
  return sig.length === 64 && crypto.subtle.verify(ecdsa, key, sig, data);
}

/**
 * Checks a bundle against the trusted key (GET /v1/log/key). Returns { ok, checks: [{name, ok, detail}], statement }.
 * Never throws for a bad bundle: a malformed one fails its checks.
 */
export async function verifyBundle(bundle, trustedKey) {
  const checks = [];
  const check = (name, ok, detail = '') => { checks.push({ name, ok: !!ok, detail }); return !!ok; };
  let statement = null;
  try {
    const key = await importJwk(trustedKey.jwk);
    const env = bundle.envelope;
    const payload = fromBase64(env.payload);
    try { statement = JSON.parse(new TextDecoder().decode(payload)); } catch { statement = null; }

    const sigOk = await Promise.all(env.signatures.map(s => verifySig(key, s.sig, pae(env.payloadType, payload))));
    check('Envelope signature (DSSE, ES256) under the control plane\'s key', sigOk.some(Boolean),
      `key ${trustedKey.keyId}`);
    check('Envelope signed by the published key id', env.signatures.some(s => s.keyid === trustedKey.keyId) && bundle.keyId === trustedKey.keyId);

    const proof = bundle.inclusionProof;
    const head = bundle.treeHead;
    const leaf = await leafHash(enc.encode(canonicalEnvelope(env)));
    const root = await rootFromInclusionProof(leaf, bundle.logIndex, head.treeSize, proof.hashes.map(fromBase64));
    check('Inclusion proof (RFC 6962) leads to the signed tree head\'s root',
      proof.leafIndex === bundle.logIndex && proof.treeSize === head.treeSize && root !== null && equal(root, fromBase64(head.rootHash)),
      `leaf ${bundle.logIndex} of ${head.treeSize}`);

    const headKey = bundle.treeHeadPublicKeyPem ? await importPem(bundle.treeHeadPublicKeyPem) : key;
    const text = `sandstorm-tree-head/v1\n${head.logName}\n${head.treeSize}\n${head.rootHash}\n${Date.parse(head.timestamp)}\n`;
    check('Tree head signature', await verifySig(headKey, head.signature, enc.encode(text)),
      bundle.treeHeadPublicKeyPem ? 'signed by an earlier key named in the bundle' : `log ${head.logName}`);
  } catch (e) {
    check('Bundle is well-formed', false, e.message);
  }
  return { ok: checks.length > 0 && checks.every(c => c.ok), checks, statement };
}

/** Hex SHA-256 of a string's UTF-8 bytes (for comparing an output with the statement's subject digest). */
export async function hexDigest(text) {
  return [...await sha256(enc.encode(text))].map(b => b.toString(16).padStart(2, '0')).join('');
}
