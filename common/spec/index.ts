export * from './schema';
export * from './diagnostic';
export { parseSpec, MAX_SPEC_BYTES } from './parse';
export type { ParseResult, Locator, TextRange } from './parse';
export { TEMPLATES, TEMPLATE_NAMES, isTemplateName } from './templates/index';
export type { TemplateName } from './templates/index';
export * from './resolve';
