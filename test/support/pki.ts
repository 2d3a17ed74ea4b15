// Throwaway PKI for a loopback control plane, shaped like envtest's: one CA that signs the API server's
// serving certificate and the admin client certificate, plus a service-account signing key.
import 'reflect-metadata';
import { KeyObject, type webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// @peculiar/x509 picks up Node's global WebCrypto by itself.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 60 * 60 * 1000;

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface Pki {
  caPem: string;
  /** Serving certificate for 127.0.0.1, localhost and the extra addresses asked for. */
  apiServer: KeyPairPem;
  /** CN=admin, O=system:masters: may do anything, like kind's admin kubeconfig. */
  admin: KeyPairPem;
  serviceAccountKeyPem: string;
  serviceAccountPubPem: string;
  /** A client certificate from the same CA, e.g. `CN=system:node:n, O=system:nodes` for a kubelet. */
  client(subject: string): Promise<KeyPairPem>;
  /** A serving certificate from the same CA for these IP addresses and DNS names. */
  server(subject: string, names: { ips?: string[]; dns?: string[] }): Promise<KeyPairPem>;
}

export interface PkiOptions {
  /** More IP addresses the API server serves on (a real node reaches it on the pods' bridge). */
  readonly apiServerIps?: readonly string[];
}

async function keyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
}

function privatePem(key: CryptoKey): string {
  return KeyObject.from(key).export({ format: 'pem', type: 'pkcs8' }).toString();
}

function validity(): { notBefore: Date; notAfter: Date } {
  // Back-dated so a clock that is a little off does not make a fresh certificate "not yet valid".
  const now = Date.now();
  return { notBefore: new Date(now - DAY), notAfter: new Date(now + 7 * DAY) };
}

async function issue(
  ca: { cert: x509.X509Certificate; keys: CryptoKeyPair },
  subject: string,
  usage: x509.ExtendedKeyUsage,
  extra: x509.Extension[],
): Promise<KeyPairPem> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.create({
    ...validity(),
    subject,
    issuer: ca.cert.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      ...extra,
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: privatePem(keys.privateKey) };
}

export async function createPki(options: PkiOptions = {}): Promise<Pki> {
  const caKeys = await keyPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    ...validity(),
    name: 'CN=breakwater-test-ca',
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const ca = { cert: caCert, keys: caKeys };
  // Go's TLS client only matches an IP host against an IP SAN, never against a CN or DNS name.
  const server = (subject: string, names: { ips?: string[]; dns?: string[] }) =>
    issue(ca, subject, x509.ExtendedKeyUsage.serverAuth, [
      new x509.SubjectAlternativeNameExtension([
        ...(names.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
        ...(names.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
      ]),
    ]);
  const apiServer = await server('CN=kube-apiserver', { ips: ['127.0.0.1', ...(options.apiServerIps ?? [])], dns: ['localhost', 'kubernetes.default.svc'] });
  const admin = await issue(ca, 'CN=admin, O=system:masters', x509.ExtendedKeyUsage.clientAuth, []);
  const saKeys = await keyPair();
  const saPub = KeyObject.from(saKeys.publicKey).export({ format: 'pem', type: 'spki' }).toString();
  return {
    caPem: caCert.toString('pem'),
    apiServer,
    admin,
    serviceAccountKeyPem: privatePem(saKeys.privateKey),
    serviceAccountPubPem: saPub,
    client: (subject) => issue(ca, subject, x509.ExtendedKeyUsage.clientAuth, []),
    server,
  };
}
