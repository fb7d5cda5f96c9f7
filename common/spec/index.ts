export * from './schema';
export * from './diagnostic';
export { parseSpec, MAX_SPEC_BYTES } from './parse';
export type { ParseResult, ParseOptions, Locator, TextRange } from './parse';
export { checkCompleteness, completenessGaps, enabledFeatures, gapMessage, imageName } from './completeness';
export type { FeatureGap, FeatureNeeds } from './completeness';
export { TEMPLATES, TEMPLATE_NAMES, isTemplateName } from './templates/index';
export type { TemplateName } from './templates/index';
export * from './resolve';
