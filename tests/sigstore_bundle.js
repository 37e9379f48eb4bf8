// Make a Sigstore bundle as cosign v3 does with a key and the transparency
// log off, with the Sigstore project's own library (@sigstore/sign), not
// chartfs's code: a DSSE envelope over an in-toto statement, signed by a
// custom Signer holding a PEM private key.
//
//   node sigstore_bundle.js KEY.pem STATEMENT.json [PAYLOAD_TYPE]
//
// writes the bundle JSON on stdout. Run with NODE_PATH=.tools/sigstore/node_modules.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const { DSSEBundleBuilder } = require('@sigstore/sign');
const { bundleToJSON } = require('@sigstore/bundle');

async function main() {
  const [keyPath, statementPath, payloadType] = process.argv.slice(2);
  const priv = crypto.createPrivateKey(fs.readFileSync(keyPath));
  const pub = crypto.createPublicKey(priv);
  const pem = pub.export({ type: 'spki', format: 'pem' });
  const der = pub.export({ type: 'spki', format: 'der' });
  const hint = crypto.createHash('sha256').update(der).digest('base64');
  const signer = {
    sign: async (data) => ({
      // ECDSA: ASN.1 DER, as cosign writes it.
      signature: crypto.sign(priv.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, priv),
      key: { $case: 'publicKey', publicKey: pem, hint },
    }),
  };
  const builder = new DSSEBundleBuilder({ signer, witnesses: [] });
  const bundle = await builder.create({
    data: fs.readFileSync(statementPath),
    type: payloadType || 'application/vnd.in-toto+json',
  });
  process.stdout.write(JSON.stringify(bundleToJSON(bundle)));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
