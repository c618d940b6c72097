import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CredentialVerifier, issueCredential, inspectCredential, type IssueOptions } from '../../src/auth/credential.js';
import { UnauthorizedError, type UnauthorizedReason } from '../../src/auth/errors.js';
import { ALL_PERMISSIONS } from '../../src/auth/permissions.js';
import { Identity } from '../../src/identity/identity.js';

const HOUR = 3600_000;
const authority = Identity.generate();
const subject = Identity.generate();

function leafOpts(over: Partial<IssueOptions> = {}): IssueOptions {
  return { realm: 'alpha', role: 'client', subject: subject.publicKey, permissions: { sub: { allow: ['sensors.#'] } }, ttlMs: HOUR, ...over };
}

function verifier(over: Partial<ConstructorParameters<typeof CredentialVerifier>[0]> = {}): CredentialVerifier {
  return new CredentialVerifier({ realm: 'alpha', authority: authority.publicKey, ...over });
}

async function refusedWith(p: Promise<unknown>, reason: UnauthorizedReason): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof UnauthorizedError, `expected UnauthorizedError, got ${String(err)}`);
    assert.equal(err.code, 'MACULA_ERR_UNAUTHORIZED');
    assert.equal(err.reason, reason);
    return true;
  });
}

describe('credentials', () => {
  it('a credential signed by the authority admits its subject with its permissions', async () => {
    const token = await issueCredential(authority, leafOpts());
    const cred = await verifier().verify([token], subject.nodeId, 'client');
    assert.equal(cred.realm, 'alpha');
    assert.equal(cred.role, 'client');
    assert.ok(cred.permissions.allows('sub', 'sensors.site1.temp'));
    assert.ok(!cred.permissions.allows('sub', '#'));
    assert.ok(!cred.permissions.allows('pub', 'sensors.x'));
    const shown = inspectCredential(token);
    assert.deepEqual(shown.permissions, { sub: { allow: ['sensors.#'] } });
    assert.ok(shown.expiresAt - shown.notBefore === HOUR);
  });

  it('no credential, a malformed one and a chain of three are refused with their reason', async () => {
    const v = verifier();
    await refusedWith(v.verify(undefined, subject.nodeId, 'client'), 'no_credential');
    await refusedWith(v.verify([], subject.nodeId, 'client'), 'no_credential');
    await refusedWith(v.verify(['not.a.jwt'], subject.nodeId, 'client'), 'malformed');
    const token = await issueCredential(authority, leafOpts());
    await refusedWith(v.verify([token, token, token], subject.nodeId, 'client'), 'chain_too_long');
  });

  it('a forged signature is refused', async () => {
    const token = await issueCredential(authority, leafOpts());
    const [h, p] = token.split('.');
    const forged = await issueCredential(Identity.generate(), leafOpts());
    // the authority's header and claims with another key's signature
    await refusedWith(verifier().verify([`${h}.${p}.${forged.split('.')[2]}`], subject.nodeId, 'client'), 'bad_signature');
    // claims altered after signing (wider permissions)
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    claims.perms = ALL_PERMISSIONS;
    const altered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${token.split('.')[2]}`;
    await refusedWith(verifier().verify([altered], subject.nodeId, 'client'), 'bad_signature');
  });

  it('another authority, another realm, another role, another subject are refused', async () => {
    const other = Identity.generate();
    await refusedWith(verifier().verify([await issueCredential(other, leafOpts())], subject.nodeId, 'client'), 'wrong_authority');
    await refusedWith(verifier().verify([await issueCredential(authority, leafOpts({ realm: 'beta' }))], subject.nodeId, 'client'), 'wrong_realm');
    await refusedWith(verifier().verify([await issueCredential(authority, leafOpts({ role: 'node' }))], subject.nodeId, 'client'), 'wrong_role');
    await refusedWith(verifier().verify([await issueCredential(authority, leafOpts())], Identity.generate().nodeId, 'client'), 'subject_mismatch');
  });

  it('expired and not yet valid credentials are refused, also when cached', async () => {
    const token = await issueCredential(authority, leafOpts({ ttlMs: 60_000 }));
    // The clock starts after issuing: not-before is the issuing second.
    let now = Date.now();
    const v = verifier({ now: () => now, clockToleranceS: 0 });
    await v.verify([token], subject.nodeId, 'client');
    now += 61_000;
    await refusedWith(v.verify([token], subject.nodeId, 'client'), 'expired');
    const later = await issueCredential(authority, leafOpts({ notBefore: Date.now() + HOUR }));
    await refusedWith(v.verify([later], subject.nodeId, 'client'), 'not_yet_valid');
  });

  it('revocation applies to cached credentials', async () => {
    const revoked = new Set<string>();
    const v = verifier({ isRevoked: (c) => revoked.has(c.id) || revoked.has(c.subjectHex) });
    const token = await issueCredential(authority, leafOpts());
    const cred = await v.verify([token], subject.nodeId, 'client');
    revoked.add(cred.subjectHex);
    await refusedWith(v.verify([token], subject.nodeId, 'client'), 'revoked');
  });

  it('a delegated issuer may grant what it holds, no more, and no further delegation', async () => {
    const issuerKey = Identity.generate();
    const issuerToken = await issueCredential(authority, {
      realm: 'alpha',
      role: 'issuer',
      subject: issuerKey.publicKey,
      permissions: { sub: { allow: ['sensors.#'], deny: ['sensors.secret.#'] }, pub: { allow: ['sensors.#'] } },
      ttlMs: HOUR,
    });
    const v = verifier();
    const leaf = await issueCredential(issuerKey, leafOpts({ permissions: { sub: { allow: ['sensors.site1.#'] } } }));
    const cred = await v.verify([issuerToken, leaf], subject.nodeId, 'client');
    assert.ok(cred.permissions.allows('sub', 'sensors.site1.temp'));
    assert.ok(!cred.permissions.allows('sub', 'sensors.other'));

    const tooMuch = await issueCredential(issuerKey, leafOpts({ permissions: { sub: { allow: ['#'] } } }));
    await refusedWith(v.verify([issuerToken, tooMuch], subject.nodeId, 'client'), 'exceeds_issuer');

    // the issuer's deny list bounds what it delegated
    const wide = await issueCredential(issuerKey, leafOpts({ permissions: { sub: { allow: ['sensors.#'] } } }));
    const c2 = await v.verify([issuerToken, wide], subject.nodeId, 'client');
    assert.ok(c2.permissions.allows('sub', 'sensors.a'));
    assert.ok(!c2.permissions.allows('sub', 'sensors.secret.#'));
    assert.ok(!c2.permissions.deliverable('sensors.secret.x'));

    // a leaf signed by a key that holds no issuer credential, or a node credential used as issuer
    const stranger = Identity.generate();
    await refusedWith(v.verify([issuerToken, await issueCredential(stranger, leafOpts())], subject.nodeId, 'client'), 'not_an_issuer');
    const nodeCred = await issueCredential(authority, { ...leafOpts(), role: 'node', subject: issuerKey.publicKey });
    await refusedWith(v.verify([nodeCred, leaf], subject.nodeId, 'client'), 'not_an_issuer');

    // an issuer credential cannot itself connect, nor delegate another issuer
    await refusedWith(v.verify([issuerToken], issuerKey.nodeId, 'client'), 'wrong_role');
    const subIssuer = await issueCredential(issuerKey, { ...leafOpts(), role: 'issuer' });
    await refusedWith(v.verify([issuerToken, subIssuer], subject.nodeId, 'client'), 'chain_too_long');
  });

  it('a chain expires with its issuer credential', async () => {
    const issuerKey = Identity.generate();
    const issuerToken = await issueCredential(authority, { realm: 'alpha', role: 'issuer', subject: issuerKey.publicKey, permissions: ALL_PERMISSIONS, ttlMs: 60_000 });
    const leaf = await issueCredential(issuerKey, leafOpts({ ttlMs: 10 * HOUR }));
    let now = Date.now();
    const v = verifier({ now: () => now, clockToleranceS: 0 });
    await v.verify([issuerToken, leaf], subject.nodeId, 'client');
    now += 61_000;
    await refusedWith(v.verify([issuerToken, leaf], subject.nodeId, 'client'), 'expired');
  });

  it('issuing refuses permissions no verifier would accept', async () => {
    await assert.rejects(issueCredential(authority, leafOpts({ permissions: { sub: { allow: ['a.#.b'] } } })), /pattern/);
  });
});
