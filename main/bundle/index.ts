// The recovery bundle (seal stage): write it, verify it. See docs/recovery-bundle.md.
export * from './schema';
export { stagesRecord } from './stages';
export type { StageSummaryInput } from './stages';
export { BUILD_FILES_IN_BUNDLE, BundleInputError, prepareBundle, writeBundle } from './write';
export type { BundleInputs, BundleRecoveryInput, BundleTrustInput, PreparedBundle, WrittenBundle } from './write';
export { isBundleDir, verifyBundle } from './verify';
export type { BundleVerifyOptions, BundleVerifyResult } from './verify';
export { renderBundleReadme } from './readme';
export { secretMaterialIn } from './secret-guard';
export { checkRestorable, openRecovery, RESTORE_REQUIRED_SECRETS } from './restorable';
export type { OpenedRecovery, RestorableResult } from './restorable';
