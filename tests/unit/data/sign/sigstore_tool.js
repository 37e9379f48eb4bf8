// sigstore_tool.js - the Sigstore project's JavaScript libraries making and
// checking key-based bundles for tests/test_sign_formats.py: an
// implementation chartfs did not write. Run with
// NODE_PATH=.tools/sigstore/node_modules (scripts/sigstore.sh).
//
//   node sigstore_tool.js make PRIVKEY PUBKEY STATEMENT HASH [nohint]
//       a DSSE bundle (@sigstore/sign's DSSEBundleBuilder, a local key as
//       its Signer, no witnesses) over the statement file, on stdout;
//       HASH is the signature's digest (sha256, sha384, or none: Ed25519)
//   node sigstore_tool.js verify PUBKEY BUNDLE
//       @sigstore/verify with the public key as the only trust material
//       (no tlog, CT log or timestamp required); prints "ok" or the error
//       and exits 1
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const { DSSEBundleBuilder } = require('@sigstore/sign');
const { bundleFromJSON, bundleToJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

// cosign's hint: base64 of the sha256 of the DER SubjectPublicKeyInfo.
function keyHint(pubPem) {
  const der = crypto.createPublicKey(pubPem).export({ format: 'der', type: 'spki' });
  return { der, hint: crypto.createHash('sha256').update(der).digest('base64') };
}

async function make(privPath, pubPath, statementPath, hash, nohint) {
  const priv = crypto.createPrivateKey(fs.readFileSync(privPath));
  const pubPem = fs.readFileSync(pubPath, 'utf8');
  const { hint } = keyHint(pubPem);
  const signer = {
    sign: async (data) => ({
      signature: crypto.sign(hash === 'none' ? null : hash, data, priv),
      key: { $case: 'publicKey', publicKey: pubPem, hint: nohint ? undefined : hint },
    }),
  };
  const builder = new DSSEBundleBuilder({ signer, witnesses: [] });
  const bundle = await builder.create({
    data: fs.readFileSync(statementPath),
    type: 'application/vnd.in-toto+json',
  });
  process.stdout.write(JSON.stringify(bundleToJSON(bundle)));
}

function verify(pubPath, bundlePath) {
  const { der, hint } = keyHint(fs.readFileSync(pubPath, 'utf8'));
  const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
  const trust = toTrustMaterial(root, { [hint]: { rawBytes: der } });
  const verifier = new Verifier(trust, {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  verifier.verify(toSignedEntity(bundle));
  process.stdout.write('ok\n');
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  try {
    if (cmd === 'make' && (args.length === 4 || args.length === 5)) {
      await make(args[0], args[1], args[2], args[3], args[4] === 'nohint');
    } else if (cmd === 'verify' && args.length === 2) {
      verify(args[0], args[1]);
    } else {
      process.stderr.write('usage: see the header of sigstore_tool.js\n');
      process.exit(64);
    }
  } catch (e) {
    process.stdout.write(`${e.code || e.name}: ${e.message}\n`);
    process.exit(1);
  }
}

main();
