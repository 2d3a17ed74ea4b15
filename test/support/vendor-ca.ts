// A throwaway certificate authority for loopback HTTPS vendors: a self-signed CA that issues serving
// certificates for whatever DNS names a test needs (vendor.test, localhost). ECDSA P-256 on Node's
// WebCrypto, so a CA and a leaf take milliseconds.
import 'reflect-metadata';
import { KeyObject, type webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

export interface ServingCertificate {
  /** PEM, for node:https's `cert` and `key`. */
  readonly cert: string;
  readonly key: string;
}

export interface VendorCa {
  /** The CA certificate (PEM): what a client must trust. */
  readonly certPem: string;
  issue(dnsNames: readonly string[]): Promise<ServingCertificate>;
}

function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
}

function validity(): { notBefore: Date; notAfter: Date } {
  // Back-dated so a clock that is a little off does not make a fresh certificate "not yet valid".
  const now = Date.now();
  return { notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) };
}

export async function createVendorCa(name: string): Promise<VendorCa> {
  const keys = await keyPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    ...validity(),
    name: `CN=${name}`,
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return {
    certPem: caCert.toString('pem'),
    async issue(dnsNames) {
      const leafKeys = await keyPair();
      const cert = await x509.X509CertificateGenerator.create({
        ...validity(),
        subject: `CN=${dnsNames[0]}`,
        issuer: caCert.subject,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: 'dns' as const, value }))),
        ],
      });
      return { cert: cert.toString('pem'), key: KeyObject.from(leafKeys.privateKey).export({ format: 'pem', type: 'pkcs8' }).toString() };
    },
  };
}
