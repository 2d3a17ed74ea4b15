// The webhook's own PKI: a CA and a serving certificate signed by it, both ECDSA P-256. Pure apart
// from key generation: the caller passes the clock, so a test can age a certificate without waiting.
// The CA is kept as a bundle (current CA first, then the previous one until it expires) because the
// caBundle in the API server and the certificate each replica serves change at different moments.
import 'reflect-metadata';
import { createPrivateKey, KeyObject, randomBytes, X509Certificate, type webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
// Back-dated so that a node whose clock is a little behind does not see a "not yet valid" certificate.
const BACKDATE_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export const DEFAULT_CERT_VALIDITY_MS = 365 * DAY_MS;
export const DEFAULT_CA_VALIDITY_MS = 10 * 365 * DAY_MS;
/** A certificate is replaced once less than this share of its validity is left. */
export const RENEW_WHEN_LEFT = 1 / 3;

export interface KeyPairPem {
  readonly certPem: string;
  readonly keyPem: string;
}

/** What the certificate Secret holds. */
export interface WebhookCertificates {
  /** Current CA first, then older CAs that have not expired: what goes into `caBundle`. */
  readonly caBundle: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
}

export interface CertificateRequirements {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly now: Date;
  readonly validityMs: number;
  readonly caValidityMs: number;
}

export type CertificatePlan =
  | { readonly action: 'keep' }
  | { readonly action: 'write'; readonly why: string; readonly certificates: WebhookCertificates };

/** The names a Service's clients may use for it, as Kubernetes DNS resolves them. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

export function splitPemBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Decides whether the stored certificates serve the requirements, and makes new ones when not. */
export async function planCertificates(current: WebhookCertificates | undefined, want: CertificateRequirements): Promise<CertificatePlan> {
  const now = want.now.getTime();
  const problem = current && unusable(current, want);
  if (!current || problem) {
    const ca = await createCa(want.now, want.caValidityMs);
    return { action: 'write', why: problem ?? 'no certificates yet', certificates: await withLeaf(ca, [ca.certPem], want) };
  }
  const [currentCaPem] = splitPemBundle(current.caBundle) as [string];
  const currentCa = new X509Certificate(currentCaPem);
  const stillValid = splitPemBundle(current.caBundle).filter((pem) => Date.parse(new X509Certificate(pem).validTo) > now);
  if (renewalDue(currentCa, want.caValidityMs, now)) {
    const ca = await createCa(want.now, want.caValidityMs);
    return { action: 'write', why: 'CA due for renewal', certificates: await withLeaf(ca, [ca.certPem, ...stillValid], want) };
  }
  const leaf = new X509Certificate(current.cert);
  const why = renewalDue(leaf, want.validityMs, now)
    ? 'serving certificate due for renewal'
    : !leaf.checkIssued(currentCa) || !leaf.verify(currentCa.publicKey)
      ? 'serving certificate not signed by the current CA'
      : !sameNames(leaf, want)
        ? 'serving certificate names changed'
        : undefined;
  if (why === undefined) return { action: 'keep' };
  return { action: 'write', why, certificates: await withLeaf({ certPem: currentCaPem, keyPem: current.caKey }, stillValid, want) };
}

/** When the certificate should be replaced: once less than RENEW_WHEN_LEFT of the validity is left. */
export function renewalAt(cert: X509Certificate, validityMs: number): number {
  return Date.parse(cert.validTo) - validityMs * RENEW_WHEN_LEFT;
}

function renewalDue(cert: X509Certificate, validityMs: number, now: number): boolean {
  return now >= renewalAt(cert, validityMs);
}

function unusable(current: WebhookCertificates, want: CertificateRequirements): string | undefined {
  try {
    const [caPem] = splitPemBundle(current.caBundle);
    if (caPem === undefined) return 'no CA in the bundle';
    const ca = new X509Certificate(caPem);
    const caKey = createPrivateKey(current.caKey);
    if (!ca.checkPrivateKey(caKey)) return 'CA key does not match the CA';
    const leaf = new X509Certificate(current.cert);
    if (!leaf.checkPrivateKey(createPrivateKey(current.key))) return 'serving key does not match the certificate';
    if (Date.parse(ca.validTo) <= want.now.getTime()) return 'CA expired';
    return undefined;
  } catch (error) {
    return `stored certificates unreadable: ${(error as Error).message}`;
  }
}

function sameNames(cert: X509Certificate, want: CertificateRequirements): boolean {
  const have = (cert.subjectAltName ?? '').split(', ').filter((s) => s !== '').sort();
  const expected = [...want.dnsNames.map((n) => `DNS:${n}`), ...want.ipAddresses.map((ip) => `IP Address:${ip}`)].sort();
  return have.length === expected.length && have.every((v, i) => v === expected[i]);
}

async function withLeaf(ca: KeyPairPem, bundle: readonly string[], want: CertificateRequirements): Promise<WebhookCertificates> {
  const leaf = await issueServingCertificate(ca, want);
  return { caBundle: `${[...new Set(bundle)].map((p) => p.trim()).join('\n')}\n`, caKey: ca.keyPem, cert: leaf.certPem, key: leaf.keyPem };
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
}

function privatePem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ format: 'pem', type: 'pkcs8' }).toString();
}

function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive, as RFC 5280 requires
  return bytes.toString('hex');
}

function validity(now: Date, validityMs: number): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: new Date(now.getTime() + validityMs) };
}

async function createCa(now: Date, validityMs: number): Promise<KeyPairPem> {
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    ...validity(now, validityMs),
    serialNumber: serialNumber(),
    name: `CN=breakwater-webhook-ca-${now.getTime()}`,
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: privatePem(keys.privateKey) };
}

async function issueServingCertificate(ca: KeyPairPem, want: CertificateRequirements): Promise<KeyPairPem> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await crypto.subtle.importKey(
    'pkcs8',
    createPrivateKey(ca.keyPem).export({ format: 'der', type: 'pkcs8' }),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const keys = await keyPair();
  const [commonName] = want.dnsNames.length > 0 ? want.dnsNames : want.ipAddresses;
  // Go's TLS client matches an IP host only against an IP SAN, and any host only against SANs.
  const names: x509.JsonGeneralName[] = [
    ...want.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...want.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    ...validity(want.now, want.validityMs),
    serialNumber: serialNumber(),
    subject: `CN=${commonName ?? 'breakwater-webhook'}`,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: privatePem(keys.privateKey) };
}
