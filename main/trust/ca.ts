// Bootstrap trust (seed 003 §6.2): an offline root CA, a per-cluster intermediate CA, node
// identity certificates and the hub's TLS certificate for the enrollment window. ECDSA P-256
// keys (python3's ssl on the nodes loads them; WebCrypto makes them without native modules).
// Private keys are returned as PKCS#8 PEM so callers can put them in the SecretStore; nothing
// here writes to disk.
import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

const ALG: EcKeyGenParams & EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY_MS = 86_400_000;
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** A certificate with its private key (PEM) and the SHA-256 fingerprint of the certificate DER. */
export interface CertifiedKey {
  certPem: string;
  keyPem: string;
  /** `sha256:<hex>` of the DER certificate: what agents pin. */
  fingerprint: string;
}

interface Loaded {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

export async function createRootCa(o: { name: string; now: Date; years?: number }): Promise<CertifiedKey> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${o.name} offline root CA, O=kubedos`,
    keys,
    notBefore: o.now,
    notAfter: new Date(o.now.getTime() + (o.years ?? 10) * 365 * DAY_MS),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return pack(cert, keys.privateKey);
}

export async function createClusterIntermediate(root: CertifiedKey, o: { cluster: string; now: Date; days?: number }): Promise<CertifiedKey> {
  return issue(root, {
    subject: `CN=${o.cluster} cluster CA, O=kubedos, OU=${o.cluster}`,
    now: o.now,
    days: o.days ?? 3 * 365,
    extensions: (pub) => [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      x509.SubjectKeyIdentifierExtension.create(pub),
    ],
  });
}

/** A node's identity: CN = node name, OU = cluster, O = role; usable as TLS client and server. */
export async function issueNodeIdentity(ca: CertifiedKey, o: { cluster: string; node: string; role: string; fqdn?: string; now: Date; days?: number }): Promise<CertifiedKey> {
  return issue(ca, {
    subject: `CN=${o.node}, O=${o.role}, OU=${o.cluster}`,
    now: o.now,
    days: o.days ?? 365,
    extensions: (pub) => [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([OID_CLIENT_AUTH, OID_SERVER_AUTH]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: o.node }, ...(o.fqdn ? [{ type: 'dns' as const, value: o.fqdn }] : [])]),
      x509.SubjectKeyIdentifierExtension.create(pub),
    ],
  });
}

/**
 * An etcd member's certificate (server or peer): CN = node, IP SANs = the member's plane address
 * (wg3) and loopback for the server side; client + server auth so peers can dial each other.
 */
export async function issueEtcdCert(ca: CertifiedKey, o: { cluster: string; node: string; kind: 'server' | 'peer' | 'client'; address: string; now: Date; days?: number }): Promise<CertifiedKey> {
  const ips = o.kind === 'server' ? [o.address, '127.0.0.1'] : [o.address];
  return issue(ca, {
    subject: `CN=${o.node} etcd ${o.kind}, OU=${o.cluster}, O=kubedos`,
    now: o.now,
    days: o.days ?? 365,
    extensions: (pub) => [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([OID_SERVER_AUTH, OID_CLIENT_AUTH]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: o.node }, ...ips.map((value) => ({ type: 'ip' as const, value }))]),
      x509.SubjectKeyIdentifierExtension.create(pub),
    ],
  });
}

/** The hub's TLS certificate for the enrollment service; agents pin its fingerprint. */
export async function issueHubTlsCert(ca: CertifiedKey, o: { cluster: string; hub: string; lanAddress: string; now: Date; days?: number }): Promise<CertifiedKey> {
  return issue(ca, {
    subject: `CN=${o.hub} enrollment, OU=${o.cluster}, O=kubedos`,
    now: o.now,
    days: o.days ?? 30,
    extensions: (pub) => [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([OID_SERVER_AUTH]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: o.hub },
        { type: 'ip', value: o.lanAddress },
      ]),
      x509.SubjectKeyIdentifierExtension.create(pub),
    ],
  });
}

/** True when `leaf` chains through `intermediates` to `root` and every certificate is valid at `at`. */
export async function verifyChain(leafPem: string, intermediates: readonly string[], rootPem: string, at: Date): Promise<boolean> {
  const chain = [leafPem, ...intermediates, rootPem].map((p) => new x509.X509Certificate(p));
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i] as x509.X509Certificate;
    const issuer = chain[Math.min(i + 1, chain.length - 1)] as x509.X509Certificate;
    if (cert.issuer !== issuer.subject) return false;
    if (!(await cert.verify({ publicKey: issuer.publicKey, date: at }))) return false;
  }
  return true;
}

/** `sha256:<hex>` of a PEM certificate's DER bytes (python: hashlib.sha256(getpeercert(True))). */
export function certFingerprint(certPem: string): string {
  return `sha256:${createHash('sha256').update(Buffer.from(new x509.X509Certificate(certPem).rawData)).digest('hex')}`;
}

export function certSubject(certPem: string): string {
  return new x509.X509Certificate(certPem).subject;
}

async function issue(
  ca: CertifiedKey,
  o: { subject: string; now: Date; days: number; extensions: (pub: CryptoKey) => (x509.Extension | Promise<x509.Extension>)[] },
): Promise<CertifiedKey> {
  const issuer = await load(ca);
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.create({
    subject: o.subject,
    issuer: issuer.cert.subject,
    publicKey: keys.publicKey,
    signingKey: issuer.key,
    notBefore: o.now,
    notAfter: new Date(o.now.getTime() + o.days * DAY_MS),
    signingAlgorithm: ALG,
    extensions: [...(await Promise.all(o.extensions(keys.publicKey))), await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey)],
  });
  return pack(cert, keys.privateKey);
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function load(c: CertifiedKey): Promise<Loaded> {
  const der = x509.PemConverter.decodeFirst(c.keyPem);
  const key = await crypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
  return { cert: new x509.X509Certificate(c.certPem), key };
}

async function pack(cert: x509.X509Certificate, privateKey: CryptoKey): Promise<CertifiedKey> {
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', privateKey);
  const certPem = cert.toString('pem');
  return { certPem: `${certPem.trimEnd()}\n`, keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY').trimEnd()}\n`, fingerprint: certFingerprint(certPem) };
}
