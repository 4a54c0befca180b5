// Offline: the inclusion-proof check (RFC 9162 §2.1.3.2) against proofs built by RFC 6962's PATH over every leaf of
// trees of 1 to 20 leaves, and a wrong leaf or a wrong size never verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rootFromInclusionProof, pae } from '../dist/index.js';

const h = (...parts) => new Uint8Array(createHash('sha256').update(Buffer.concat(parts.map((p) => Buffer.from(p)))).digest());
const leafHash = (i) => h([0], Buffer.from(`leaf ${i}`));
const largestPowerOfTwoBelow = (n) => { let k = 1; while (k * 2 < n) k *= 2; return k; };
const mth = (leaves) => leaves.length === 1 ? leaves[0] : (() => { const k = largestPowerOfTwoBelow(leaves.length); return h([1], mth(leaves.slice(0, k)), mth(leaves.slice(k))); })();
const path = (m, leaves) => {
  if (leaves.length === 1) return [];
  const k = largestPowerOfTwoBelow(leaves.length);
  return m < k ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))] : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
};

test('inclusion proofs of every leaf of trees of 1 to 20 leaves lead to the root', async () => {
  for (let size = 1; size <= 20; size++) {
    const leaves = Array.from({ length: size }, (_, i) => leafHash(i));
    const root = Buffer.from(mth(leaves));
    for (let m = 0; m < size; m++) {
      const proof = path(m, leaves);
      assert.deepEqual(Buffer.from(await rootFromInclusionProof(m, size, leaves[m], proof)), root, `leaf ${m} of ${size}`);
      const wrongLeaf = await rootFromInclusionProof(m, size, leafHash(999), proof);
      assert.notDeepEqual(Buffer.from(wrongLeaf ?? []), root);
      if (size > 1) {
        const wrongIndex = await rootFromInclusionProof((m + 1) % size, size, leaves[m], proof);
        assert.notDeepEqual(Buffer.from(wrongIndex ?? []), root, `leaf ${m} of ${size} at another index`);
      }
    }
  }
});

test('PAE is DSSE v1 with byte lengths', () => {
  assert.equal(Buffer.from(pae('type/é', new TextEncoder().encode('ab'))).toString(), 'DSSEv1 7 type/é 2 ab');
});
