/** A DSSE v1 envelope. */
export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: Array<{ keyid: string; sig: string }>;
}

export interface SignedTreeHead {
  logName: string;
  treeSize: number;
  rootHash: string;
  timestamp: string;
  keyId: string;
  signature: string;
}

/** What `GET /v1/runs/{id}/provenance` answers (see docs/provenance.md). */
export interface ProvenanceBundle {
  envelope: DsseEnvelope;
  keyId: string;
  publicKeyPem: string;
  logIndex: number;
  inclusionProof: { leafIndex: number; treeSize: number; hashes: string[] };
  treeHead: SignedTreeHead;
  treeHeadPublicKeyPem?: string | null;
}

/** An in-toto Statement v1. */
export interface Statement {
  _type: string;
  subject: Array<{ name: string; digest: Record<string, string> }>;
  predicateType: string;
  predicate: Record<string, unknown>;
}

export interface VerifyOptions {
  /** The key to trust (PEM SubjectPublicKeyInfo, e.g. from `GET /v1/log/key`); without it the bundle's own key is used and a warning says so. */
  trustedPublicKeyPem?: string;
  /** Output the caller holds, checked against the statement's `stdout` digest. */
  stdout?: string | Uint8Array;
  stderr?: string | Uint8Array;
}

export interface VerificationResult {
  ok: boolean;
  passed: string[];
  warnings: string[];
  failures: string[];
  /** The signed statement, once its signature checked out. */
  statement?: Statement;
}

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

const subtle = (): SubtleCrypto => {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (!c?.subtle) throw new Error('WebCrypto (crypto.subtle) is not available: Node 20 or a browser is needed');
  return c.subtle;
};

/**
 * Verifies a provenance bundle offline: the DSSE signature over PAE (ES256), the envelope's inclusion in the
 * transparency log (RFC 9162 §2.1.3.2) under the signed tree head, the tree head's signature, and optionally the output.
 */
export async function verifyBundle(bundle: ProvenanceBundle, options: VerifyOptions = {}): Promise<VerificationResult> {
  const passed: string[] = [];
  const warnings: string[] = [];
  const failures: string[] = [];
  let statement: Statement | undefined;

  const envelopeKeyPem = bundle.publicKeyPem;
  if (options.trustedPublicKeyPem !== undefined) {
    if (normalizePem(options.trustedPublicKeyPem) === normalizePem(envelopeKeyPem)) passed.push('the bundle is signed by the trusted key');
    else failures.push("the bundle's key is not the trusted key");
  } else {
    warnings.push("no trusted key given: checked against the bundle's own key");
  }

  const envelopeKey = await importKey(options.trustedPublicKeyPem ?? envelopeKeyPem);
  const envelope = bundle.envelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) failures.push(`payload type is ${envelope.payloadType}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  const payload = base64ToBytes(envelope.payload);
  const signature = envelope.signatures[0];
  if (envelope.signatures.length !== 1 || !signature) {
    failures.push(`the envelope has ${envelope.signatures.length} signatures, not one`);
  } else if (await subtle().verify({ name: 'ECDSA', hash: 'SHA-256' }, envelopeKey, base64ToBytes(signature.sig), pae(envelope.payloadType, payload))) {
    passed.push('DSSE signature (ES256 over PAE)');
    statement = JSON.parse(new TextDecoder().decode(payload)) as Statement;
  } else {
    failures.push('the DSSE signature does not verify');
  }

  const head = bundle.treeHead;
  const proof = bundle.inclusionProof;
  if (proof.leafIndex !== bundle.logIndex || proof.treeSize !== head.treeSize) {
    failures.push('the inclusion proof is not for this log index and tree head');
  } else {
    const leaf = await sha256(concat(new Uint8Array([0]), new TextEncoder().encode(canonicalEnvelope(envelope))));
    const root = await rootFromInclusionProof(proof.leafIndex, proof.treeSize, leaf, proof.hashes.map(base64ToBytes));
    if (root && equal(root, base64ToBytes(head.rootHash))) passed.push(`inclusion in the log at index ${bundle.logIndex} of ${head.treeSize}`);
    else failures.push('the inclusion proof does not lead to the tree head\'s root');
  }

  const headKey = bundle.treeHeadPublicKeyPem ? await importKey(bundle.treeHeadPublicKeyPem) : envelopeKey;
  if (bundle.treeHeadPublicKeyPem) warnings.push('the tree head is signed by another key than the envelope');
  const headText = `sandstorm-tree-head/v1\n${head.logName}\n${head.treeSize}\n${head.rootHash}\n${unixMillis(head.timestamp)}\n`;
  if (await subtle().verify({ name: 'ECDSA', hash: 'SHA-256' }, headKey, base64ToBytes(head.signature), new TextEncoder().encode(headText))) passed.push('tree head signature');
  else failures.push('the tree head signature does not verify');

  for (const [name, value] of [['stdout', options.stdout], ['stderr', options.stderr]] as const) {
    if (value === undefined || !statement) continue;
    const subject = statement.subject.find((s) => s.name === name);
    const digest = toHex(await sha256(typeof value === 'string' ? new TextEncoder().encode(value) : value));
    if (subject?.digest.sha256 === digest) passed.push(`${name} matches the signed digest`);
    else failures.push(`${name} does not match the signed digest`);
  }

  return { ok: failures.length === 0, passed, warnings, failures, statement };
}

/** DSSE v1 pre-authentication encoding. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = new TextEncoder().encode(payloadType);
  return concat(new TextEncoder().encode(`DSSEv1 ${type.length} `), type, new TextEncoder().encode(` ${payload.length} `), payload);
}

/** The envelope's canonical form, which is the log leaf: fixed property order, no whitespace. */
export function canonicalEnvelope(e: DsseEnvelope): string {
  return `{"payloadType":${JSON.stringify(e.payloadType)},"payload":${JSON.stringify(e.payload)},"signatures":[${e.signatures
    .map((s) => `{"keyid":${JSON.stringify(s.keyid)},"sig":${JSON.stringify(s.sig)}}`)
    .join(',')}]}`;
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or undefined when the proof is malformed. */
export async function rootFromInclusionProof(leafIndex: number, treeSize: number, leafHash: Uint8Array, path: Uint8Array[]): Promise<Uint8Array | undefined> {
  if (leafIndex < 0 || leafIndex >= treeSize) return undefined;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leafHash;
  for (const p of path) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(new Uint8Array([1]), p, r));
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await sha256(concat(new Uint8Array([1]), r, p));
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = base64ToBytes(pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, ''));
  return subtle().importKey('spki', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
}

function normalizePem(pem: string): string {
  return pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
}

// .NET's ToUnixTimeMilliseconds truncates below the millisecond; Date.parse would need at most 3 fraction digits.
function unixMillis(timestamp: string): number {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(timestamp);
  if (!m) return Date.parse(timestamp);
  const fraction = m[2] ? Number((m[2] + '000').slice(1, 4)) : 0;
  return Date.parse(`${m[1]}${m[3]}`) + fraction;
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', data));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function base64ToBytes(b64: string): Uint8Array {
  const binary = atob(b64);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
