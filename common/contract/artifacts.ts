// What the Artifacts view reads about built artifacts: the cluster's build in its workspace
// (manifest, SBOM packages, provenance, signature status), the artifact cache, and the darksite
// lock. Produced by main/build/artifacts.ts.
import { z } from 'zod';

export const BuildOutputInfo = z.object({ path: z.string(), size: z.number(), sha256: z.string(), kind: z.string().optional(), role: z.string().optional() });
export const SbomPackage = z.object({ name: z.string(), version: z.string().optional(), purl: z.string().optional(), source: z.string().optional(), roles: z.string().optional() });
export type SbomPackage = z.infer<typeof SbomPackage>;
export const VerifyStatus = z.object({ ok: z.boolean(), file: z.string().optional(), reason: z.string().optional(), checked: z.number(), keyid: z.string().optional(), scope: z.enum(['signatures', 'full']) });
export type VerifyStatus = z.infer<typeof VerifyStatus>;

export const BuiltArtifacts = z.object({
  dir: z.string(),
  present: z.boolean(),
  /** Why the build could not be read (a broken manifest, an unreadable SBOM…). */
  problems: z.array(z.string()),
  manifest: z.object({ cluster: z.string(), artifactVersion: z.string(), sourceDateEpoch: z.number(), roles: z.array(z.string()), specSha256: z.string(), lockSha256: z.string(), tools: z.record(z.string(), z.string()) }).optional(),
  outputs: z.array(BuildOutputInfo),
  totalBytes: z.number(),
  sbom: z.object({ packages: z.array(SbomPackage), files: z.number() }).optional(),
  provenance: z.object({ builder: z.string(), buildType: z.string(), subjects: z.number(), dependencies: z.array(z.object({ name: z.string(), digest: z.string() })) }).optional(),
  verify: VerifyStatus.optional(),
});
export type BuiltArtifacts = z.infer<typeof BuiltArtifacts>;

export const ArtifactsOverview = z.object({
  cluster: z.string(),
  build: BuiltArtifacts,
  cache: z.object({ root: z.string(), entries: z.number(), bytes: z.number(), byKind: z.array(z.object({ kind: z.string(), entries: z.number(), bytes: z.number() })) }),
  lock: z.object({
    path: z.string(),
    exists: z.boolean(),
    sha256: z.string().optional(),
    packages: z.number().optional(),
    sources: z.array(z.string()).optional(),
    /** The package lists moved since the lock was resolved: the next build resolves them again. */
    listsChanged: z.boolean().optional(),
    previous: z.object({ sha256: z.string(), reason: z.string(), summary: z.string() }).optional(),
    error: z.string().optional(),
  }),
});
export type ArtifactsOverview = z.infer<typeof ArtifactsOverview>;
